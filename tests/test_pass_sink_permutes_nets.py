"""SinkPermutes (passes/sink_permutes.py) through the ops that kept EfficientNet, the FPN
detector and DenseNet NCHW: SiLU and squeeze-excite gates, means followed by a flatten, image
resizes (sink_resize.py), a detection head's reshapes (sink_reshape.py) and concats of one
tensor or of DenseNet's 25. Each rewrite computes what it computed before."""

import numpy as np
import pytest
from tvm import relax

from tvmopt.passes.sink_permutes import NCHW_TO_NHWC, NHWC_TO_NCHW, channels_last
from tvmopt.passes.sink_reshape import _groups

from .passes_helpers import f32, module, run_relax


def _calls(mod) -> list[relax.Call]:
    bindings = [b for block in mod["main"].body.blocks for b in block.bindings]
    return [b.value for b in bindings if isinstance(b.value, relax.Call)]


def _ops(mod) -> list[str]:
    return [call.op.name.removeprefix("relax.") for call in _calls(mod)]


def _random(*shapes, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(shape).astype(np.float32) for shape in shapes]


def _assert_same(mod, sunk, *arrays):
    np.testing.assert_allclose(run_relax(sunk, *arrays), run_relax(mod, *arrays),
                               rtol=1e-5, atol=1e-6)  # fmt: skip


def squeeze_excite(bb, t):
    """EfficientNet's MBConv between two channels-last convs: SiLU, then each channel scaled by
    a sigmoid gate of the channels' means (the gate's own 1x1 convs left out)."""
    x = bb.emit(relax.op.nn.silu(bb.emit(relax.op.permute_dims(t, NHWC_TO_NCHW))))
    means = bb.emit(relax.op.mean(x, [2, 3], keepdims=True))
    gate = bb.emit(relax.op.sigmoid(bb.emit(relax.op.nn.silu(means))))
    return relax.op.permute_dims(bb.emit(relax.op.multiply(x, gate)), NCHW_TO_NHWC)


def test_silu_and_a_squeeze_excite_gate_stay_channels_last():
    mod = module({"t": f32(1, 5, 5, 8)}, squeeze_excite)
    sunk = channels_last(mod)
    assert "permute_dims" not in _ops(sunk)
    _assert_same(mod, sunk, *_random((1, 5, 5, 8)))


def test_a_permute_of_unit_axes_after_a_global_mean_is_a_reshape():
    """(1, 1, 1, C) -> (1, C, 1, 1) moves no data: the classifier's flatten reads it as is."""

    def pooled_flat(bb, t):
        y = bb.emit(relax.op.permute_dims(t, NHWC_TO_NCHW))
        return relax.op.reshape(bb.emit(relax.op.mean(y, [2, 3], keepdims=True)), (1, 8))

    mod = module({"t": f32(1, 4, 4, 8)}, pooled_flat)
    sunk = channels_last(mod)
    assert _ops(sunk) == ["mean", "reshape", "reshape"]
    _assert_same(mod, sunk, *_random((1, 4, 4, 8)))


@pytest.mark.parametrize(
    "method, mode",
    [("nearest_neighbor", "asymmetric"), ("linear", "half_pixel")],  # the detector's two
)
def test_a_resized_map_concatenated_with_another_stays_channels_last(method, mode):
    """An FPN's top-down step: the coarse map upsampled 2x and concatenated with a lateral."""

    def top_down(bb, coarse, lateral):
        up = bb.emit(relax.op.image.resize2d(
            bb.emit(relax.op.permute_dims(coarse, NHWC_TO_NCHW)), (6, 8), method=method,
            coordinate_transformation_mode=mode, rounding_method="floor"))  # fmt: skip
        side = bb.emit(relax.op.permute_dims(lateral, NHWC_TO_NCHW))
        return relax.op.permute_dims(bb.emit(relax.op.concat([up, side], 1)), NCHW_TO_NHWC)

    mod = module({"coarse": f32(1, 3, 4, 8), "lateral": f32(1, 6, 8, 5)}, top_down)
    sunk = channels_last(mod)
    assert _ops(sunk) == ["image.resize2d", "concat"]
    assert str(_calls(sunk)[0].attrs.layout) == "NHWC"
    _assert_same(mod, sunk, *_random((1, 3, 4, 8), (1, 6, 8, 5)))


def detection_head(bb, t):
    """The detector's head on a channels-last (1, H, W, A*O) prediction: (1, A, O, H*W), then
    (1, A, H*W, O), then (1, A*H*W, O)."""
    y = bb.emit(relax.op.sigmoid(bb.emit(relax.op.permute_dims(t, NHWC_TO_NCHW))))
    split = bb.emit(relax.op.reshape(y, (1, 2, 6, 20)))
    boxes = bb.emit(relax.op.permute_dims(split, (0, 1, 3, 2)))
    return relax.op.reshape(boxes, (1, 40, 6))


def test_a_detection_heads_two_permutes_become_one():
    mod = module({"t": f32(1, 4, 5, 12)}, detection_head)
    sunk = channels_last(mod)
    assert _ops(sunk) == ["sigmoid", "reshape", "permute_dims", "reshape"]
    assert [int(a) for a in _calls(sunk)[2].attrs.axes] == [0, 2, 1, 3]
    _assert_same(mod, sunk, *_random((1, 4, 5, 12)))


def test_a_flatten_of_a_map_keeps_its_permute():
    """(1, C, H, W) -> (1, C*H*W) reads the channels outermost: no run of NHWC's axes."""

    def flatten(bb, t):
        return relax.op.reshape(bb.emit(relax.op.permute_dims(t, NHWC_TO_NCHW)), (1, 60))

    mod = module({"t": f32(1, 3, 4, 5)}, flatten)
    sunk = channels_last(mod)
    assert _ops(sunk) == ["permute_dims", "reshape"]
    _assert_same(mod, sunk, *_random((1, 3, 4, 5)))


def test_reshape_runs_pair_axes_with_equal_products_units_joining_the_last():
    assert _groups([1, 16, 8, 8], [1, 2, 8, 64]) == [([0], [0]), ([1], [1, 2]), ([2, 3], [3])]
    assert _groups([1, 16, 1, 1], [1, 16]) == [([0], [0]), ([1, 2, 3], [1])]
    assert _groups([2, 3], [7]) is None


@pytest.mark.parametrize("width", [1, 25])
def test_a_concat_of_one_or_of_densenets_25_permuted_tensors_stays_channels_last(width):
    """Each dense block's first layer reads a concat of the block's input alone; the last layer
    of DenseNet-121's third block reads 25 tensors."""

    def dense(bb, *maps):
        permuted = [bb.emit(relax.op.permute_dims(m, NHWC_TO_NCHW)) for m in maps]
        relu = bb.emit(relax.op.nn.relu(bb.emit(relax.op.concat(permuted, 1))))
        return relax.op.permute_dims(relu, NCHW_TO_NHWC)

    mod = module({f"m{i}": f32(1, 3, 3, 2) for i in range(width)}, dense)
    sunk = channels_last(mod)
    assert _ops(sunk) == ["concat", "nn.relu"]
    _assert_same(mod, sunk, *_random(*[(1, 3, 3, 2)] * width))
