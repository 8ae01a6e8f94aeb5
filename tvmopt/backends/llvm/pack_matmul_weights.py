"""Pack constant matmul weights into contiguous column panels at compile time.

    matmul(x: [M, K], W: const [K, N]) -> reshape(permute_dims(matmul(x, P), [1, 0, 2]), [M, N])
    where P = W as [N / PANEL, K, PANEL] (PANEL output columns per panel, contiguous over K:
    two vectors of float32, 32 on AVX-512, 16 on AVX2, 8 on NEON)

Read as [K, N], every step over K jumps a whole row of W, so a task streaming its column panel
touches a new cache line per step; packed, each task streams one contiguous block. The layout
transform is numpy on the constant, so nothing is packed at run time. The matmul rule of the CPU
backend then schedules the batch matmul panel by panel. Leading dims of x (as in [B, S, K]
activations) fold into M, since a 2-D W is shared by all of them. Runs after fold_scale_shift
(which folds scales into W first).
"""

from __future__ import annotations

from functools import partial

import numpy as np
from tvm import relax
from tvm.relax.dpl import is_const, is_op, wildcard

from ...passes.consts import const, is_float, static_shape, value
from ...passes.rewrite import Rule, rule_pass

VECTORS = 2  # vectors of float32 per panel: the matmul rule's default tile width
_x, _w = wildcard(), is_const()


def _pack(expr, m, panel: int):
    weight, x_shape = value(m[_w]), static_shape(m[_x])
    if weight.ndim != 2 or x_shape is None or not is_float(expr):
        return None
    k, n = weight.shape
    rows = int(np.prod(x_shape[:-1]))
    if n % panel or n == panel:
        return None
    packed = weight.reshape(k, n // panel, panel).transpose(1, 0, 2)
    x = relax.op.reshape(m[_x], (rows, k))
    panels = relax.op.matmul(x, const(packed))  # [N/PANEL, rows, PANEL]
    columns = relax.op.reshape(relax.op.permute_dims(panels, [1, 0, 2]), (rows, n))
    return relax.op.reshape(columns, static_shape(expr))


def PackMatmulWeights(lanes: int = 16):  # noqa: N802 - named like the TVM passes around it
    """The pass, for panels of VECTORS vectors of `lanes` float32 (cpu.py)."""
    pack = partial(_pack, panel=VECTORS * lanes)
    rule = Rule("pack_matmul_weights", is_op("relax.matmul")(_x, _w), pack)
    return rule_pass("tvmopt.PackMatmulWeights", [rule])
