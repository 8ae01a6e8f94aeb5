"""Pack constant matmul weights into contiguous column panels at compile time.

    matmul(x: [M, K], W: const [K, N]) -> reshape(permute_dims(matmul(x, P), [1, 0, 2]), [M, N])
    where P = W as [N / PANEL, K, PANEL] (PANEL output columns per panel, contiguous over K:
    two vectors of float32, 32 on AVX-512, 16 on AVX2, 8 on NEON)

A width that is not whole panels gets zero columns, cut off the result (1000 classes: the rule
would tile 10 columns otherwise, 8.3 -> 3.7 ms on SqueezeNet's last conv; one panel too, where
the rule would pad it at every run), and a row count with
no divisor near the rule's register block gets zero rows the same way (padded_rows).

Read as [K, N], every step over K jumps a whole row of W, so a task streaming its column panel
touches a new cache line per step; packed, each task streams one contiguous block. The layout
transform is numpy on the constant, so nothing is packed at run time. The matmul rule of the CPU
backend then schedules the batch matmul panel by panel. Leading dims of x (as in [B, S, K]
activations) fold into M, since a 2-D W is shared by all of them. Runs after fold_scale_shift
(which folds scales into W first).
"""

from __future__ import annotations

import functools
import operator
from functools import partial

import numpy as np
from tvm import relax
from tvm.relax.dpl import is_const, is_op, wildcard

from ...passes.consts import const, is_float, static_shape, value
from ...passes.rewrite import Rule, rule_pass
from .schedule_util import largest_divisor

VECTORS = 2  # vectors of float32 per panel: the matmul rule's default tile width
_x, _w = wildcard(), is_const()


def _pack(expr, m, panel: int, row_block: int):
    weight, x_shape = value(m[_w]), static_shape(m[_x])
    if weight.ndim != 2 or not is_float(expr):
        return None
    if x_shape is None:
        return _pack_symbolic_rows(expr, m, panel)
    k, n = weight.shape
    width = -(-n // panel) * panel  # whole panels: zero columns pad the last
    if width == panel and not _padded_by_rule(n, panel // VECTORS):
        return None  # one panel: nothing to pack
    rows = int(np.prod(x_shape[:-1]))
    height = padded_rows(rows, row_block)
    padded = np.zeros((k, width), weight.dtype)
    padded[:, :n] = weight
    packed = padded.reshape(k, width // panel, panel).transpose(1, 0, 2)
    x = relax.op.reshape(m[_x], (rows, k))
    if height > rows:
        x = relax.op.nn.pad(x, (0, height - rows, 0, 0))
    panels = relax.op.matmul(x, const(packed))  # [width / PANEL, height, PANEL]
    columns = relax.op.reshape(relax.op.permute_dims(panels, [1, 0, 2]), (height, width))
    if (height, width) != (rows, n):
        columns = relax.op.strided_slice(columns, [0, 1], [0, 0], [rows, n])
    return relax.op.reshape(columns, static_shape(expr))


def _pack_symbolic_rows(expr, m, panel: int):
    """The same panels where the rows are a symbolic count (a decoder's batch x seq); the rule
    pads symbolic rows itself (symbolic_matmul.py). Unpacked, a width of partial panels made
    the rule copy the whole weight, padded, at every run (GPT-2's LM head, 768 x 50257: 268 ms
    a token, 14 ms packed; 2 layers, 2 threads), and a one-row step read W a row per k. The
    packed matmul's permute parts it from its bias and residual, kernels of their own, and it is
    still faster (GPT-2 small, 1 thread, znver4, loaded host, TVM's profile: a decode step at
    past 128, 102 -> 53 ms; a 64-token prompt pass, 633 -> 394 ms). A 2-layer MiniLM-shaped
    encoder (bench/dynamic_dims.py's, 1 thread) at 128 tokens: 1.79x -> 1.22x ONNX Runtime's
    latency; at 1 token, 2.45x -> 0.99x (unpacked there: no symbolic packing at all)."""
    weight, x_shape = value(m[_w]), getattr(m[_x].ty, "shape", None)
    k, n = weight.shape
    width = -(-n // panel) * panel
    if width == panel or not isinstance(x_shape, relax.ShapeExpr) or len(x_shape.values) < 2:
        return None
    rows = functools.reduce(operator.mul, x_shape.values[:-1])
    padded = np.zeros((k, width), weight.dtype)
    padded[:, :n] = weight
    packed = padded.reshape(k, width // panel, panel).transpose(1, 0, 2)
    panels = relax.op.matmul(relax.op.reshape(m[_x], (rows, k)), const(packed))
    columns = relax.op.reshape(relax.op.permute_dims(panels, [1, 0, 2]), (rows, width))
    if width != n:
        columns = relax.op.strided_slice(columns, [1], [0], [n])
    return relax.op.reshape(columns, expr.ty.shape)


def _padded_by_rule(columns: int, lanes: int) -> bool:
    """Whether the matmul rule would pad a one-panel weight of `columns` to whole vectors
    (rule_matmul.padded_columns), copying it at every run: padded here once instead. The
    MLP's last layer, 1024 x 10 on AVX2 (10 columns: a vector and a part): 11 -> 2 us."""
    return columns >= lanes and columns % lanes != 0


def padded_rows(rows: int, row_block: int) -> int:
    """`rows`, or the next multiple of `row_block` where no divisor of `rows` comes within half
    of it and the padding adds at most a quarter: the matmul rule blocks rows by exact divisors,
    and 169 rows (a 13x13 map) would get one row per register block (SqueezeNet's last conv:
    8.3 -> 1.2 ms padded, Zen 3). A batch-1 dense layer stays one row: the rule splits its
    columns instead."""
    padded = -(-rows // row_block) * row_block
    if row_block <= 1 or 2 * largest_divisor(rows, row_block) > row_block or 4 * padded > 5 * rows:
        return rows
    return padded


def PackMatmulWeights(lanes: int = 16, row_block: int = 1):  # noqa: N802 - named like TVM passes
    """The pass, for panels of VECTORS vectors of `lanes` float32 and register blocks of
    `row_block` rows (cpu.py; rule_matmul.py)."""
    pack = partial(_pack, panel=VECTORS * lanes, row_block=row_block)
    rule = Rule("pack_matmul_weights", is_op("relax.matmul")(_x, _w), pack)
    return rule_pass("tvmopt.PackMatmulWeights", [rule])
