"""Weight-only quantization (int4/int8 weights in groups along K, float32 activations): the packed
layouts, our fused kernels against a numpy reference of the same quantized weights, ONNX Runtime's
MatMulNBits and blocked DequantizeLinear imported onto them, and the errors."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime
import pytest
from onnx import TensorProto, helper, numpy_helper

import tvmopt
from tvmopt.backends.llvm.kernel_weight_only import pack_levels, unpack_levels
from tvmopt.cli import main
from tvmopt.errors import OptionError
from tvmopt.frontend.converters_weight_blocks import pack_bytes, unpack_bytes
from tvmopt.passes.quantize.weight_blocks import quantize_blocks

AVX2 = {"kind": "llvm", "mcpu": "x86-64-v3"}


def matmul_model(shape, columns, bias=False, seed=0) -> onnx.ModelProto:
    """x [..., K] @ W [K, N] (+ b), W random."""
    rng = np.random.default_rng(seed)
    depth = shape[-1]
    weights = [numpy_helper.from_array(rng.standard_normal((depth, columns), np.float32), "W")]
    node = helper.make_node("MatMul", ["x", "W"], ["y" if not bias else "p"], name="proj")
    nodes = [node]
    if bias:
        weights.append(numpy_helper.from_array(rng.standard_normal(columns, np.float32), "b"))
        nodes.append(helper.make_node("Add", ["p", "b"], ["y"], name="bias"))
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [*shape[:-1], columns])], weights,
    )  # fmt: skip
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def inputs(shape, seed=1) -> dict:
    return {"x": np.random.default_rng(seed).standard_normal(shape).astype(np.float32)}


def assert_close(actual, expected, tolerance=1e-5):
    """Within float32 rounding of sums over K: relative to the output's largest magnitude."""
    error = np.abs(actual - expected).max() / np.abs(expected).max()
    assert error <= tolerance, f"error {error:.3g} > {tolerance}"


def kernel_rules(compiled) -> set:
    return {kernel["rule"] for kernel in compiled.metadata.extra["kernels"].values()}


# --- layouts --------------------------------------------------------------------------------


@pytest.mark.parametrize("bits", [4, 8])
@pytest.mark.parametrize("lanes", [8, 16])
def test_panel_packing_round_trips(bits, lanes):
    levels = np.random.default_rng(0).integers(0, 1 << bits, (48, 100)).astype(np.uint8)
    packed = pack_levels(levels, bits, lanes)
    assert packed.dtype == np.uint32 and packed.shape[2] == lanes
    np.testing.assert_array_equal(unpack_levels(packed, bits, lanes, 100), levels)


def test_int4_panels_hold_eight_columns_per_word_first_vector_lowest():
    levels = np.zeros((1, 128), np.uint8)
    levels[0, 3], levels[0, 16 + 3] = 5, 9  # vector 0 and vector 1, lane 3
    packed = pack_levels(levels, 4, 16)
    assert packed[0, 0, 3] == 5 | 9 << 4


