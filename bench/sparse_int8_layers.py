"""The int8 sparse kernel's micro-benchmark: BERT-base's matmul layers (128 tokens; 768 -> 768,
768 -> 3072, 3072 -> 768) as QDQ models whose int8 weights are pruned in 1 x 8 blocks (or
unstructured), each 4 x B block width of kernel_sparse_int8.py against tvmopt's dense int8
kernel, in one interleaved run (tvmopt.timing.interleaved_medians).

    TVM_NUM_THREADS=1 python bench/sparse_int8_layers.py [--sparsities 0.8,0.9] [--rounds 15]

The choice is steered to each width by making the others' costs infinite (sparse_choice's
INT8_COSTS); each build's output is checked equal to the dense int8 build's (the same int32
sums). The ratios calibrate INT8_COSTS. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent.parent))
import tvmopt  # noqa: E402
from tests.test_sparse_int8 import qdq_matmul_model  # noqa: E402
from tvmopt.backends.llvm import kernel_sparse_int8, sparse_choice  # noqa: E402
from tvmopt.backends.llvm.sparse_int8 import sparse_step  # noqa: E402
from tvmopt.timing import interleaved_medians  # noqa: E402

SHAPES = [(768, 768), (768, 3072), (3072, 768)]
WIDTHS = (16, 8, 4, 1)
TARGET = ["llvm"]  # --target


def pruned_int8(shape, sparsity: float, width: int, seed: int = 0) -> np.ndarray:
    """Random int8 weights with the `sparsity` share of their 1 x width blocks zero."""
    rng = np.random.default_rng(seed)
    k, n = shape
    kept = rng.random((k, n // width)) >= sparsity
    weight = rng.integers(-127, 128, shape) * np.repeat(kept, width, axis=1)
    weight[0] = 127  # every column's scale comes back exactly
    return weight.astype(np.int8)


def steered(model, width: int):
    saved = dict(sparse_choice.INT8_COSTS)
    sparse_choice.INT8_COSTS.update({w: (9.0, 9.0) for w in saved if w != width})
    try:
        return tvmopt.compile(model, target=TARGET[0], sparse="force")
    finally:
        sparse_choice.INT8_COSTS.update(saved)


def widths() -> tuple:
    """The widths whose tiling fits the target's registers (AVX2: not 16)."""
    return WIDTHS if target_cpu().isa.vector_registers == 32 else WIDTHS[1:]


def target_cpu():
    from tvmopt.backends import resolve
    from tvmopt.backends.llvm.cpu import cpu_of

    return cpu_of(resolve(TARGET[0]).target)


def layer_rows(shape, sparsity: float, pattern: int, rounds: int) -> list[str]:
    weight = pruned_int8(shape, sparsity, pattern)
    model = qdq_matmul_model(weight, 128)
    x = {"x": np.random.default_rng(0).standard_normal((128, shape[0])).astype(np.float32)}
    builds = {"dense": tvmopt.compile(model, target=TARGET[0], sparse="off")}
    depth = sparse_step(target_cpu(), weight).depth  # 2 for vpmaddwd (AVX2, full range)
    builds.update({f"{depth}x{w}": steered(model, w) for w in widths()})
    expected = builds["dense"].run(x)["y"]
    for name, build in builds.items():
        assert np.array_equal(build.run(x)["y"], expected), name
    times = interleaved_medians({n: (lambda b=b: b.run(x)) for n, b in builds.items()}, rounds)
    stored = {f"{depth}x{w}": kernel_sparse_int8.stored_fraction(weight, w, depth)
              for w in widths()}  # fmt: skip
    cells = [f"{n} {times[n] / times['dense']:.2f} ({stored[n]:.0%})" for n in stored]
    return [f"| {shape[0]}x{shape[1]} | 1x{pattern} {sparsity:.0%} | "
            f"{times['dense'] * 1e3:.3f} | " + " | ".join(cells) + " |"]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sparsities", default="0.8,0.9")
    parser.add_argument("--patterns", default="8,1")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--target", default="llvm", help='llvm, or {"kind": "llvm", ...}')
    args = parser.parse_args()
    TARGET[0] = json.loads(args.target) if args.target.startswith("{") else args.target
    print("| layer | pruned | dense int8 ms | "
          + " | ".join(f"B {w}: ratio (stored)" for w in widths()) + " |")  # fmt: skip
    print("|---" * (3 + len(widths())) + "|")
    for pattern in (int(p) for p in args.patterns.split(",")):
        for sparsity in (float(s) for s in args.sparsities.split(",")):
            for shape in SHAPES:
                print("\n".join(layer_rows(shape, sparsity, pattern, args.rounds)), flush=True)


if __name__ == "__main__":
    main()
