"""`tvmopt package MODEL.so -o DIR`: a folder that runs the model on another Linux machine of the
architecture it was compiled for, with no Python: the model, TVM's runtime libraries in lib/,
tvmopt-run in bin/ (it looks for lib/ beside itself) and a README. For another architecture
than this machine's (aarch64 from x86_64), the runtime comes from that architecture's TVM wheel
and the runner from a cross compiler (deploy/cross.py). Assembled beside DIR and renamed into
place."""

from __future__ import annotations

import ctypes
import json
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..artifact import Metadata, read_metadata
from ..backends.cpu_features import host_arch
from ..errors import ArtifactError, DeployError
from ..version import __version__
from . import npy_file_name
from .build import RUNNER, build_runner
from .cross import runtime_libraries_for
from .locations import runtime_libraries

MARKER = ".tvmopt-package"  # says a folder is ours, so packaging again may replace it
# backends whose libraries need more than TVM's C++ runtime, and why
UNPACKAGED = {"vta": "offloads layers to VTA, whose simulator runs in Python"}


@dataclass(frozen=True)
class Package:
    directory: Path
    files: tuple[str, ...]  # relative to directory
    metadata: Metadata

    @property
    def size_mb(self) -> float:
        return sum((self.directory / f).stat().st_size for f in self.files) / 2**20


def package(library, directory) -> Package:
    """Write the folder `directory` for the tvmopt library `library`."""
    library, directory = Path(library), Path(directory)
    metadata = read_library_metadata(library)
    if metadata.backend in UNPACKAGED:
        raise DeployError(f"{library} {UNPACKAGED[metadata.backend]}; tvmopt package ships CPU "
                          "and CUDA libraries")  # fmt: skip
    arch = elf_machine(library)
    libraries = _runtime_for(metadata.backend, arch, library)
    runner = build_runner(arch)
    files = {library.name: library, f"bin/{RUNNER}": runner}
    files.update((f"lib/{path.name}", path) for path in libraries)
    with _staged(directory) as stage:
        for name, source in files.items():
            (stage / name).parent.mkdir(exist_ok=True)
            shutil.copy2(source, stage / name)
        (stage / "README.md").write_text(readme(metadata, library.name, list(files.values())))
        (stage / MARKER).write_text(f"tvmopt {__version__}\n")
    return Package(directory, (*files, "README.md"), metadata)


def _runtime_for(backend: str, arch: str, library: Path) -> list[Path]:
    """This environment's runtime libraries, or for a library built for another architecture,
    that architecture's from the same TVM release (CPU libraries only)."""
    if arch == host_arch():
        return runtime_libraries(backend)
    try:
        return runtime_libraries_for(arch, backend)
    except DeployError as err:
        raise DeployError(f"{library}: {err}") from None


def elf_machine(path: Path) -> str:
    """The architecture an ELF file's code is for (its e_machine field)."""
    with open(path, "rb") as stream:
        machine = stream.read(20)[18:20]
    return {b"\x3e\x00": "x86_64", b"\xb7\x00": "aarch64"}.get(machine, f"machine {machine.hex()}")


def read_library_metadata(library: Path) -> Metadata:
    """The library's record, read without importing TVM: only libtvm_ffi must be loaded first,
    for the symbols the library leaves to the runtime."""
    if not library.is_file():
        raise ArtifactError(f"model not found: {library}")
    ffi = runtime_libraries("llvm")[0]
    ctypes.CDLL(str(ffi), mode=ctypes.RTLD_GLOBAL)
    return read_metadata(library)


class _staged:
    """A fresh folder beside `directory`, renamed to it on success; a previous package there is
    replaced, anything else there is an error."""

    def __init__(self, directory: Path):
        self.directory = directory

    def __enter__(self) -> Path:
        parent = self.directory.parent
        if not parent.is_dir():
            raise ArtifactError(f"output directory does not exist: {parent}")
        existing = self.directory
        if existing.exists() and not (existing / MARKER).is_file() and any(existing.iterdir()):
            raise ArtifactError(f"{existing} exists and is not a tvmopt package; remove it first")
        self.stage = Path(tempfile.mkdtemp(prefix=f".{existing.name}.", dir=parent))
        return self.stage

    def __exit__(self, kind, error, traceback) -> None:
        if kind is not None:
            shutil.rmtree(self.stage, ignore_errors=True)
            return
        self.stage.chmod(0o755)
        old = None
        if self.directory.exists():
            name = self.directory.name
            old = Path(tempfile.mkdtemp(prefix=f".{name}.old.", dir=self.stage.parent))
            self.directory.rename(old / "package")
        self.stage.rename(self.directory)
        if old is not None:
            shutil.rmtree(old)


def readme(metadata: Metadata, model: str, files: list[Path]) -> str:
    def lines(specs):
        return "\n".join(f"- `{s.name}`: {s.dtype}[{','.join(map(str, s.shape))}] "
                         f"(`{npy_file_name(s.name)}`)" for s in specs)  # fmt: skip

    return f"""# {Path(model).stem}: a tvmopt model that runs without Python

Compiled by tvmopt {metadata.tvmopt_version} (TVM {metadata.tvm_version}) for
`{json.dumps(metadata.target)}`; packaged by tvmopt {__version__}.

    bin/{RUNNER} {model} [--inputs DIR_OF_NPY] [--output DIR] [--repeat N] [--warmup N]

Paths may be relative to any directory: `{RUNNER}` finds its libraries in `../lib` beside itself,
with no environment variables. Without `--inputs`, inputs are generated (seeded normal floats,
small non-negative integers). Every problem is one line on stderr and exit status 2.

Inputs (`--inputs DIR` holds one .npy per input):
{lines(metadata.inputs)}

Outputs (`--output DIR` receives one .npy per output):
{lines(metadata.outputs)}

Needs: Linux {elf_machine(files[0])} with {_versions(files)}{_gpu(metadata)}.
"""


def _gpu(metadata: Metadata) -> str:
    """What a GPU library needs beside the CPU: the GPU its target names the architecture of."""
    if "arch" not in metadata.target:
        return ""
    return f", and an NVIDIA GPU of architecture {metadata.target['arch']} with its driver"


def _versions(files: list[Path]) -> str:
    """The newest glibc and libstdc++ symbol versions any of the files asks for."""
    found = {}
    for path in files:
        for name, version in re.findall(rb"(GLIBC|GLIBCXX)_([0-9][0-9.]*[0-9])", path.read_bytes()):
            key = tuple(int(part) for part in version.split(b"."))
            found[name.decode()] = max(found.get(name.decode(), key), key)
    names = {"GLIBC": "glibc", "GLIBCXX": "libstdc++ (GLIBCXX)"}
    return " and ".join(f"{names[k]} {'.'.join(map(str, v))} or newer" for k, v in found.items())
