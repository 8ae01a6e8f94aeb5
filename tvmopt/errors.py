"""Every error tvmopt raises on purpose.

Each error inherits from :class:`TvmoptError` and from the builtin that matches its meaning, so
callers can catch either. Messages are one line: what was expected, what was received, and where.
"""

import re


class TvmoptError(Exception):
    """Base of every error tvmopt raises for a problem with the user's input or environment."""


class ModelLoadError(TvmoptError, ValueError):
    """The model file is missing, unreadable, not ONNX, or fails ONNX's checker."""


class UnsupportedOpError(TvmoptError, NotImplementedError):
    """The model uses operators that tvmopt cannot convert."""


class ShapeError(TvmoptError, ValueError):
    """An input shape is symbolic, unknown, or contradicts the model."""


class TargetError(TvmoptError, ValueError):
    """The requested compilation target is unknown or cannot be built for here."""


class InputError(TvmoptError, ValueError):
    """Run-time inputs do not match the compiled model's signature."""


class ArtifactError(TvmoptError, OSError):
    """A compiled artifact cannot be written, found or read."""


class OptionError(TvmoptError, ValueError):
    """An option's value is outside what it accepts (an opt level of 7, say)."""


class CompileError(TvmoptError, RuntimeError):
    """TVM failed while importing or compiling a model that passed our checks."""


class TuningDatabaseError(TvmoptError, ValueError):
    """A tuning database is missing, corrupt, foreign, or in use by another tuning run."""


class TuneError(TvmoptError, RuntimeError):
    """Tuning cannot measure anything: no RPC tracker or server, or every measurement failed."""


class DeployError(TvmoptError, RuntimeError):
    """A C++ deployment step failed: no compiler or CMake, a failed build, a missing runtime."""


class VTAError(TvmoptError, ValueError):
    """A VTA program that cannot be encoded or run: a field too wide, a malformed or
    deadlocking instruction stream, an index outside a buffer, a layer that does not fit."""


# Messages are one line: these pick it from the text of an error raised by TVM, onnx, torch or
# a compiler (or from the error itself), `default` where the text is empty.


def _lines(text) -> list[str]:
    return [line.strip() for line in str(text).splitlines() if line.strip()]


def first_line(text, default: str = "") -> str:
    """The first non-empty line: onnx's and torch's errors start with the message."""
    lines = _lines(text)
    return lines[0] if lines else default


def last_line(text, default: str = "") -> str:
    """The last non-empty line: TVM's errors end with the message, after a traceback."""
    lines = _lines(text)
    return lines[-1] if lines else default


# a compiler's diagnostic: "file.cu(12): error: ...", "file.c:3:5: error: ...", "error: ..."
_DIAGNOSTIC = re.compile(r"(?:^|[:)]\s*)(?:fatal )?error\b", re.IGNORECASE)


def first_diagnostic(text) -> str:
    """The line of `text` that says what went wrong: the first compiler error among the source
    and the log TVM wraps into an exception (nvcc's, a linker's), else its last line."""
    errors = [line for line in _lines(text) if _DIAGNOSTIC.search(line)]
    return errors[0] if errors else last_line(text)
