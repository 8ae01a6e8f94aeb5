"""The deployable artifact: one shared library holding code, weights and a metadata record.

The record is JSON returned by the C symbol `const char* tvmopt_metadata(void)`, so a C++ program
reads it with dlsym alone; its bytes also lie in an ELF section of their own (.tvmopt_metadata),
so that both readers can check a library (that it is whole, that this CPU runs its code) before
loading it, which runs its code. The library is written to a temporary file beside its destination
and renamed into place, so a failed or interrupted export never leaves a half-written file.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import struct
import tempfile
import zlib
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ArtifactError
from .frontend.signature import TensorSpec

FORMAT = "tvmopt-artifact/1"
_RECORD_KEYS = ("format", "inputs", "outputs", "target", "tvmopt_version", "tvm_version", "backend",
                "precision", "quantization", "dims")  # fmt: skip
METADATA_SYMBOL = "tvmopt_metadata"
METADATA_SECTION = ".tvmopt_metadata"
ELF_MAGIC = b"\x7fELF"
CHECKSUM_TAG = b"\ntvmopt-crc32 "  # then 8 hex digits and a newline, the file's last bytes
CHECKSUM_BYTES = len(CHECKSUM_TAG) + 9


@dataclass(frozen=True)
class Metadata:
    """What a compiled model takes and returns, what it was built for and with what."""

    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    target: dict
    tvmopt_version: str
    tvm_version: str
    backend: str = "llvm"  # the backend's name (backends/registry.py)
    precision: str = "fp32"  # "fp16": float16 conv and matmul operands (CUDA)
    quantization: str = "none"  # "int8" (calibrated), "int8-qdq" (the model's own), "vta"
    # the inputs' symbolic dims (by the names their shapes give) -> [lo, hi] (hi None: no limit)
    dims: dict = field(default_factory=dict)
    format: str = field(default=FORMAT)
    extra: dict = field(default_factory=dict)  # backend records, e.g. "vta": its layer placement

    def to_json(self) -> str:
        record = {
            "format": self.format,
            "inputs": [spec.to_dict() for spec in self.inputs],
            "outputs": [spec.to_dict() for spec in self.outputs],
            "target": self.target,
            "tvmopt_version": self.tvmopt_version,
            "tvm_version": self.tvm_version,
            "backend": self.backend,
            "precision": self.precision,
            "quantization": self.quantization,
        }
        if self.dims:  # a static model's record reads as it did before dims existed
            record["dims"] = self.dims
        return json.dumps({**self.extra, **record}, indent=1)

    @classmethod
    def from_json(cls, text: str) -> Metadata:
        record = json.loads(text)
        if record.get("format") != FORMAT:
            raise ArtifactError(
                f"unknown artifact format {record.get('format')!r}; expected {FORMAT}"
            )
        return cls(
            inputs=tuple(TensorSpec.from_dict(r) for r in record["inputs"]),
            outputs=tuple(TensorSpec.from_dict(r) for r in record["outputs"]),
            target=record["target"],
            tvmopt_version=record["tvmopt_version"],
            tvm_version=record["tvm_version"],
            backend=record.get("backend") or _backend_before_the_record(record["target"]),
            precision=record.get("precision", "fp32"),
            quantization=record.get("quantization", "none"),
            dims=record.get("dims", {}),
            extra={k: v for k, v in record.items() if k not in _RECORD_KEYS},
        )


def _backend_before_the_record(target: dict) -> str:
    """The backend of a library written before the record named it (before December 2026):
    VTA's targets were llvm targets with "vta" among their keys, the rest named by their kind.
    A kind branch outside tvmopt/backends (1 of the 3 allowed): only old records take it."""
    return "vta" if "vta" in target.get("keys", []) else target.get("kind", "llvm")


def metadata_source(metadata: Metadata) -> str:
    """C++ source of the metadata symbol; bytes as integers so no escaping can go wrong."""
    data = metadata.to_json().encode() + b"\0"
    rows = [", ".join(str(b) for b in data[i : i + 24]) for i in range(0, len(data), 24)]
    body = ",\n  ".join(rows)
    return (
        f'__attribute__((section("{METADATA_SECTION}"), used))\n'
        f"static const unsigned char kMetadata[] = {{\n  {body}\n}};\n"
        'extern "C" __attribute__((visibility("default")))\n'
        f"const char* {METADATA_SYMBOL}(void) {{\n"
        "  return reinterpret_cast<const char*>(kMetadata);\n}\n"
    )


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_output(path: str | os.PathLike, mode: int = 0o666):
    """Yield a temporary path beside `path`; rename it into place only if the block succeeds.

    The file gets `mode` less the umask, as if created directly (mkstemp makes it 0600, which
    would keep other users, a service account say, from loading a library)."""
    path = _output_path(path)
    try:  # a read-only file system, or one that takes no files (/proc), fails here
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as err:
        raise ArtifactError(f"cannot write {path}: {err.strerror}") from None
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, mode & ~_umask())
        _replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def check_writable(path: str | os.PathLike) -> Path:
    """`path`, where a file can be written; else an ArtifactError saying why not: checked
    before the work that produces the file (atomic_output checks again as it writes)."""
    path = _output_path(path)
    try:  # a read-only file system, or one that takes no files (/proc), even for root
        tempfile.TemporaryFile(dir=path.parent).close()
    except OSError as err:
        raise ArtifactError(f"cannot write {path}: {err.strerror}") from None
    return path


def _output_path(path: str | os.PathLike) -> Path:
    """`path` as a Path, where its directory exists and this user may write in it."""
    path = Path(path)
    if not path.parent.exists():
        raise ArtifactError(f"output directory does not exist: {path.parent}")
    if not path.parent.is_dir():
        raise ArtifactError(f"cannot write {path}: {path.parent} is not a directory")
    if path.is_dir():
        raise ArtifactError(f"cannot write {path}: it is a directory; give a file name")
    if not os.access(path.parent, os.W_OK | os.X_OK):
        raise ArtifactError(f"cannot write {path}: no permission to write in {path.parent}")
    return path


def _replace(tmp: str, path: Path) -> None:
    try:
        os.replace(tmp, path)
    except OSError as err:
        raise ArtifactError(f"cannot write {path}: {err.strerror}") from None


def write_library(executable, metadata: Metadata, path, linker=None, addons=()) -> None:
    """Link `executable`, the metadata record and `addons` (more sources, isa_variants.py) into
    the shared library at `path`, atomically."""
    with (
        tempfile.TemporaryDirectory(prefix="tvmopt-") as workdir,
        atomic_output(path, mode=0o777) as tmp,
    ):
        source = Path(workdir) / "tvmopt_metadata.cc"
        source.write_text(metadata_source(metadata))
        options = {"fcompile": linker} if linker is not None else {}
        sources = [str(source), *map(str, addons)]
        executable.export_library(tmp, addons=sources, workspace_dir=workdir, **options)
        append_checksum(tmp)


def copy_library(source, path) -> None:
    with atomic_output(path, mode=0o777) as tmp:
        shutil.copyfile(source, tmp)


def append_checksum(path) -> None:
    """End the library with the CRC-32 of everything before it (CHECKSUM_TAG, 8 hex digits,
    a newline): the loader ignores bytes past the ELF image, and tvmopt.load and the C++ runner
    refuse a file whose bytes changed since (deploy/cpp/include/tvmopt/elf.h)."""
    crc = _crc32(path, os.path.getsize(path))
    with open(path, "ab") as stream:
        stream.write(CHECKSUM_TAG + f"{crc:08x}\n".encode())


def verify_checksum(path) -> None:
    """An ArtifactError where the library's bytes do not match the CRC-32 written at export;
    nothing is said of a library written before the checksum existed."""
    size = os.path.getsize(path)
    if size < CHECKSUM_BYTES:
        return
    with open(path, "rb") as stream:
        stream.seek(size - CHECKSUM_BYTES)
        trailer = stream.read()
    if not trailer.startswith(CHECKSUM_TAG):
        return
    recorded = int(trailer[len(CHECKSUM_TAG) : -1], 16)
    actual = _crc32(path, size - CHECKSUM_BYTES)
    if actual != recorded:
        raise ArtifactError(f"{path} is corrupt: its bytes changed after tvmopt wrote it "
                            f"(CRC-32 {actual:08x}, written {recorded:08x})")  # fmt: skip


def _crc32(path, length: int) -> int:
    crc, left = 0, length
    with open(path, "rb") as stream:
        while left > 0:
            chunk = stream.read(min(left, 1 << 24))
            if not chunk:
                break
            crc, left = zlib.crc32(chunk, crc), left - len(chunk)
    return crc


def read_metadata(path) -> Metadata:
    """The record, read from its ELF section without loading the library; a library written
    before the section existed is loaded to ask its symbol."""
    record = elf_section(path, METADATA_SECTION)
    if record is None:
        return _metadata_from_symbol(path)
    return Metadata.from_json(record.split(b"\0", 1)[0].decode())


def _metadata_from_symbol(path) -> Metadata:
    try:
        getter = getattr(ctypes.CDLL(str(Path(path).resolve())), METADATA_SYMBOL)
    except (OSError, AttributeError):
        raise ArtifactError(
            f"{path} is not a tvmopt artifact: it has no {METADATA_SYMBOL} record"
        ) from None
    getter.restype = ctypes.c_char_p
    return Metadata.from_json(getter().decode())


def elf_section(path, name: str) -> bytes | None:
    """The bytes of the section `name` of a 64-bit ELF file, or None where it has none; an
    ArtifactError for a file that is not ELF or is cut short (a copy that did not finish)."""
    with open(path, "rb") as stream:
        size = os.fstat(stream.fileno()).st_size
        header = stream.read(64)
        if len(header) < 64 or header[:4] != ELF_MAGIC or header[4] != 2:
            raise ArtifactError(f"{path} is not a tvmopt artifact: not a 64-bit ELF library")
        order = "<" if header[5] == 1 else ">"
        (table_at,) = struct.unpack_from(order + "Q", header, 0x28)
        entry, count, names_index = struct.unpack_from(order + "HHH", header, 0x3A)
        if table_at + entry * count > size:
            raise ArtifactError(f"{path} is truncated: {size} bytes, where its section table "
                                f"ends at {table_at + entry * count}")  # fmt: skip
        stream.seek(table_at)
        sections = [_section(stream.read(entry), order) for _ in range(count)]
        if any(offset + length > size for _, kind, offset, length in sections if kind != 8):
            raise ArtifactError(f"{path} is truncated: a section ends past its {size} bytes")
        names = _read(stream, *sections[names_index][2:])
        for name_at, _, offset, length in sections:
            if names[name_at : names.index(b"\0", name_at)] == name.encode():
                return _read(stream, offset, length)
    return None


def _section(raw: bytes, order: str) -> tuple[int, int, int, int]:
    """(name offset, type, file offset, size) of an ELF64 section header."""
    name_at, kind, _, _, offset, length = struct.unpack_from(order + "IIQQQQ", raw)
    return name_at, kind, offset, length


def _read(stream, offset: int, length: int) -> bytes:
    stream.seek(offset)
    return stream.read(length)
