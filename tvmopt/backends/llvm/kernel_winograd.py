"""The float32 3x3 stride-1 conv2d channels last by Winograd's minimal filtering, F(m x m, 3 x 3)
(Lavin and Gray, CVPR 2016), as one TIR function:

    x [N, H, W, C] -> padded, cut into overlapping tiles of a x a (a = m + 2), m x m apart
        -> V[e*a + u, p, c] = (Bᵀ d_p B)[e, u]                  (each tile p, each channel)
        -> M[e*a + u, 0, p, no, ni] = sum over c of V[e*a + u, p, c] * U[e*a + u, no, c, ni]
        -> y[n, h, w, o] = (Aᵀ M_p A)[h % m, w % m] + bias[o]

U = G g Gᵀ is the weight transformed at compile time, packed in panels of L output channels. The
a² GEMMs take 9m² / a² times the multiplies of the direct conv (F(4x4): 4x fewer); the transforms
are additions and constant multiples. The transform matrices come from TVM's Cook-Toom
construction (topi's winograd_util), with its interpolation points chosen for accuracy. The
block names are what the CPU schedule rule (rule_winograd.py) looks for.
"""

from __future__ import annotations

from functools import cache

import numpy as np
from tvm import te, tirx
from tvm.topi.nn.winograd_util import _cook_toom_convolution, _interpolation_points

from ...passes.conv_geometry import ConvGeometry
from .kernel_conv_nhwc import padded_nhwc

INPUT_ROWS, INPUT = "winograd_input_rows", "winograd_input"
GEMM, PRODUCT = "winograd_gemm", "winograd_product"
OUTPUT_COLUMNS, OUTPUT = "winograd_output_columns", "winograd_output"
KERNEL = 3
DEFAULT_TILE = 4  # F(4x4, 3x3): 4x fewer multiplies, within 3e-6 of the direct conv
# on 7x7 maps a 4x4 tile leaves a third of its outputs unused, and the 36 GEMMs of 4 tiles each
# stream a weight 4x the direct one's: bench/winograd.py measured 1.06x and 1.25x on 512
# channels (an earlier microbenchmark: 0.8x), for 28 MiB more weight per conv
MIN_OUTPUT = 14


