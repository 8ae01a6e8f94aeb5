"""FoldChannelShuffle (passes/channel_shuffle.py): a channel shuffle becomes one take along the
channels, which sinks below per-channel ops and depthwise convs and vanishes into a dense conv's
weight; a reshape-transpose-reshape that is not a shuffle is left alone; what it rewrites
computes what it computed before. Also the permute that sinks through a take
(sink_permutes.py)."""

import numpy as np
import tvm
from tvm import relax

from tvmopt.passes.channel_shuffle import FoldChannelShuffle
from tvmopt.passes.sink_permutes import NHWC_TO_NCHW, channels_last

from .passes_helpers import const, f32, module, run_relax

RNG = np.random.default_rng(0)
C, G, HW = 12, 3, 5
DEPTHWISE = RNG.standard_normal((C, 1, 3, 3)).astype(np.float32)
BIAS = RNG.standard_normal((1, C, 1, 1)).astype(np.float32)
DENSE = RNG.standard_normal((8, C, 1, 1)).astype(np.float32)
SHUFFLE = np.arange(C).reshape(G, C // G).T.reshape(-1)  # channel j reads channel SHUFFLE[j]


def _shuffle(bb, x, axes=(0, 2, 1, 3, 4)):
    split = bb.emit(relax.op.reshape(x, (1, G, C // G, HW, HW)))
    swapped = bb.emit(relax.op.permute_dims(split, axes))
    return bb.emit(relax.op.reshape(swapped, (1, C, HW, HW)))


def _unit(bb, x):
    """relu -> shuffle -> depthwise conv -> + bias -> dense 1x1 conv (ShuffleNet's, less groups)."""
    shuffled = _shuffle(bb, bb.emit(relax.op.nn.relu(x)))
    dw = bb.emit(relax.op.nn.conv2d(shuffled, const(DEPTHWISE), padding=1, groups=C))
    return relax.op.nn.conv2d(bb.emit(relax.op.add(dw, const(BIAS))), const(DENSE))


def _expected(bb, x):
    """The shuffle folded: the depthwise weight and the bias indexed as the unshuffled tensor
    is, the dense conv's input channels too."""
    inverse = np.argsort(SHUFFLE)
    dw = bb.emit(relax.op.nn.conv2d(bb.emit(relax.op.nn.relu(x)), const(DEPTHWISE[inverse]),
                                    padding=1, groups=C))  # fmt: skip
    biased = bb.emit(relax.op.add(dw, const(BIAS[:, inverse])))
    return relax.op.nn.conv2d(biased, const(DENSE[:, inverse]))


def _ops(mod) -> list[str]:
    return [b.value.op.name.removeprefix("relax.") for block in mod["main"].body.blocks
            for b in block.bindings if isinstance(b.value, relax.Call)]  # fmt: skip


def _fold(mod):
    return relax.transform.DeadCodeElimination()(FoldChannelShuffle(mod))


def test_shuffle_before_a_dense_conv_vanishes_into_its_weight():
    before = module({"x": f32(1, C, HW, HW)}, _unit)
    expected = module({"x": f32(1, C, HW, HW)}, _expected)
    tvm.ir.assert_structural_equal(_fold(before), expected)


def test_folded_unit_computes_the_same():
    x = RNG.standard_normal((1, C, HW, HW)).astype(np.float32)
    before = module({"x": f32(1, C, HW, HW)}, _unit)
    np.testing.assert_allclose(run_relax(_fold(before), x), run_relax(before, x), rtol=1e-5,
                               atol=1e-5)  # fmt: skip


def test_other_reshape_transpose_reshape_is_no_shuffle():
    """Swapping the spatial axes of the 5-D view is no permutation of the channels."""

    def body(bb, x):
        return relax.op.nn.relu(_shuffle(bb, x, axes=(0, 1, 2, 4, 3)))

    before = module({"x": f32(1, C, HW, HW)}, body)
    assert "take" not in _ops(_fold(before))
    tvm.ir.assert_structural_equal(_fold(before), relax.transform.DeadCodeElimination()(before))


def test_shuffle_no_conv_reads_stays_one_take():
    """ShuffleNetV2's shuffle after a concat feeds a split: it stays, as one gather."""

    def body(bb, x):
        return relax.op.nn.relu(_shuffle(bb, x))

    before = module({"x": f32(1, C, HW, HW)}, body)
    after = _fold(before)
    assert _ops(after) == ["nn.relu", "take"]
    x = RNG.standard_normal((1, C, HW, HW)).astype(np.float32)
    np.testing.assert_array_equal(run_relax(after, x), run_relax(before, x))


def test_permute_sinks_through_a_take_along_the_channels():
    """take(permute(t, NHWC->NCHW), i, axis=1) = permute(take(t, i, axis=3), NHWC->NCHW)."""

    def body(bb, t):
        nchw = bb.emit(relax.op.permute_dims(t, NHWC_TO_NCHW))
        return relax.op.nn.relu(bb.emit(relax.op.take(nchw, const(SHUFFLE, "int32"), axis=1)))

    before = module({"t": f32(1, HW, HW, C)}, body)
    after = channels_last(before)
    assert _ops(after) == ["take", "nn.relu", "permute_dims"]
    take = after["main"].body.blocks[0].bindings[0].value
    assert int(take.attrs.axis) == 3
    t = RNG.standard_normal((1, HW, HW, C)).astype(np.float32)
    np.testing.assert_array_equal(run_relax(after, t), run_relax(before, t))


def test_a_split_shuffle_becomes_a_take_per_half():
    """ShuffleNetV2: a shuffle's output split in two (slices of the channels) becomes one take
    of half the channels per half, which the rules for whole permutations leave alone (a
    weight or bias permuted for half the channels would not fit the whole input)."""
    half = C // 2
    dense = RNG.standard_normal((8, half, 1, 1)).astype(np.float32)
    bias = RNG.standard_normal((1, half, 1, 1)).astype(np.float32)

    def body(bb, x):
        shuffled = _shuffle(bb, x)
        kept = bb.emit(relax.op.strided_slice(shuffled, [1], [0], [half], [1]))
        changed = bb.emit(relax.op.strided_slice(shuffled, [1], [half], [C], [1]))
        biased = bb.emit(relax.op.add(kept, const(bias)))
        conv = bb.emit(relax.op.nn.conv2d(changed, const(dense)))
        return relax.op.concat([biased, relax.op.nn.relu(conv)], axis=1)

    before = module({"x": f32(1, C, HW, HW)}, body)
    after = _fold(before)
    assert "strided_slice" not in _ops(after) and _ops(after).count("take") == 2
    x = RNG.standard_normal((1, C, HW, HW)).astype(np.float32)
    np.testing.assert_allclose(run_relax(after, x), run_relax(before, x), rtol=1e-5, atol=1e-5)


def test_slices_without_strides_or_of_a_scalar_take():
    """A slice with no strides argument (the recurrent converters emit those) is folded into the
    take's indices; a take of one scalar index drops the channel axis, so the slice after it
    names another axis and is left as it is (both crashed the pass)."""

    def body(bb, x):
        rows = bb.emit(relax.op.take(x, const(SHUFFLE, "int32"), axis=1))
        first = bb.emit(relax.op.strided_slice(rows, [1], [0], [4]))
        plane = bb.emit(relax.op.take(x, const(np.array(2), "int32"), axis=1))
        column = bb.emit(relax.op.strided_slice(plane, [1], [1], [3]))
        return relax.op.add(first, bb.emit(relax.op.sum(column)))

    before = module({"x": f32(1, C, HW, HW)}, body)
    after = _fold(before)
    assert _ops(after) == ["take", "take", "strided_slice", "sum", "add"]
    x = RNG.standard_normal((1, C, HW, HW)).astype(np.float32)
    np.testing.assert_array_equal(run_relax(after, x), run_relax(before, x))
