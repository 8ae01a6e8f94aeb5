"""Turn a conformance run's junit XML into tests/conformance/results.md.

    TVMOPT_CONFORMANCE=full pytest tests/test_conformance.py --junitxml=build/conformance/junit.xml
    TVMOPT_CONFORMANCE=full TVMOPT_CONFORMANCE_BACKEND=onnxruntime \
        pytest tests/test_conformance.py --junitxml=build/conformance/onnxruntime.xml
    python tests/conformance/summarize.py build/conformance/junit.xml tests/conformance/results.md \
        --peer build/conformance/onnxruntime.xml

`make conformance` does all three. The report has pass/fail/skip counts per category, next to
ONNX Runtime's on the same tests (with --peer), failures grouped by cause, the slowest tests, and
every failing test with a one-line reason.
"""

from __future__ import annotations

import argparse
import re
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

# onnx's test class -> the data set it comes from (onnx's "Real" tests are the local light models).
CATEGORIES = {
    "OnnxBackendNodeModelTest": "node",
    "OnnxBackendRealModelTest": "light",
    "OnnxBackendSimpleModelTest": "simple",
    "OnnxBackendPyTorchConvertedModelTest": "pytorch-converted",
    "OnnxBackendPyTorchOperatorModelTest": "pytorch-operator",
}
STATUSES = ("passed", "failed", "skipped")
MAX_REASON = 200

# Failure causes, first match wins: a pattern on the one-line reason and the group it names.
NEEDS_CONSTANT = (
    r"Only constant|must be a constant|non-constant|[Dd]ynamic|new shape to be Shape"
    r"|tvm\.ir\.expr\.Var|'Var' object"
)
CAUSES = [
    (r"unsupported ONNX operators", "unsupported op (see the next table)"),
    (r"is a \w+; tvmopt handles tensors only", "sequence or optional graph input/output"),
    (NEEDS_CONSTANT, "TVM needs a constant (shape, axes, pads...); the test feeds an input"),
    (r"expect Tensor with ndim 0 but get 1", "0-d input reaches the VM as 1-d"),
    (r"TensorCopyFromBytes: size mismatch|dtype\.bits % 8 == 0", "sub-byte dtype (int4/int2/fp4)"),
    (r"Not equal to tolerance", "wrong values"),
    (r"has incorrect shape", "wrong output shape"),
    (r"Items are not equal", "wrong output dtype"),
    (r"Unsupported dtype in DLTensor", "float8 input: numpy's DLPack has no float8"),
    (
        r"cannot import node .*?\((\w+)\) with inputs .*?(?:\]|NoneType|Call|Tuple): (.{0,60})",
        "TVM importer, {0}: {1}",
    ),
    (r"TVM's ONNX importer failed: (.{0,70})", "TVM importer: {0}"),
    (r"TVM failed to compile the model: (.{0,70})", "TVM build: {0}"),
    (r"^(?:tvmopt\.errors\.)?(.{0,80})", "{0}"),
]
UNSUPPORTED = r"unsupported ONNX operators: (.*)"


@dataclass(frozen=True)
class Outcome:
    """One test: its category, name, status, a one-line reason (failures and skips) and time."""

    category: str
    name: str
    status: str
    reason: str
    seconds: float


def read_outcomes(path: Path) -> list[Outcome]:
    """onnx's tests in the report; the module's own backend unit tests are left out."""
    outcomes = [_outcome(case) for case in ET.parse(path).iter("testcase")]
    return [o for o in outcomes if o.category in CATEGORIES.values()]


def _outcome(case: ET.Element) -> Outcome:
    test_class = case.get("classname", "").rsplit(".", 1)[-1]
    category = CATEGORIES.get(test_class, test_class)
    status, reason = "passed", ""
    for child in case:
        if child.tag in ("failure", "error"):
            status, reason = "failed", one_line(child.get("message") or child.text or child.tag)
        elif child.tag == "skipped":
            status, reason = "skipped", one_line(child.get("message") or "")
    return Outcome(category, case.get("name", "?"), status, reason, float(case.get("time", 0)))


