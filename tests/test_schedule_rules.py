"""The CPU schedule rules: every shape family they claim is computed right (against ONNX
Runtime), each rule says no to what it does not handle, and the scheduled code is parallel
and vectorized."""

import numpy as np
import pytest
import tvm
from onnx import TensorProto, helper
from tvm import relax

import tvmopt
from tvmopt.backends import resolve_target
from tvmopt.backends.cpu_features import host_features
from tvmopt.backends.llvm.cpu import cpu_of
from tvmopt.backends.llvm.rule_conv2d import Conv2dNCHW, Conv2dTiles, deinterleave_strided_input
from tvmopt.backends.llvm.rule_depthwise import DepthwiseConv2dNCHW
from tvmopt.backends.llvm.rule_fallback import Fallback
from tvmopt.backends.llvm.rule_matmul import Matmul, matmul_row_block
from tvmopt.frontend.onnx import import_model, prepare

from .helpers import assert_matches_ort, make_model

RNG = np.random.default_rng(0)


def symbolic(rank: int) -> list[str]:
    """Output dims left for shape inference to fill in."""
    return [f"d{i}" for i in range(rank)]


def conv_model(cin, cout, size, kernel, stride=1, pad=0, dilation=1, group=1):
    weight = RNG.standard_normal((cout, cin // group, kernel, kernel)).astype(np.float32)
    node = helper.make_node(
        "Conv", ["x", "w", "b"], ["c"], strides=[stride] * 2, pads=[pad] * 4,
        dilations=[dilation] * 2, group=group,
    )  # fmt: skip
    return make_model(
        [node, helper.make_node("Relu", ["c"], ["y"])],
        [("x", TensorProto.FLOAT, [1, cin, size, size])],
        [("y", TensorProto.FLOAT, symbolic(4))],
        initializers={"w": weight, "b": RNG.standard_normal(cout).astype(np.float32)},
    )


@pytest.mark.parametrize(
    "case",
    [
        dict(cin=16, cout=32, size=14, kernel=3, pad=1),  # ResNet-style 3x3
        dict(cin=3, cout=16, size=23, kernel=7, stride=2, pad=3),  # stem: 7x7/2, odd width
        dict(cin=32, cout=24, size=7, kernel=1),  # 1x1, width 7 (no 16-lane split)
        dict(cin=8, cout=8, size=13, kernel=3, pad=2, dilation=2),  # dilated
        dict(cin=32, cout=32, size=12, kernel=3, pad=1, group=32),  # depthwise
        dict(cin=24, cout=24, size=15, kernel=3, stride=2, pad=1, group=24),  # depthwise /2, odd
        dict(cin=16, cout=16, size=7, kernel=5, pad=2, group=16),  # depthwise 5x5, width 7
        dict(cin=8, cout=8, size=11, kernel=3, pad=2, dilation=2, group=8),  # depthwise, dilated
        dict(cin=12, cout=6, size=9, kernel=3, group=3),  # grouped, 6 output channels
    ],
)
def test_conv_shapes_match_onnxruntime(case):
    model = conv_model(**case)
    assert_matches_ort(model, tvmopt.compile(model))


@pytest.mark.parametrize(
    "a_shape, b_shape",
    [
        ((1, 784), (784, 100)),
        ((5, 7), (7, 3)),
        ((2, 12, 16, 8), (2, 12, 8, 16)),
        ((64, 96), (96, 48)),
    ],
)
def test_matmul_shapes_match_onnxruntime(a_shape, b_shape):
    model = make_model(
        [helper.make_node("MatMul", ["a", "b"], ["m"]), helper.make_node("Relu", ["m"], ["y"])],
        [("a", TensorProto.FLOAT, list(a_shape))],
        [("y", TensorProto.FLOAT, symbolic(len(a_shape)))],
        initializers={"b": RNG.standard_normal(b_shape).astype(np.float32)},
    )
    assert_matches_ort(model, tvmopt.compile(model))


def attention_model(batch, heads, seq, dim):
    """Self-attention as PyTorch exports it: softmax(Q @ K^T (a Transpose) / sqrt(dim)) @ V."""
    node = helper.make_node
    return make_model(
        [node("Transpose", ["k"], ["kt"], perm=[0, 1, 3, 2]), node("MatMul", ["q", "kt"], ["s"]),
         node("Mul", ["s", "scale"], ["scaled"]), node("Softmax", ["scaled"], ["p"], axis=-1),
         node("MatMul", ["p", "v"], ["y"])],
        [(name, TensorProto.FLOAT, [batch, heads, seq, dim]) for name in "qkv"],
        [("y", TensorProto.FLOAT, symbolic(4))],
        initializers={"scale": np.float32(dim**-0.5)},
    )  # fmt: skip


@pytest.mark.parametrize(
    "batch, heads, seq, dim",
    [(1, 12, 197, 64), (2, 3, 37, 16), (3, 2, 50, 8), (1, 4, 128, 64), (1, 1, 13, 24)],
)  # ViT-B/16's 197 tokens (a prime), other odd counts, BERT's 128, fewer tokens than lanes x 2
def test_attention_matches_onnxruntime(batch, heads, seq, dim):
    model = attention_model(batch, heads, seq, dim)
    assert_matches_ort(model, tvmopt.compile(model))


@pytest.mark.parametrize("seq", [197, 37])
def test_attention_scores_take_whole_register_tiles(seq):
    """197 rows and columns (a prime) took 1 x 1 register tiles, one scalar column per task:
    ViT-B/16's Q @ K^T ran at 1.3 GFLOP/s (Zen 3). Padded to whole tiles, each task holds
    rows x 2 vectors of accumulators, as at any other size."""
    target = resolve_target("llvm")
    scores = fused_function(attention_model(1, 12, seq, 64), "matmul_multiply")
    scheduled = Matmul().apply(scores, target, False)
    assert scheduled is not None
    script = scheduled.mod["main"].script()
    cpu = cpu_of(target)
    assert f"T.unroll(T.int64({matmul_row_block(cpu)}))" in script
    assert f"T.vectorized(T.int64({2 * cpu.lanes(32)}))" in script


@pytest.mark.parametrize(
    "op, attrs",
    [("Softmax", {"axis": -1}), ("MaxPool", {"kernel_shape": [3, 3], "strides": [2, 2]}),
     ("GlobalAveragePool", {}), ("Sigmoid", {}), ("ReduceMean", {"keepdims": 0})],
)  # fmt: skip
def test_fallback_ops_match_onnxruntime(op, attrs):
    model = make_model(
        [helper.make_node(op, ["x"], ["y"], **attrs)],
        [("x", TensorProto.FLOAT, [1, 8, 15, 15])],
        [("y", TensorProto.FLOAT, symbolic(0 if op == "ReduceMean" else 4))],
    )
    assert_matches_ort(model, tvmopt.compile(model))


def conv_function(model):
    """The fused conv2d TIR function of a one-conv model, as the schedule rules receive it."""
    return fused_function(model, "conv2d")


def fused_function(model, family: str):
    """The first fused TIR function of `model` named after `family`, as the rules receive it."""
    with resolve_target("llvm"):
        lowered = tvm.transform.Sequential(
            [relax.transform.LegalizeOps(), relax.transform.AnnotateTIROpPattern(),
             relax.transform.FuseOps(), relax.transform.FuseTIR()]
        )(import_model(prepare(model)))  # fmt: skip
    return next(f for gv, f in lowered.functions_items() if family in gv.name_hint)


def test_other_tile_sizes_compute_the_same():
    from tvm.s_tir.dlight import ApplyDefaultSchedule

    from .helpers import ort_outputs

    model = conv_model(cin=8, cout=12, size=10, kernel=3, pad=1)
    tiles = Conv2dTiles(oc_block=3, max_vector=4, vectors=2)
    target = resolve_target("llvm")
    with target:
        lowered = tvm.transform.Sequential(
            [relax.transform.LegalizeOps(), relax.transform.AnnotateTIROpPattern(),
             relax.transform.FuseOps(), relax.transform.FuseTIR(),
             ApplyDefaultSchedule(Conv2dNCHW(tiles), Fallback())]
        )(import_model(prepare(model)))  # fmt: skip
    vm = relax.VirtualMachine(tvm.compile(lowered, target), tvm.cpu())
    x = RNG.standard_normal((1, 8, 10, 10)).astype(np.float32)
    got = vm["main"](tvm.runtime.tensor(x)).numpy()
    np.testing.assert_allclose(got, ort_outputs(model, {"x": x})["y"], rtol=1e-5, atol=1e-5)


def test_rules_decline_what_they_do_not_handle():
    target = resolve_target("llvm")
    conv = conv_function(conv_model(cin=4, cout=4, size=8, kernel=3))
    assert Matmul().apply(conv, target, False) is None
    assert Fallback().apply(conv, target, False) is not None  # the fallback takes anything


def test_depthwise_rule_takes_depthwise_convs_only():
    target = resolve_target("llvm")
    depthwise = conv_function(conv_model(cin=16, cout=16, size=16, kernel=3, pad=1, group=16))
    scheduled = DepthwiseConv2dNCHW().apply(depthwise, target, False)
    assert scheduled is not None
    script = scheduled.mod["main"].script()
    assert "T.parallel" in script and "T.vectorized" in script
    grouped = conv_function(conv_model(cin=12, cout=6, size=9, kernel=3, group=3))
    dense = conv_function(conv_model(cin=4, cout=4, size=8, kernel=3))
    assert DepthwiseConv2dNCHW().apply(grouped, target, False) is None
    assert DepthwiseConv2dNCHW().apply(dense, target, False) is None


def test_scheduled_code_is_parallel_and_vectorized():
    func = conv_function(conv_model(cin=16, cout=16, size=32, kernel=3, pad=1))
    scheduled = Conv2dNCHW().apply(func, resolve_target("llvm"), False).mod["main"].script()
    assert "T.parallel" in scheduled and "T.vectorized" in scheduled


def test_each_rule_fires_on_its_operator_family():
    node = helper.make_node
    model = make_model(
        [
            node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]),
            node("Reshape", ["c", "flat"], ["f"]),
            node("MatMul", ["f", "m"], ["mm"]),
            node("Softmax", ["mm"], ["y"]),
        ],
        [("x", TensorProto.FLOAT, [1, 4, 8, 8])],
        [("y", TensorProto.FLOAT, [1, 10])],
        initializers={
            "w": RNG.standard_normal((4, 4, 3, 3)).astype(np.float32),
            "flat": np.array([1, 256], np.int64),
            "m": RNG.standard_normal((256, 10)).astype(np.float32),
        },
    )
    target = resolve_target("llvm")
    with target:
        lowered = tvm.transform.Sequential(
            [relax.transform.LegalizeOps(), relax.transform.AnnotateTIROpPattern(),
             relax.transform.FuseOps(), relax.transform.FuseTIR()]
        )(import_model(prepare(model)))  # fmt: skip
    chosen = {}
    for gv, func in lowered.functions_items():
        if isinstance(func, tvm.tirx.PrimFunc):
            rule = next(
                r for r in (Conv2dNCHW(), Matmul(), Fallback()) if r.apply(func, target, False)
            )
            chosen[gv.name_hint] = type(rule).__name__

    def rules_for(family: str) -> set[str]:
        return {rule for name, rule in chosen.items() if family in name}

    assert rules_for("conv2d") == {"Conv2dNCHW"}
    assert rules_for("matmul") == {"Matmul"}
    assert rules_for("softmax") == {"Fallback"}
    assert_matches_ort(model, tvmopt.compile(model))