@cache
def transform_matrices(tile: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A [a, m], B [a, a], G [a, 3] for output tiles of m x m."""
    points = _interpolation_points(tile + KERNEL - 1)
    return _cook_toom_convolution(points, tile, KERNEL)


def applies(geometry: ConvGeometry) -> bool:
    """3x3, stride 1, undilated, padded by at most 2 (the tiles reach 2 past each output)."""
    return (
        geometry.kernel == (KERNEL, KERNEL) and geometry.strides == (1, 1)
        and geometry.dilation == (1, 1) and max(geometry.padding) <= KERNEL - 1
    )  # fmt: skip


def pays(geometry: ConvGeometry) -> bool:
    """Applies, on an output map large enough for Winograd's tiles to pay."""
    return applies(geometry) and min(geometry.out_hw) >= MIN_OUTPUT


def transform_weight(weight_oihw: np.ndarray, tile: int, lanes: int) -> np.ndarray:
    """[O, C, 3, 3] -> U [a², O/L, C, L]: G g Gᵀ, output channels zero-padded to whole panels of
    L = `lanes`."""
    _, _, g = transform_matrices(tile)
    out, channels = weight_oihw.shape[:2]
    u = np.einsum("ei,ocij,uj->euco", g, weight_oihw.astype(np.float64), g)
    padded = np.zeros((*u.shape[:3], -(-out // lanes) * lanes))
    padded[..., :out] = u
    alpha = len(g)
    panels = padded.reshape(alpha * alpha, channels, -1, lanes).transpose(0, 2, 1, 3)
    return np.ascontiguousarray(panels, dtype=np.float32)


def _combination(index, column_terms):
    """sum over i of coefficient[i][index] * term(i), as a Select over the values of `index`:
    once the schedule unrolls `index`, each case is one constant sum with its zeros left out."""
    cases = [
        sum((float(c) * term for c, term in column_terms(k) if c != 0), tirx.const(0.0, "float32"))
        for k in range(column_terms.count)
    ]
    result = cases[-1]
    for k in range(len(cases) - 2, -1, -1):
        result = tirx.Select(index == k, cases[k], result)
    return result


class _Columns:
    """column_terms(k): the (coefficient, term) pairs of column k of `matrix`."""

    def __init__(self, matrix: np.ndarray, term):
        self.matrix, self.term, self.count = matrix, term, matrix.shape[1]

    def __call__(self, k):
        return [(self.matrix[i, k], self.term(i)) for i in range(self.matrix.shape[0])]


def _tiles(geometry: ConvGeometry, tile: int) -> tuple[int, int]:
    return tuple(-(-out // tile) for out in geometry.out_hw)


def _input_transform(padded, geometry: ConvGeometry, tile: int):
    """V = Bᵀ d B per tile and channel, in two passes: rows (Bᵀ d), then columns."""
    _, b, _ = transform_matrices(tile)
    alpha, (th, tw) = len(b), _tiles(geometry, tile)
    n, c = int(padded.shape[0]), int(padded.shape[3])

    def pixel(p, i, j, k):
        image, rest = p // (th * tw), p % (th * tw)
        return padded[image, rest // tw * tile + i, rest % tw * tile + j, k]

    rows = te.compute(
        (alpha, alpha, n * th * tw, c),
        lambda e, j, p, k: _combination(e, _Columns(b, lambda i: pixel(p, i, j, k))),
        name=INPUT_ROWS,
    )
    return te.compute(
        (alpha * alpha, n * th * tw, c),
        lambda eu, p, k: _combination(
            eu % alpha, _Columns(b, lambda j: rows[eu // alpha, j, p, k])
        ),
        name=INPUT,
    )


def _gemm(v, u):
    """M[eu, 0, p, no, ni]: one GEMM per transformed position eu, in the panel GEMM's shape."""
    channels = int(v.shape[2])
    rc = te.reduce_axis((0, channels), name="rc")
    shape = (int(v.shape[0]), 1, int(v.shape[1]), int(u.shape[1]), int(u.shape[3]))
    acc = te.compute(
        shape,
        lambda eu, i, p, no, ni: te.sum(v[eu, p, rc] * u[eu, no, rc, ni], axis=[rc]),
        name=GEMM,
    )
    # the register tiles' write-out: the schedule computes it at each tile
    return te.compute(shape, lambda *index: acc(*index), name=PRODUCT)


def _output_transform(product, bias, geometry: ConvGeometry, channels: int, tile: int):
    """y = Aᵀ M A per tile, cropped to the output, plus the bias: columns, then rows."""
    a, _, _ = transform_matrices(tile)
    alpha, (th, tw), (oh, ow) = len(a), _tiles(geometry, tile), geometry.out_hw
    n, lanes = int(product.shape[2]) // (th * tw), int(product.shape[4])

    def transformed(e, u, p, o):
        return product[e * alpha + u, 0, p, o // lanes, o % lanes]

    columns = te.compute(
        (alpha, tile, n * th * tw, channels),
        lambda e, wi, p, o: _combination(wi, _Columns(a, lambda u: transformed(e, u, p, o))),
        name=OUTPUT_COLUMNS,
    )

    def value(b, h, w, o):
        p = (b * th + h // tile) * tw + w // tile
        total = _combination(h % tile, _Columns(a, lambda e: columns[e, w % tile, p, o]))
        return total if bias is None else total + bias[o]

    return te.compute((n, oh, ow, channels), value, name=OUTPUT)


def conv2d_winograd(x, u, bias, *, geometry: ConvGeometry, channels: int, tile: int):
    """NHWC float32 input -> NHWC output of `channels` channels; `u` from transform_weight with
    the same `tile`, `bias` [channels] or None."""
    (th, tw) = _tiles(geometry, tile)
    padded = padded_nhwc(x, geometry, True, extent=(th * tile + 2, tw * tile + 2))
    v = _input_transform(padded, geometry, tile)
    return _output_transform(_gemm(v, u), bias, geometry, channels, tile)
