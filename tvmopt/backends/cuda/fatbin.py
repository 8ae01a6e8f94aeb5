"""Which GPU architectures a library carries device code for, read from the fatbin nvcc wrote
into it (header magic 0xBA55ED50; each entry names its kind, PTX or ELF, and its sm version)."""

from __future__ import annotations

import struct
from pathlib import Path

MAGIC = struct.pack("<I", 0xBA55ED50)
KINDS = {1: "ptx", 2: "sass"}


def device_code(path) -> list[tuple[str, str]]:
    """[(kind, "sm_90"), ...] for every fatbin entry in the file at `path`."""
    data = Path(path).read_bytes()
    entries = []
    start = data.find(MAGIC)
    while start >= 0:
        _, _, header_size, size = struct.unpack_from("<IHHQ", data, start)
        entries += _entries(data, start + header_size, start + header_size + size)
        start = data.find(MAGIC, start + max(header_size + size, len(MAGIC)))
    return entries


def _entries(data: bytes, offset: int, end: int) -> list[tuple[str, str]]:
    entries = []
    while offset < end:
        kind, _, header_size, padded_size = struct.unpack_from("<HHII", data, offset)
        arch = struct.unpack_from("<I", data, offset + 28)[0]
        entries.append((KINDS.get(kind, str(kind)), f"sm_{arch}"))
        if header_size == 0:  # not a real entry: stop rather than loop
            break
        offset += header_size + padded_size
    return entries