@pytest.mark.parametrize("size", [16, 17])  # 17: the padded row (19) has no whole stride-2 split
def test_stride_2_conv_reads_a_deinterleaved_input(size):
    model = conv_model(cin=16, cout=16, size=size, kernel=3, stride=2, pad=1, group=16)
    func = deinterleave_strided_input(conv_function(model))
    scheduled = Conv2dNCHW().apply(func, resolve_target("llvm"), False).mod["main"].script()
    contiguous = "v_rx % T.int64(2), v_rx // T.int64(2) + v_xx]"  # plane, then column
    assert (contiguous in scheduled) == ((size + 2) % 2 == 0)
    assert_matches_ort(model, tvmopt.compile(model))


def test_channels_last_max_pool_vectorizes_over_channels_and_matches():
    """The int8 stem's uint8 NHWC max pool: windows outside, channels vectorized."""
    from tvm.script import relax as R

    from tvmopt.backends.llvm.rule_pool import Pool2dNHWC

    @R.function
    def main(x: R.Tensor((1, 10, 10, 64), "uint8")):
        with R.dataflow():
            y = R.nn.max_pool2d(x, pool_size=[3, 3], strides=[2, 2], padding=[1, 1, 1, 1],
                                layout="NHWC", out_layout="NHWC")  # fmt: skip
            R.output(y)
        return y

    legalized = relax.transform.LegalizeOps()(tvm.IRModule({"main": main}))
    (func,) = [f for gv, f in legalized.functions.items() if gv.name_hint != "main"]
    scheduled = Pool2dNHWC().apply(func, resolve_target(None), False)
    assert scheduled is not None and "T.vectorized" in scheduled.mod.script()
    func = scheduled.mod["main"].with_attr("global_symbol", "main")  # an entry point to call
    lib = tvm.compile(tvm.IRModule({"main": func}), target=resolve_target(None))
    x = np.random.default_rng(0).integers(0, 256, (1, 10, 10, 64)).astype(np.uint8)
    out = tvm.runtime.tensor(np.zeros((1, 5, 5, 64), np.uint8))
    lib(tvm.runtime.tensor(x), out)
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))  # 0 is uint8's smallest: max ignores it
    windows = [padded[:, i : i + 9 : 2, j : j + 9 : 2] for i in range(3) for j in range(3)]
    np.testing.assert_array_equal(out.numpy(), np.max(windows, axis=0))


