"""Which kernel a matmul with a constant weight runs: dense (the panel GEMM), BSR in 1 x B blocks
along N, or CSR (kernel_sparse.py), from the weight's zeros and the --sparse mode.

The structure of W [K, N] is the fraction of its blocks that hold a nonzero, for blocks of
1 x 16, 1 x 8, 1 x 4 and 1 x 1 (CSR): a kernel reads and multiplies whole stored blocks, so its
work is that fraction of the dense work. Each kernel's time against the dense kernel's is
modelled as a fixed part (copying x into panels, writing y) plus that fraction times its cost
per stored element (COSTS), fitted to the fastest runs ("min") of bench/sparse_layers.py on
BERT-base's layers with the token-vectorized kernels (znver4, one thread, 80/90/95%;
bench/results/sparse/layers-avx512-vnni-token-fit.md), time against dense:

    BSR 1x8 (bsr_token_matmul)   0.28-0.29 at 20% stored, 0.19-0.20 at 10%, 0.14-0.15 at 5%,
                                 0.65-0.67 at 57%, 0.89-0.97 at 83%:          0.12 + 1.0 s
    BSR 1x16                     0.44-0.46 at 36%, 0.26-0.27 at 19%, 0.17-0.19 at 10%
    CSR                          0.42-0.56 at 20%, 0.24-0.38 at 10%, 0.16-0.19 at 5%:
                                                                               0.1 + 2.3 s

Blocks narrower than a vector cost no more per element (GROWTH 1): the token kernel vectorizes
over rows, not over the block (1x8 and 1x16 on AVX-512 fit one line). Before this fit (the
kernels before bsr_token_matmul) 1x8 was modelled 0.1 + 1.6 s and CSR 0.17 + 2.3 s.

A quantized matmul's int8 weight (choose_int8) is modelled the same way against the dense int8
GEMM, over the D x B blocks of kernel_sparse_int8.py (INT8_COSTS).

    auto   the cheapest estimate, where it is at most AUTO_BELOW of the dense time
    force  the cheapest sparse kernel wherever W has a zero
    off    dense
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

BLOCK_WIDTHS = (16, 8, 4, 1)  # 1 x B blocks along N; 1: unstructured (CSR)
# (fixed part, per stored element) of the time against the dense kernel's, for blocks a whole
# vector wide (each halving of the block's width costs GROWTH more per element) and for single
# values (CSR, per padded row); fitted as the module docstring says
COSTS = {"bsr": (0.12, 1.0), "csr": (0.1, 2.3)}
GROWTH = 1.0
# int8 (kernel_sparse_int8.py, D x B blocks) against the dense int8 GEMM, per B: (fixed part,
# per stored block share), fitted to the slower of two runs of bench/sparse_int8_layers.py on
# BERT-base's layers at 90% (128 tokens, znver4, one thread; bench/results/sparse/
# int8-layers-avx512-vnni.md): 34% of 4x4 blocks stored 0.37-0.68, 81% 0.96-1.07; 4x8 34%
# 0.49-0.68, 97% 1.11-1.39; 4x16 57% 0.69-0.86, 100% 1.15-1.40; 4x1 34% 0.66-1.01. On AVX2 the
# kernel gains more (its dense int8 GEMM is slower): conservative there
INT8_COSTS = {16: (0.15, 1.25), 8: (0.3, 1.1), 4: (0.4, 0.85), 1: (0.25, 1.8)}
AUTO_BELOW = 0.9  # a margin for the model's error (BSR 1x8 at 83% stored: 0.95, ran 0.89-0.97)


@dataclass(frozen=True)
class Structure:
    """W's zeros: its nonzero fraction, and per block width B the fraction of 1 x B blocks
    with a nonzero (what a kernel in such blocks stores)."""

    density: float
    stored: dict

    def describe(self) -> str:
        blocks = ", ".join(f"1x{width} {fraction:.1%}" for width, fraction in self.stored.items())
        return f"density {self.density:.1%}; blocks stored: {blocks}"


def structure(weight: np.ndarray) -> Structure:
    k, n = weight.shape
    nonzero = weight != 0
    stored = {width: float(nonzero.reshape(k, n // width, width).any(axis=2).mean())
              for width in BLOCK_WIDTHS if n % width == 0}  # fmt: skip
    return Structure(float(nonzero.mean()), stored)


@dataclass(frozen=True)
class Choice:
    kernel: str  # "dense", "bsr" or "csr"
    width: int  # B of bsr's 1 x B blocks; 1 for csr; 0 for dense
    estimate: float  # modelled time against the dense kernel's
    reason: str
    depth: int = 1  # rows along K of an int8 kernel's blocks (kernel_sparse_int8.py)

    @property
    def block(self) -> str:
        if self.kernel.startswith("int8-"):  # D x B: a step's word along K by B columns
            return f"{self.depth}x{self.width}"
        return {"dense": "-", "csr": "1x1"}.get(self.kernel, f"1x{self.width}")


def choose(weight: Structure, rows: int, mode: str, lanes: int) -> Choice:
    """The kernel for W of `weight`'s structure times `rows` rows of activations, on vectors of
    `lanes` float32."""
    if mode == "off":
        return Choice("dense", 0, 1.0, "--sparse off")
    if weight.density == 1.0:
        return Choice("dense", 0, 1.0, "no zeros")
    best = min(_candidates(weight, rows, lanes), key=lambda choice: choice.estimate)
    if mode == "force":
        return Choice(best.kernel, best.width, best.estimate, "--sparse force")
    if best.estimate <= AUTO_BELOW:
        return Choice(best.kernel, best.width, best.estimate,
                      f"estimated {best.estimate:.2f}x the dense time")  # fmt: skip
    return Choice("dense", 0, 1.0, f"best sparse kernel estimated {best.estimate:.2f}x dense")


def int8_structure(weight: np.ndarray, depth: int = 4) -> Structure:
    """Wq's zeros as kernel_sparse_int8.py stores them: per width B, the share of D x B blocks
    (`depth` D rows along K: one 32-bit word of its int8 step) with a nonzero."""
    from .kernel_sparse_int8 import BLOCK_WIDTHS as QUAD_WIDTHS
    from .kernel_sparse_int8 import stored_fraction

    stored = {width: stored_fraction(weight, width, depth) for width in QUAD_WIDTHS
              if weight.shape[1] % width == 0}  # fmt: skip
    return Structure(float((weight != 0).mean()), stored)


def choose_int8(weight: Structure, mode: str, widths: tuple, depth: int = 4) -> Choice:
    """The int8 kernel for Wq of `weight`'s structure (int8_structure), among `depth` x B blocks
    of `widths` (those whose accumulators fit the registers)."""
    candidates = [Choice("int8-bsr" if width > 1 else "int8-csr", width,
                         INT8_COSTS[width][0] + weight.stored[width] * INT8_COSTS[width][1], "",
                         depth)
                  for width in widths if width in weight.stored]  # fmt: skip
    if weight.density == 1.0 or not candidates:
        return Choice("dense", 0, 1.0, "no zeros" if weight.density == 1.0 else "no tiling fits")
    best = min(candidates, key=lambda choice: choice.estimate)
    if mode == "force":
        return replace(best, reason="--sparse force")
    if best.estimate <= AUTO_BELOW:
        return replace(best, reason=f"estimated {best.estimate:.2f}x the dense int8 time")
    return Choice("dense", 0, 1.0, f"best sparse int8 kernel estimated {best.estimate:.2f}x dense")


def _candidates(weight: Structure, rows: int, lanes: int) -> list[Choice]:
    return [_candidate(width, stored, rows, lanes) for width, stored in weight.stored.items()]


def _candidate(width: int, stored: float, rows: int, lanes: int) -> Choice:
    if width == 1:
        fixed, per_element = COSTS["csr"]
        padded = -(-rows // lanes) * lanes  # the kernel's vectors run over rows
        return Choice("csr", 1, fixed + stored * per_element * padded / rows, "")
    fixed, per_element = COSTS["bsr"]
    narrower = math.log2(max(lanes / width, 1))  # a block narrower than a vector uses part of it
    return Choice("bsr", width, fixed + stored * per_element * GROWTH**narrower, "")