def one_line(message: str) -> str:
    """The message's first non-empty lines joined up to MAX_REASON characters."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    text = " ".join(lines[:3]) if lines and lines[0].endswith(":") else (lines or [""])[0]
    return text if len(text) <= MAX_REASON else text[: MAX_REASON - 3] + "..."


def cause(reason: str) -> str:
    for pattern, group in CAUSES:
        match = re.search(pattern, reason)
        if match:
            return group.format(*match.groups())
    return "other"


def render(outcomes: list[Outcome], wall_seconds: float, peer: list[Outcome] | None = None) -> str:
    failed = [o for o in outcomes if o.status == "failed"]
    peer_passed = {(o.category, o.name) for o in peer or [] if o.status == "passed"}
    sections = [
        "# ONNX backend conformance of tvmopt\n",
        "Written by `make conformance` (`tests/conformance/summarize.py`); do not edit by hand.",
        "Only the CPU variant of each test runs: the backend is CPU-only.\n",
        f"{len(outcomes)} tests in {wall_seconds / 60:.1f} min ({_versions(peer is not None)}).\n",
        *(_counts_table(outcomes) if peer is None else _peer_counts_table(outcomes, peer_passed)),
        *_causes_table(failed),
        *([] if peer is None else _gap_table(failed, peer_passed)),
        *_unsupported_table(failed),
        *_slowest(outcomes),
        "## Failing tests\n",
        *(f"- `{o.category}` `{o.name}`: {o.reason}" for o in sorted(failed, key=_by_place)),
    ]
    return "\n".join(sections) + "\n"


def _peer_counts_table(outcomes: list[Outcome], peer_passed: set) -> list[str]:
    """tvmopt's counts next to ONNX Runtime's: of the tests ONNX Runtime passes, the share
    tvmopt passes too (the issue's measure)."""
    header = ("| category | tvmopt passed | failed | skipped | total | ONNX Runtime passed "
              "| both passed | tvmopt / ONNX Runtime |")  # fmt: skip
    rows = ["## Counts, next to ONNX Runtime's\n", header, "|---|--:|--:|--:|--:|--:|--:|--:|"]
    for category in [*CATEGORIES.values(), "all"]:
        mine = [o for o in outcomes if category in (o.category, "all")]
        counts = Counter(o.status for o in mine)
        theirs = sum(1 for o in mine if (o.category, o.name) in peer_passed)
        both = sum(1 for o in mine if o.status == "passed" and (o.category, o.name) in peer_passed)
        share = f"{100 * both / theirs:.1f}%" if theirs else "-"
        cells = [*(counts[status] for status in STATUSES), counts.total(), theirs, both, share]
        rows.append(f"| {category} | " + " | ".join(map(str, cells)) + " |")
    return [*rows, ""]


def _gap_table(failed: list[Outcome], peer_passed: set) -> list[str]:
    """The tests ONNX Runtime passes and tvmopt fails, by cause: the way to the goal."""
    gap = [o for o in failed if (o.category, o.name) in peer_passed]
    counts = Counter(cause(o.reason) for o in gap)
    rows = [f"## Passed by ONNX Runtime, failed by tvmopt ({len(gap)}), by cause\n",
            "| cause | tests |", "|---|--:|"]  # fmt: skip
    rows += [f"| {group} | {n} |" for group, n in counts.most_common()]
    return [*rows, ""]


def _versions(with_peer: bool) -> str:
    packages = ("onnx", "apache-tvm", "tvmopt", *(("onnxruntime",) if with_peer else ()))
    return ", ".join(f"{name} {metadata.version(name)}" for name in packages)


def _by_place(outcome: Outcome) -> tuple:
    return list(CATEGORIES.values()).index(outcome.category), outcome.name


def _counts_table(outcomes: list[Outcome]) -> list[str]:
    header = "| category | passed | failed | skipped | total |\n|---|--:|--:|--:|--:|"
    rows = ["## Counts\n", header]
    for category in [*CATEGORIES.values(), "all"]:
        counts = Counter(o.status for o in outcomes if category in (o.category, "all"))
        cells = [counts[status] for status in STATUSES] + [counts.total()]
        rows.append(f"| {category} | " + " | ".join(map(str, cells)) + " |")
    return [*rows, ""]


def _causes_table(failed: list[Outcome]) -> list[str]:
    counts = Counter(cause(o.reason) for o in failed)
    rows = ["## Failures by cause\n", "| cause | tests |", "|---|--:|"]
    rows += [f"| {group} | {n} |" for group, n in counts.most_common()]
    return [*rows, ""]


def _unsupported_table(failed: list[Outcome]) -> list[str]:
    """How many failing tests each unsupported op accounts for (a test may name several)."""
    counts = Counter()
    for outcome in failed:
        match = re.search(UNSUPPORTED, outcome.reason)
        if match:
            counts.update(set(re.findall(r"([\w.]+) \(node", match.group(1))))
    rows = ["## Unsupported ops\n", "| op | tests |", "|---|--:|"]
    rows += [f"| {op} | {n} |" for op, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
    return [*rows, ""]


def _slowest(outcomes: list[Outcome], count: int = 10) -> list[str]:
    rows = ["## Slowest tests\n", "| test | status | seconds |", "|---|---|--:|"]
    ranked = sorted(outcomes, key=lambda o: -o.seconds)[:count]
    rows += [f"| `{o.category}` `{o.name}` | {o.status} | {o.seconds:.1f} |" for o in ranked]
    return [*rows, ""]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("junit", type=Path, help="tvmopt's run")
    parser.add_argument("results", type=Path, help="the markdown report to write")
    parser.add_argument("--peer", type=Path, help="ONNX Runtime's run of the same tests")
    args = parser.parse_args(argv)
    suite = ET.parse(args.junit).find(".//testsuite")
    wall = float(suite.get("time", 0)) if suite is not None else 0.0
    peer = read_outcomes(args.peer) if args.peer else None
    args.results.write_text(render(read_outcomes(args.junit), wall, peer))
    print(f"wrote {args.results}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