@pytest.mark.parametrize("reduce", ["ReduceMean", "ReduceMax", "ReduceSum"])
def test_a_reduction_over_a_unit_axis_keeps_its_consumers_apart(reduce):
    """Over a size-1 axis a reduction loses its loop in dlight's normalization and looked
    element-wise: the Add after it was inlined into it, init included, and added 1 twice
    (found by the differential fuzzer, tests/fuzz; fixed in rule_fallback.py)."""
    axes = {"axes": [0]} if reduce != "ReduceSum" else {}
    inputs = ["x", "axes"] if reduce == "ReduceSum" else ["x"]
    model = make_model(
        [helper.make_node(reduce, inputs, ["r"], keepdims=0, **axes),
         helper.make_node("Add", ["r", "one"], ["y"])],
        [("x", TensorProto.FLOAT, [1, 6, 5])],
        [("y", TensorProto.FLOAT, [6, 5])],
        {"one": np.float32(1.0), "axes": np.array([0], np.int64)},
    )  # fmt: skip
    assert_matches_ort(model, tvmopt.compile(model))


# skipif, not a second xfail: pytest reads the unconditional xfail first and ran the test, which
# died with SIGILL on a Zen 3 (znver4 code) before the model refused to run on a CPU it lacks
@pytest.mark.skipif(
    "avx512f" not in (host_features() or ()) or cpu_of(resolve_target("llvm")).mcpu != "znver4",
    reason="only znver4 code shows it, and only a znver4 CPU runs it",
)
def test_a_pad_fused_with_a_multiply_matches_onnxruntime_on_znver4():
    """Found by the differential fuzzer (seed 406): Pad then Div by a broadcast constant, fused
    into one Fallback kernel, gave 1e19 and NaN at in-range positions at -O2/-O3, built for
    znver4 only (skylake-avx512, x86-64-v3: exact): LLVM vectorized the guarded read into masked
    vpgatherdps that read garbage. The fallback now vectorizes a block that reads buffers of other
    shapes in vectors within a row (rows of 6 and 8: 2 floats, rule_fallback._vector_width), so
    no gather is left, and it matches; it was a strict xfail until then."""
    rng = np.random.default_rng(0)
    model = make_model(
        [helper.make_node("Pad", ["x", "pads"], ["p"]), helper.make_node("Div", ["p", "d"], ["y"])],
        [("x", TensorProto.FLOAT, [1, 5, 10, 6])],
        [("y", TensorProto.FLOAT, [1, 5, 12, 8])],
        {"pads": np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64),
         "d": rng.uniform(0.5, 2.0, (1, 5, 1, 8)).astype(np.float32)},
    )  # fmt: skip
    assert_matches_ort(model, tvmopt.compile(model, target={"kind": "llvm", "mcpu": "znver4"}))
