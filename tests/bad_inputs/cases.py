"""The bad-input corpus (cases.txt): one command line per mistake a user makes, the fragment its
one-line error must contain, and the output it names, which must come through untouched."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

CORPUS = Path(__file__).with_name("cases.txt")


@dataclass(frozen=True)
class Case:
    id: str
    argv: tuple[str, ...]  # {m}: the materials folder, {w}: the case's own (replaced as text)
    fragment: str  # in the one line on stderr
    output: str | None = None  # a good file there before the command must be unchanged after
    needs: str | None = None  # a material only some machines make (arm.so), or "sapphire"


def read_cases(path: Path = CORPUS) -> list[Case]:
    cases = []
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            id_, command, fragment, *rest = (field.strip() for field in line.split(" | "))
            output, needs = (rest + ["", ""])[:2]
            cases.append(Case(id_, tuple(command.split()), fragment, output or None, needs or None))
    return cases


CASES = read_cases()
