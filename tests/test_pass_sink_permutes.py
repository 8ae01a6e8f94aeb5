"""SinkPermutes (passes/sink_permutes.py): the NHWC->NCHW permute after an int8 conv sinks
below element-wise ops, pools and means, and cancels against the next int8 conv's NCHW->NHWC
permute; what it rewrites computes what it computed before."""

import numpy as np
import tvm
from tvm import relax

from tvmopt.passes.sink_permutes import NCHW_TO_NHWC, NHWC_TO_NCHW, channels_last

from .passes_helpers import const, f32, module, run_relax


def _ops(mod) -> list[str]:
    ops = []
    for block in mod["main"].body.blocks:
        for binding in block.bindings:
            if isinstance(binding.value, relax.Call):
                ops.append(binding.value.op.name.removeprefix("relax."))
    return ops


def _ops_of(binding) -> str | None:
    return binding.value.op.name if isinstance(binding.value, relax.Call) else None


def requantize_between(bb, t, r):
    """permute(t) -> relu -> *scale -> round -> clip -> uint8 -> permute back; a residual add."""
    y = bb.emit(relax.op.permute_dims(t, NHWC_TO_NCHW))
    z = bb.emit(relax.op.multiply(bb.emit(relax.op.nn.relu(y)), const(2.0)))
    clipped = relax.op.clip(bb.emit(relax.op.round(z)), relax.prim_value(0.0),
                            relax.prim_value(255.0))  # fmt: skip
    q = bb.emit(relax.op.astype(bb.emit(clipped), "uint8"))
    residual = bb.emit(relax.op.add(y, bb.emit(relax.op.permute_dims(r, NHWC_TO_NCHW))))
    return relax.Tuple([bb.emit(relax.op.permute_dims(q, NCHW_TO_NHWC)), residual])


def test_permutes_between_two_channels_last_tensors_cancel():
    mod = module({"t": f32(1, 4, 4, 8), "r": f32(1, 4, 4, 8)}, requantize_between)
    ops = _ops(channels_last(mod))
    # the requantized tensor is never transposed; the NCHW residual needs one permute, at the end
    assert ops.count("permute_dims") == 1 and ops[-1] == "permute_dims"


def test_sunk_graph_computes_the_same():
    rng = np.random.default_rng(0)
    t, r = (rng.standard_normal((1, 4, 4, 8)).astype(np.float32) * 60 for _ in range(2))
    mod = module({"t": f32(1, 4, 4, 8), "r": f32(1, 4, 4, 8)}, requantize_between)
    before, after = _run_tuple(mod, t, r), _run_tuple(channels_last(mod), t, r)
    for expected, actual in zip(before, after, strict=True):
        np.testing.assert_array_equal(actual, expected)


def residual_stream(bb, t, blocks=8):
    """A ResNet stage's int8 residual stream: each block adds a conv's output (here `t` again,
    permuted back to NCHW) to the dequantized stream, requantizes it and hands it on."""
    stream = bb.emit(relax.op.permute_dims(t, NHWC_TO_NCHW))
    for _ in range(blocks):
        added = bb.emit(relax.op.add(bb.emit(relax.op.permute_dims(t, NHWC_TO_NCHW)), stream))
        z = bb.emit(relax.op.multiply(bb.emit(relax.op.nn.relu(added)), const(2.0)))
        clipped = relax.op.clip(bb.emit(relax.op.round(z)), relax.prim_value(0.0),
                                relax.prim_value(255.0))  # fmt: skip
        q = bb.emit(relax.op.astype(bb.emit(clipped), "uint8"))
        stream = bb.emit(relax.op.multiply(bb.emit(relax.op.astype(q, "float32")), const(0.5)))
    return bb.emit(relax.op.permute_dims(stream, NCHW_TO_NHWC))


