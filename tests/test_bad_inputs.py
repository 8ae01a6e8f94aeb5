"""Every bad input, one parametrized test (the corpus: tests/bad_inputs/cases.py): exit status 2,
one line on stderr that names the problem, no traceback, no file left behind, and an output
that existed before the command untouched."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tvmopt.backends.cpu_features import host_features
from tvmopt.cli import main

from .bad_inputs.cases import CASES
from .bad_inputs.materials import write_materials

GOOD_OUTPUT = b"an earlier, good output\n"


@pytest.fixture(scope="session")
def materials(tmp_path_factory) -> Path:
    return write_materials(tmp_path_factory.mktemp("bad_inputs"))


def test_the_corpus_is_broad():
    assert len(CASES) >= 40
    assert len({c.id for c in CASES}) == len(CASES)


def _files(*folders: Path) -> set[str]:
    return {str(p) for folder in folders for p in folder.rglob("*")}


def _filled(text: str, materials: Path, work: Path) -> str:
    return text.replace("{m}", str(materials)).replace("{w}", str(work))


def _unavailable(case, materials: Path) -> str | None:
    if case.needs == "sapphire" and "amx_int8" in (host_features() or ()):
        return "this CPU runs Sapphire Rapids code"
    if case.needs and case.needs.endswith(".so") and not (materials / case.needs).exists():
        return f"{case.needs} needs the aarch64 cross compiler (make test installs it)"
    return None


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_one_line_and_exit_2(case, materials, tmp_path, capfd):
    reason = _unavailable(case, materials)
    if reason:
        pytest.skip(reason)
    argv = [_filled(arg, materials, tmp_path) for arg in case.argv]
    output = Path(_filled(case.output, materials, tmp_path)) if case.output else None
    if output is not None:
        output.write_bytes(GOOD_OUTPUT)
    before = _files(materials, tmp_path)
    capfd.readouterr()
    try:
        status = main(argv)
    except SystemExit as exit_:
        status = exit_.code
    _, err = capfd.readouterr()
    lines = err.strip().splitlines()
    assert status == 2, err
    assert len(lines) == 1 and lines[0].startswith("tvmopt: error: "), err
    assert case.fragment in lines[0], lines[0]
    assert _files(materials, tmp_path) == before, "a file was left behind"
    if output is not None:
        assert output.read_bytes() == GOOD_OUTPUT
    assert os.listdir(tmp_path) == ([output.name] if output else [])
