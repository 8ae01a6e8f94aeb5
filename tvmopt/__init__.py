"""tvmopt: compile ONNX and PyTorch models into fast, deployable libraries with Apache TVM."""

__version__ = "0.1.0"

from . import _tvm  # noqa: E402,F401 - imports TVM without torch before anything else does
from .api import compile, load  # noqa: E402
from .errors import (  # noqa: E402
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
from .model import CompiledModel  # noqa: E402

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
    "compile",
    "load",
]
