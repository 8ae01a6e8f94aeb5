"""tvmopt: compile ONNX and PyTorch models into fast, deployable libraries with Apache TVM."""

from . import _tvm  # noqa: F401 - imports TVM without torch before anything else does
from .api import compile, load
from .errors import (
    ArtifactError,
    CompileError,
    InputError,
    ModelLoadError,
    OptionError,
    ShapeError,
    TargetError,
    TvmoptError,
    UnsupportedOpError,
)
from .model import CompiledModel
from .pruning import prune
from .version import __version__

__all__ = [
    "ArtifactError",
    "CompileError",
    "CompiledModel",
    "InputError",
    "ModelLoadError",
    "OptionError",
    "ShapeError",
    "TargetError",
    "TvmoptError",
    "UnsupportedOpError",
    "__version__",
    "compile",
    "distill",
    "load",
    "prune",
]


def distill(teacher, student, data, output=None, **options):
    """Train `student` to answer as `teacher` does on `data` (tvmopt.distillation.api.distill,
    which documents every option); PyTorch is imported on the first call, not with tvmopt."""
    from .distillation import distill as run

    return run(teacher, student, data, output, **options)