@pytest.mark.parametrize("bits", [4, 8])
def test_nbits_bytes_round_trip(bits):
    values = np.random.default_rng(0).integers(0, 1 << bits, (3, 7)).astype(np.uint8)
    packed = pack_bytes(values, bits)
    assert packed.shape == (3, -(-7 * bits // 8))
    np.testing.assert_array_equal(unpack_bytes(packed, bits)[:, :7], values)


@pytest.mark.parametrize(("bits", "symmetric"), [(4, True), (4, False), (8, True), (8, False)])
def test_blocks_dequantize_within_half_a_step(bits, symmetric):
    weight = np.random.default_rng(0).standard_normal((64, 10)).astype(np.float32)
    blocks = quantize_blocks(weight, bits, 32, symmetric)
    steps = np.repeat(blocks.scales, 32, axis=0)
    assert (np.abs(blocks.dequantized() - weight) <= 0.5 * steps * (1 + 1e-5)).all()
    assert blocks.levels.max() < 1 << bits


# --- our quantization, against numpy ---------------------------------------------------------


@pytest.mark.parametrize(
    ("scheme", "bits", "group", "symmetric", "shape", "columns", "target"),
    [
        ("int4-weights", 4, 32, False, (1, 256), 200, None),  # columns not whole panels
        ("int8-weights", 8, 128, True, (1, 256), 192, None),
        ("int4-weights", 4, 64, False, (2, 3, 128), 96, None),  # leading dims fold into M
        ("int4-weights", 4, 32, False, (1, 256), 200, AVX2),
        ("int8-weights", 8, 128, True, (1, 128), 64, AVX2),
    ],
)
def test_weight_only_matches_numpy_of_the_same_levels(  # noqa: PLR0913
    scheme, bits, group, symmetric, shape, columns, target
):
    model = matmul_model(shape, columns, bias=True)
    size = None if group == {4: 32, 8: 128}[bits] else group
    compiled = tvmopt.compile(model, target=target, quantize=scheme, group_size=size)
    assert compiled.metadata.quantization == scheme
    assert "WeightOnlyMatmul" in kernel_rules(compiled)
    kernels = compiled.metadata.extra["kernels"].values()
    assert any("proj" in k["nodes"] for k in kernels)  # the ONNX node, for run --profile
    weight, bias = (numpy_helper.to_array(t) for t in model.graph.initializer)
    feeds = inputs(shape)
    dequantized = quantize_blocks(weight, bits, group, symmetric).dequantized()
    expected = feeds["x"].astype(np.float64) @ dequantized + bias
    assert_close(compiled.run(feeds)["y"], expected)
    assert np.abs(expected - feeds["x"] @ weight - bias).max() > 0  # the levels are not float32's


def test_symbolic_rows_run_on_the_fused_kernel():
    model = matmul_model((1, "sequence", 128), 96)
    compiled = tvmopt.compile(model, quantize="int4-weights", dims={"sequence": (1, 64)})
    assert "WeightOnlyMatmul" in kernel_rules(compiled)
    weight = numpy_helper.to_array(model.graph.initializer[0])
    dequantized = quantize_blocks(weight, 4, 32, symmetric=False).dequantized()
    for rows in (1, 5, 64):
        feeds = inputs((1, rows, 128), seed=rows)
        assert_close(compiled.run(feeds)["y"], feeds["x"].astype(np.float64) @ dequantized)


def test_artifact_holds_the_small_weights(tmp_path):
    model = matmul_model((1, 768), 1024)
    sizes = {}
    for scheme in (None, "int8-weights", "int4-weights"):
        path = tmp_path / f"{scheme}.so"
        tvmopt.compile(model, quantize=scheme).export(path)
        sizes[scheme] = path.stat().st_size
    weights = 768 * 1024
    assert sizes[None] > 4 * weights
    # bits per weight: a level, and a float32 scale and a uint8 zero point per group
    for scheme, bits in (("int8-weights", 8 + 40 / 128), ("int4-weights", 4 + 40 / 32)):
        saved = sizes[None] - sizes[scheme]
        assert saved >= 0.99 * weights * (32 - bits) / 8, (scheme, sizes)


# --- errors ---------------------------------------------------------------------------------


def test_group_that_does_not_divide_k_is_refused():
    with pytest.raises(OptionError, match=r"group size 64 does not divide K = 96 of 'proj'"):
        tvmopt.compile(matmul_model((1, 96), 32), quantize="int4-weights", group_size=64)


def test_cli_refuses_a_group_in_one_line(tmp_path, capsys):
    path = tmp_path / "m.onnx"
    onnx.save(matmul_model((1, 96), 32), path)
    out = tmp_path / "m.so"
    args = ["compile", str(path), "-o", str(out), "--quantize", "int8-weights"]
    args += ["--group-size", "64"]
    assert main(args) == 2  # noqa: PLR2004
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("tvmopt: error: group size 64 does not divide K = 96")
    assert not out.exists()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"group_size": 32}, "group_size is for"),
        ({"quantize": "int4-weights", "group_size": 48}, "group_size must be one of"),
        ({"quantize": "int4-weights", "opt_level": 1}, "opt_level 3"),
    ],
)
def test_bad_weight_only_options(options, message):
    with pytest.raises(OptionError, match=message):
        tvmopt.compile(matmul_model((1, 64), 32), **options)


# --- ONNX Runtime's formats -------------------------------------------------------------------


