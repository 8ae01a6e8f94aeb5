"""A layout permute sinks through a reshape that merges or splits axes the permute keeps
together and in order:

    reshape(permute_dims(t, p), s) = permute_dims(reshape(t, s'), p')

A detection head reshapes its channels-last prediction, read NCHW as (N, A*O, H, W), to
(N, A, O, H*W) and transposes it to (N, A, H*W, O): the reshape splits the channels and merges
the rows and columns, each a run of t's own axes, so it applies to t as (N, H*W, A, O) and the
two permutes compose into one (simplify.py's permute_chain), where the conv's own permute
transposed the whole map first.
"""

from __future__ import annotations

import math

from tvm import relax


def _groups(shape: list[int], target: list[int]) -> list[tuple[list[int], list[int]]] | None:
    """The reshape of `shape` to `target` as runs of axes of each with equal products, in order:
    [(axes of shape, axes of target)]; units join the run they border."""
    groups, i, j = [], 0, 0
    while i < len(shape) or j < len(target):
        ins, outs = [], []
        while not (ins and outs and _product(shape, ins) == _product(target, outs)):
            if (not ins or _product(shape, ins) < _product(target, outs)) and i < len(shape):
                ins, i = [*ins, i], i + 1
            elif j < len(target):
                outs, j = [*outs, j], j + 1
            elif groups and _product(shape, ins) == _product(target, outs) == 1:
                break  # trailing units: they join the last run
            else:
                return None  # products differ: not a reshape of this shape
        groups.append((ins, outs))
    return _trailing_units_joined(groups)


def _trailing_units_joined(groups):
    while len(groups) > 1 and not (groups[-1][0] and groups[-1][1]):
        (ins, outs), (more_ins, more_outs) = groups[-2], groups.pop()
        groups[-1] = ([*ins, *more_ins], [*outs, *more_outs])
    return groups


def _product(shape, axes) -> int:
    return math.prod(shape[a] for a in axes)


def sunk_reshape(reshape: relax.Call, order: tuple[int, ...], source, shape) -> relax.Expr | None:
    """reshape(permute_dims(source, order)) as a permute of a reshape of `source`, whose static
    `shape` it is; None where a run of the reshape is not a run of `source`'s axes in order."""
    target = [int(extent) for extent in reshape.ty.shape]
    groups = _groups([shape[axis] for axis in order], target)
    if groups is None:
        return None
    runs = [[order[axis] for axis in ins] for ins, _ in groups]
    if any(run != list(range(run[0], run[0] + len(run))) for run in runs):
        return None
    by_source = sorted(range(len(groups)), key=lambda g: runs[g][0])
    inner = [target[axis] for g in by_source for axis in groups[g][1]]
    axes = _axes_after([len(outs) for _, outs in groups], by_source)
    return relax.op.permute_dims(relax.op.reshape(source, inner), axes)


def _axes_after(widths: list[int], by_source: list[int]) -> list[int]:
    """The permute from the runs in source order (the groups `by_source`, of `widths` axes) back
    to the reshape's order."""
    start, at = {}, 0
    for g in by_source:
        start[g], at = at, at + widths[g]
    return [start[g] + k for g, width in enumerate(widths) for k in range(width)]
