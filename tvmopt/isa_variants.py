"""One library for several CPUs: the code compiled for a fleet's baseline (say x86-64-v3, AVX2)
is the library itself; each ISA variant (x86-64-v4, AVX-512; or this CPU) is a whole tvmopt
library of its own, embedded in an ELF section of it. `tvmopt.load` and the C++ runner take the
best variant this CPU runs, read from its section into a private file, and the baseline where
none runs: ONNX Runtime's MLAS picks its kernels per ISA when it starts, and this does the same
for a compiled model. Each variant holds its own copy of the weights, so the library is the
size of all its variants together.

`TVMOPT_MAX_CPU_ISA=x86-64-v3` (or v2) makes the choice as if the CPU stopped at that level,
like oneDNN's ONEDNN_MAX_CPU_ISA: to reproduce, on an AVX-512 machine, what an AVX2 one runs.
"""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from .artifact import elf_section, read_metadata, verify_checksum, write_library
from .backends.base import CPU_RECORD
from .backends.cpu_features import X86_LEVELS, runs_here
from .errors import ArtifactError, OptionError

VARIANTS_RECORD = "isa_variants"  # [{"section": ".tvmopt.isa.0", "cpu": {...}}], best first
SECTION_PREFIX = ".tvmopt.isa."
MAX_ISA_VARIABLE = "TVMOPT_MAX_CPU_ISA"


def check_targets(baseline, variants) -> None:
    """Refuse, before anything compiles, variants that are not CPU code for the baseline's
    architecture (backends resolved from the targets)."""
    for variant in variants:
        if not (baseline.isa_variants and variant.isa_variants):
            raise OptionError(f"ISA variants are CPU (llvm) libraries; got {baseline.name} and "
                              f"{variant.name}")  # fmt: skip
        if variant.cpu.record()["arch"] != baseline.cpu.record()["arch"]:
            raise OptionError(f"an ISA variant for {variant.cpu.record()['arch']} cannot share a "
                              f"library with code for {baseline.cpu.record()['arch']}")  # fmt: skip


@dataclass
class Fleet:
    """A baseline compiled model and its ISA variants (CompiledModel each), best first."""

    baseline: object
    variants: list

    def __post_init__(self):
        self.variants = sorted(self.variants, key=_feature_count, reverse=True)
        for member in (self.baseline, *self.variants):
            member.fleet = self

    def best_here(self):
        """The variant this CPU runs with the most features, else the baseline."""
        records = [member.metadata.extra[CPU_RECORD] for member in self.variants]
        chosen = choose(records)
        return self.baseline if chosen is None else self.variants[chosen]

    def export(self, path) -> None:
        """The baseline's library at `path`, each variant's whole library in a section of it."""
        with tempfile.TemporaryDirectory(prefix="tvmopt-isa-") as workdir:
            sections, records = [], []
            for index, variant in enumerate(self.variants):
                library = Path(workdir) / f"variant{index}.so"
                variant.export(library, alone=True)
                sections.append((f"{SECTION_PREFIX}{index}", library))
                records.append({"section": sections[-1][0],
                                CPU_RECORD: variant.metadata.extra[CPU_RECORD]})  # fmt: skip
            source = Path(workdir) / "tvmopt_isa_variants.cc"
            source.write_text(_embedding_source(sections))
            base = self.baseline
            metadata = replace(base.metadata, extra={**base.metadata.extra,
                                                     VARIANTS_RECORD: records})  # fmt: skip
            write_library(base._module, metadata, path, linker=base._backend.linker(),  # noqa: SLF001
                          addons=[source])  # fmt: skip


def _feature_count(member) -> int:
    return len(member.metadata.extra[CPU_RECORD]["features"])


def _embedding_source(embedded) -> str:
    """C++ whose assembly includes each library's bytes in a section of its own (.incbin: the
    assembler copies the file; an array literal of 100 MB would take minutes to compile)."""
    lines = []
    for section, library in embedded:
        path = str(library).replace("\\", "\\\\").replace('"', '\\"')
        lines.append(f'__asm__(".pushsection {section},\\"a\\",@progbits\\n'
                     f'.incbin \\"{path}\\"\\n.popsection");')  # fmt: skip
    return "\n".join(lines) + "\n"


def choose(records: list[dict]) -> int | None:
    """The index of the first of `records` (CPU records, best first) this CPU runs under
    TVMOPT_MAX_CPU_ISA; None where none does."""
    beyond = _beyond(os.environ.get(MAX_ISA_VARIABLE))
    for index, record in enumerate(records):
        if runs_here(record) and not any(beyond(f) for f in record["features"]):
            return index
    return None


def _beyond(level: str | None):
    """Whether a feature is past x86-64 `level`: a newer level's, or AVX-512's or AMX's below
    v4 (AVX-512 VNNI is no level's, and no v3 CPU has it). Nothing is, where it is unset."""
    names = [name for name, _ in X86_LEVELS]
    if not level:
        return lambda feature: False
    if level not in names:
        raise ArtifactError(f"{MAX_ISA_VARIABLE}={level} is not one of {', '.join(names)}")
    newer = {f for _, needs in X86_LEVELS[: names.index(level)] for f in needs}
    wide = ("avx512", "amx") if level != names[0] else ()
    return lambda feature: feature in newer or feature.startswith(wide)


@contextmanager
def loadable(path: Path, metadata):
    """The library to load for `path` and its metadata: the chosen variant's, copied out of
    its section into a private directory removed on exit (dlopen keeps what it mapped), or
    `path` itself (no directory made: most libraries have no variants)."""
    records = metadata.extra.get(VARIANTS_RECORD) or []
    chosen = choose([record[CPU_RECORD] for record in records])
    if chosen is None:
        yield path, metadata
        return
    section = records[chosen]["section"]
    data = elf_section(path, section)
    if data is None:
        raise ArtifactError(f"{path} is corrupt: its ISA variant section {section} is missing")
    with tempfile.TemporaryDirectory(prefix="tvmopt-isa-") as workdir:
        library = Path(workdir) / f"variant{chosen}.so"
        library.write_bytes(data)
        verify_checksum(library)
        yield library, read_metadata(library)