def nbits_model(depth, columns, bits, block, zeros: bool, seed=0) -> onnx.ModelProto:
    """A MatMulNBits built by hand after its spec: random levels, scales and zero points, B
    zero-padded to whole blocks, bias."""
    rng = np.random.default_rng(seed)
    blocks = -(-depth // block)
    levels = rng.integers(0, 1 << bits, (columns, blocks, block)).astype(np.uint8)
    levels.reshape(columns, -1)[:, depth:] = 0
    initializers = {
        "B": pack_bytes(levels, bits),
        "scales": rng.uniform(0.01, 0.1, (columns, blocks)).astype(np.float32),
    }
    if zeros:
        initializers["zeros"] = pack_bytes(rng.integers(0, 1 << bits, (columns, blocks)), bits)
    initializers["bias"] = rng.standard_normal(columns).astype(np.float32)
    names = ["x", "B", "scales", "zeros" if zeros else "", "", "bias"]
    node = helper.make_node("MatMulNBits", names, ["y"], name="nbits", domain="com.microsoft",
                            K=depth, N=columns, bits=bits, block_size=block)  # fmt: skip
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, depth])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, columns])],
        [numpy_helper.from_array(np.asarray(a), n) for n, a in initializers.items()],
    )  # fmt: skip
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]
    return helper.make_model(graph, opset_imports=opsets)


def ort_run(model, feeds, **config) -> np.ndarray:
    options = onnxruntime.SessionOptions()
    for key, value in config.items():
        options.add_session_config_entry(key, value)
    session = onnxruntime.InferenceSession(model.SerializeToString(), options,
                                           providers=["CPUExecutionProvider"])  # fmt: skip
    return session.run(None, feeds)[0]


@pytest.mark.parametrize(
    ("depth", "columns", "bits", "block", "zeros"),
    [
        (256, 96, 4, 32, True),
        (256, 96, 4, 64, False),  # no zero points: 8
        (80, 64, 4, 32, True),  # K not whole blocks: B padded, x padded to match
        (256, 64, 8, 128, True),
    ],
)
def test_matmul_nbits_by_hand_matches_onnx_runtime(depth, columns, bits, block, zeros):
    model = nbits_model(depth, columns, bits, block, zeros)
    feeds = inputs((1, depth))
    compiled = tvmopt.compile(model)
    assert "WeightOnlyMatmul" in kernel_rules(compiled)
    assert_close(compiled.run(feeds)["y"], ort_run(model, feeds))


@pytest.fixture(scope="module")
def ort_quantized(tmp_path_factory):
    """A 256 x 192 MatMul quantized by ONNX Runtime's MatMulNBitsQuantizer, by format and
    symmetry."""
    from onnxruntime.quantization import QuantFormat
    from onnxruntime.quantization.matmul_nbits_quantizer import (
        DefaultWeightOnlyQuantConfig,
        MatMulNBitsQuantizer,
    )

    def quantized(fmt: str, symmetric: bool, block: int = 32) -> onnx.ModelProto:
        config = DefaultWeightOnlyQuantConfig(block_size=block, is_symmetric=symmetric,
                                              quant_format=getattr(QuantFormat, fmt))  # fmt: skip
        quantizer = MatMulNBitsQuantizer(matmul_model((1, 256), 192), algo_config=config)
        quantizer.process()
        return quantizer.model.model

    return quantized


@pytest.mark.parametrize("symmetric", [True, False])
@pytest.mark.parametrize("block", [32, 128])
def test_ort_quantizer_matmul_nbits_matches_onnx_runtime(ort_quantized, symmetric, block):
    model = ort_quantized("QOperator", symmetric, block)
    assert model.graph.node[0].op_type == "MatMulNBits"
    feeds = inputs((1, 256))
    compiled = tvmopt.compile(model)
    assert "WeightOnlyMatmul" in kernel_rules(compiled)
    assert_close(compiled.run(feeds)["y"], ort_run(model, feeds))


@pytest.mark.parametrize("symmetric", [True, False])  # int4 / uint4 with zero points
def test_blocked_dequantize_linear_matches_onnx_runtime(ort_quantized, symmetric):
    model = ort_quantized("QDQ", symmetric)
    assert [n.op_type for n in model.graph.node] == ["DequantizeLinear", "MatMul"]
    feeds = inputs((1, 256))
    compiled = tvmopt.compile(model)
    assert "WeightOnlyMatmul" in kernel_rules(compiled)
    # ONNX Runtime fuses the pair into its MatMulNBits at accuracy level 4 by default, which
    # rounds the activations to int8: level 0 keeps them float32, as the graph says
    expected = ort_run(model, feeds, **{"session.qdq_matmulnbits_accuracy_level": "0"})
    assert_close(compiled.run(feeds)["y"], expected)


def test_matmul_nbits_at_opt_level_0_dequantizes_apart():
    model = nbits_model(128, 64, 4, 32, zeros=True)
    feeds = inputs((1, 128))
    compiled = tvmopt.compile(model, opt_level=0)
    assert "WeightOnlyMatmul" not in kernel_rules(compiled)
    assert_close(compiled.run(feeds)["y"], ort_run(model, feeds))
