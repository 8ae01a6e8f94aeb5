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


def __getattr__(name: str):
    """`tvmopt.distill` imports torch: only when it is first used."""
    if name == "distill":  # import_module, not `from . import`: that would call this again
        import importlib

        return importlib.import_module(".distill", __name__)
    raise AttributeError(f"module 'tvmopt' has no attribute {name!r}")
