"""`make fuzz N=1000`: differential testing on N random graphs (graphs.py, check.py); each
failing graph is reduced and written to the output folder as SEED-KIND-VARIANT.onnx, beside a
.txt with the reason. Prints a summary; exit status 1 when any graph failed.

    python -m tests.fuzz.run --count 1000 [--start 0] [--out build/fuzz]
"""

from __future__ import annotations

import argparse
import collections
import sys
import time
from pathlib import Path

import onnx

from .check import check, reduce
from .graphs import random_graph


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--start", type=int, default=0, help="the first seed")
    parser.add_argument("--out", type=Path, default=Path("build/fuzz"))
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    counts, start = collections.Counter(), time.perf_counter()
    for seed in range(args.start, args.start + args.count):
        failure = check(random_graph(seed))
        counts[failure.kind if failure else "ok"] += 1
        if failure is not None:
            _write(args.out, seed, failure)
    seconds = time.perf_counter() - start
    summary = ", ".join(f"{kind} {n}" for kind, n in sorted(counts.items()))
    print(f"{args.count} graphs from seed {args.start} in {seconds:.0f} s: {summary}")
    return 0 if counts["ok"] == args.count else 1


def _write(folder: Path, seed: int, failure) -> None:
    reduced = reduce(random_graph(seed), failure)
    stem = folder / f"{seed}-{failure.kind}-{failure.variant}"
    onnx.save(reduced, stem.with_suffix(".onnx"))
    ops = " ".join(node.op_type for node in reduced.graph.node)
    stem.with_suffix(".txt").write_text(f"seed {seed}: {failure.kind} at {failure.variant}: "
                                        f"{failure.detail}\nreduced to {ops}\n")  # fmt: skip
    print(f"seed {seed}: {failure.kind} at {failure.variant} ({failure.detail}); reduced to {ops}",
          flush=True)  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
