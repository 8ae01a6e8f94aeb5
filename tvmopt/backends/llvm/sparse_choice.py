"""Which kernel a matmul with a constant weight runs: dense (the panel GEMM), BSR in 1 x B blocks
along N, or CSR (kernel_sparse.py), from the weight's zeros and the --sparse mode.

The structure of W [K, N] is the fraction of its blocks that hold a nonzero, for blocks of
1 x 16, 1 x 8, 1 x 4 and 1 x 1 (CSR): a kernel reads and multiplies whole stored blocks, so its
work is that fraction of the dense work. Each kernel's time is modelled as that fraction times
its cost per stored element relative to the dense kernel (COSTS), measured on BERT-base's layers
(bench/sparse.py's micro-benchmark, docs in bench/results/sparse/results.md):

    auto   the cheapest model; dense unless a sparse kernel is estimated faster
    force  the cheapest sparse kernel wherever W has a zero
    off    dense
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BLOCK_WIDTHS = (16, 8, 4, 1)  # 1 x B blocks along N; 1: unstructured (CSR)
# time per stored element against the dense kernel's per element, for a block a whole vector
# wide (BSR) and for single values (CSR, per padded row); measured: see the module docstring
COSTS = {"bsr": 2.0, "csr": 3.0}


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

    @property
    def block(self) -> str:
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
    if best.estimate < 1.0:
        return Choice(best.kernel, best.width, best.estimate,
                      f"estimated {best.estimate:.2f}x the dense time")  # fmt: skip
    return Choice("dense", 0, 1.0, f"best sparse kernel estimated {best.estimate:.2f}x dense")


def _candidates(weight: Structure, rows: int, lanes: int) -> list[Choice]:
    choices = []
    for width, stored in weight.stored.items():
        if width == 1:
            padded = -(-rows // lanes) * lanes  # the kernel's vectors run over rows
            choices.append(Choice("csr", 1, stored * COSTS["csr"] * padded / rows, ""))
        else:  # a block narrower than a vector uses part of it
            choices.append(Choice("bsr", width, stored * COSTS["bsr"] * max(lanes / width, 1), ""))
    return choices