def test_a_long_residual_stream_stays_channels_last():
    # 8 blocks of 8 ops: a permute sinks through 64 ops in a row
    mod = module({"t": f32(1, 4, 4, 8)}, residual_stream)
    assert _ops(channels_last(mod)).count("permute_dims") == 0


def _run_tuple(mod, *arrays) -> list[np.ndarray]:
    vm = relax.VirtualMachine(tvm.compile(mod, "llvm"), tvm.cpu())
    return [out.numpy() for out in vm["main"](*[tvm.runtime.tensor(a) for a in arrays])]


def pool_then_mean(bb, t):
    y = bb.emit(relax.op.permute_dims(t, NHWC_TO_NCHW))
    pooled = bb.emit(relax.op.nn.max_pool2d(y, (3, 3), (2, 2), (1, 1, 1, 1)))
    return relax.op.mean(pooled, [2, 3], keepdims=True)


def test_pool_and_mean_run_channels_last():
    mod = module({"t": f32(1, 9, 9, 16)}, pool_then_mean)
    sunk = channels_last(mod)
    bindings = [b for block in sunk["main"].body.blocks for b in block.bindings]
    pools = [b.value for b in bindings if _ops_of(b) == "relax.nn.max_pool2d"]
    assert [p.attrs.layout for p in pools] == ["NHWC"]
    t = np.random.default_rng(1).standard_normal((1, 9, 9, 16)).astype(np.float32)
    np.testing.assert_allclose(run_relax(sunk, t), run_relax(mod, t), rtol=1e-6, atol=1e-6)


def test_a_permute_sinks_past_a_per_channel_constant_permuted_with_it():
    """A [1, C, 1, 1] constant broadcasts along NCHW's channels: sunk below it, the permute
    leaves it [1, 1, 1, C], at compile time (DenseNet's batch norms before its convs)."""
    mod = module(
        {"t": f32(1, 4, 4, 8)},
        lambda bb, t: relax.op.add(bb.emit(relax.op.permute_dims(t, NHWC_TO_NCHW)),
                                   const(np.arange(8, dtype=np.float32).reshape(1, 8, 1, 1))),
    )  # fmt: skip
    sunk = channels_last(mod)
    assert _ops(sunk) == ["add", "permute_dims"]
    t = np.random.default_rng(0).standard_normal((1, 4, 4, 8)).astype(np.float32)
    np.testing.assert_allclose(run_relax(sunk, t), run_relax(mod, t), rtol=1e-6)


def test_a_permute_sinks_through_a_concat_of_permutes_alike():
    """concat(permute(a), permute(b), axis=1) = permute(concat(a, b, axis=3)): Inception's and
    SqueezeNet's branches; a concat of differently permuted tensors keeps them."""

    def body(bb, a, b):
        pa = bb.emit(relax.op.permute_dims(a, NHWC_TO_NCHW))
        pb = bb.emit(relax.op.permute_dims(b, NHWC_TO_NCHW))
        return relax.op.concat([pa, pb], axis=1)

    mod = module({"a": f32(1, 4, 5, 3), "b": f32(1, 4, 5, 6)}, body)
    sunk = channels_last(mod)
    assert _ops(sunk) == ["concat", "permute_dims"]
    rng = np.random.default_rng(1)
    a, b = (rng.standard_normal(s).astype(np.float32) for s in ((1, 4, 5, 3), (1, 4, 5, 6)))
    np.testing.assert_allclose(run_relax(sunk, a, b), run_relax(mod, a, b))

    def mixed(bb, a, b):
        pa = bb.emit(relax.op.permute_dims(a, NHWC_TO_NCHW))
        pb = bb.emit(relax.op.permute_dims(b, (0, 3, 2, 1)))
        return relax.op.concat([pa, pb], axis=1)

    kept = module({"a": f32(1, 4, 5, 3), "b": f32(1, 5, 4, 6)}, mixed)
    tvm.ir.assert_structural_equal(channels_last(kept), relax.transform.ConvertToDataflow()(kept))
