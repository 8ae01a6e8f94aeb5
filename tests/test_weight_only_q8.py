"""Weight-only matmuls with int8 activations (quantize="int4-weights-a8" | "int8-weights-a8", and
ONNX Runtime's MatMulNBits at accuracy level 4): the kernel against a numpy reference of the
same roundings on both ISAs' int8 steps, on shapes whose columns are not whole vectors, against
ONNX Runtime's level-4 MatMulNBits, and a decoder's greedy tokens against ONNX Runtime's."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper, numpy_helper

import tvmopt
from tvmopt.backends.cpu_features import host_features
from tvmopt.backends.llvm.kernel_weight_only_q8 import QMAX, pack_q8_groups, pack_q8_levels
from tvmopt.passes.quantize.weight_blocks import quantize_blocks

from .test_weight_only import AVX2, inputs, kernel_rules, matmul_model, nbits_model, ort_run

VNNI = {"kind": "llvm", "mcpu": "znver4"}  # AVX-512 VNNI: vpdpbusd
needs_vnni = pytest.mark.skipif(
    not {"avx512_vnni", "avx512bw"} <= (host_features() or frozenset()),
    reason="runs AVX-512 VNNI code (built for znver4)",
)


def int8_rows_reference(x, blocks) -> np.ndarray:
    """y of the module docstring of kernel_weight_only_q8.py, in float64: x rounded to int8 per
    group, the integer dot products, the group's scale and zero point."""
    rows, depth = x.shape
    group = blocks.group
    grouped = x.reshape(rows, -1, group)
    xs = np.abs(grouped).max(axis=-1) / np.float32(QMAX)
    reciprocal = np.where(xs > 0, np.float32(1) / np.where(xs > 0, xs, 1), 0).astype(np.float32)
    q = np.rint(grouped * reciprocal[..., None]).astype(np.int64)
    levels = blocks.levels.astype(np.int64).reshape(-1, group, blocks.levels.shape[1])
    dot = np.einsum("mgr,grn->mgn", q, levels)
    centred = dot - blocks.zeros[None].astype(np.int64) * q.sum(axis=-1)[..., None]
    return (xs[..., None].astype(np.float64) * blocks.scales[None] * centred).sum(axis=1)


def assert_close(actual, expected, tolerance=1e-5):
    error = np.abs(actual - expected).max() / np.abs(expected).max()
    assert error <= tolerance, f"error {error:.3g} > {tolerance}"


@pytest.mark.parametrize("bits", [4, 8])
def test_packed_levels_hold_four_rows_per_lane_low_nibbles_first(bits):
    levels = np.random.default_rng(0).integers(0, 1 << bits, (64, 40)).astype(np.uint8)
    packed = pack_q8_levels(levels, bits, width=16)  # [tasks, K / step, 16 x 4]
    step = 8 if bits == 4 else 4  # noqa: PLR2004
    assert packed.shape == (3, 64 // step, 64)
    lane = packed[1, 2].reshape(16, 4)[5]  # task 1, step 2, column 16 + 5
    if bits == 4:  # noqa: PLR2004
        np.testing.assert_array_equal(lane & 15, levels[16:20, 21])
        np.testing.assert_array_equal(lane >> 4, levels[20:24, 21])
    else:
        np.testing.assert_array_equal(lane, levels[8:12, 21])
    assert not packed[2].reshape(-1, 16, 4)[:, 8:].any()  # columns 40..47: padding, zero
    np.testing.assert_array_equal(pack_q8_groups(np.ones((2, 40), np.float32), 16)[2, :, 8:], 0)


@pytest.mark.parametrize(
    ("scheme", "bits", "group", "shape", "columns", "target", "rule"),
    [
        pytest.param("int4-weights-a8", 4, 32, (1, 96), 70, VNNI, "WeightOnlyQ8",
                     marks=needs_vnni),  # N not whole vectors
        ("int4-weights-a8", 4, 32, (3, 160), 200, AVX2, "WeightOnlyQ8"),  # vpmaddubsw, 3 rows
        pytest.param("int8-weights-a8", 8, 128, (2, 256), 72, VNNI, "WeightOnlyQ8",
                     marks=needs_vnni),
        # int8 levels x int8 saturate vpmaddubsw's int16 pairs: the float kernel
        ("int8-weights-a8", 8, 128, (1, 256), 72, AVX2, "WeightOnlyMatmul"),
    ],
)
def test_int8_activation_kernel_matches_numpy_of_the_same_roundings(  # noqa: PLR0913
    scheme, bits, group, shape, columns, target, rule
):
    model = matmul_model(shape, columns, bias=True)
    compiled = tvmopt.compile(model, target=target, quantize=scheme)
    assert compiled.metadata.quantization == scheme
    assert rule in kernel_rules(compiled)
    weight, bias = (numpy_helper.to_array(t) for t in model.graph.initializer)
    blocks = quantize_blocks(weight, bits, group, symmetric=bits == 8)  # noqa: PLR2004
    x = inputs(shape)["x"]
    actual = compiled.run({"x": x})["y"]
    if rule == "WeightOnlyQ8":
        assert_close(actual, int8_rows_reference(x, blocks) + bias)
    float_rows = x.astype(np.float64) @ blocks.dequantized() + bias
    assert_close(actual, float_rows, tolerance=2e-2)  # int8 rows: about 1% of the largest


def test_symbolic_rows_run_on_the_int8_kernel():
    model = matmul_model((1, "sequence", 64), 48)
    compiled = tvmopt.compile(model, target=AVX2, quantize="int4-weights-a8",
                              dims={"sequence": (1, 16)})  # fmt: skip
    assert "WeightOnlyQ8" in kernel_rules(compiled)
    blocks = quantize_blocks(numpy_helper.to_array(model.graph.initializer[0]), 4, 32, False)
    for rows in (1, 7):
        x = inputs((1, rows, 64), seed=rows)["x"]
        assert_close(compiled.run({"x": x})["y"][0], int8_rows_reference(x[0], blocks))


def level_4(model):
    """`model`'s MatMulNBits at accuracy level 4 (int8 A, as ONNX Runtime computes it)."""
    for node in model.graph.node:
        if node.op_type == "MatMulNBits":
            node.attribute.append(helper.make_attribute("accuracy_level", 4))
    return model


@pytest.mark.parametrize("target", [pytest.param(VNNI, marks=needs_vnni), AVX2])
@pytest.mark.parametrize(("depth", "columns"), [(256, 96), (80, 40)])  # 80: K not whole blocks
def test_matmul_nbits_level_4_matches_onnx_runtime(target, depth, columns):
    model = level_4(nbits_model(depth, columns, 4, 32, zeros=True))
    feeds = inputs((1, depth))
    compiled = tvmopt.compile(model, target=target)
    assert "WeightOnlyQ8" in kernel_rules(compiled)
    expected = ort_run(model, feeds)
    assert_close(compiled.run(feeds)["y"], expected, tolerance=1e-4)
    # level 0 (float A) differs from it by the rounding of A: the test can tell the two apart
    assert np.abs(ort_run(level_0(model), feeds) - expected).max() > 1e-3


def level_0(model):
    copied = type(model)()
    copied.CopyFrom(model)
    for node in copied.graph.node:
        for attribute in node.attribute:
            if attribute.name == "accuracy_level":
                attribute.i = 0
    return copied


@pytest.mark.slow  # about 40 s: a 2-layer decoder compiled
def test_decoder_greedy_tokens_are_onnx_runtimes_at_level_4():
    """A GPT-2-style decoder quantized by ONNX Runtime's MatMulNBitsQuantizer at accuracy level
    4, every MatMul (the LM head included) on the int8 kernel: ONNX Runtime's greedy tokens."""
    pytest.importorskip("torch")
    from tvmopt.benchmark.nets import gpt2

    from .test_generate import CONFIG, MAX_PAST, PROMPT, ort_generate

    model = ort_level_4_int4(gpt2.export(gpt2.seeded(CONFIG, std=0.2)))
    compiled = tvmopt.compile(model, dims={"seq": (1, 16), "past": (0, MAX_PAST)})
    assert "WeightOnlyQ8" in kernel_rules(compiled)
    tokens = list(compiled.generate(PROMPT, 20).tokens)
    assert tokens == ort_generate(model, PROMPT, 20)
    assert len(set(tokens)) > 3  # noqa: PLR2004 - not one token repeated


def ort_level_4_int4(model):
    from onnxruntime.quantization.matmul_nbits_quantizer import (
        DefaultWeightOnlyQuantConfig,
        MatMulNBitsQuantizer,
    )

    config = DefaultWeightOnlyQuantConfig(block_size=32, is_symmetric=False, accuracy_level=4)
    quantizer = MatMulNBitsQuantizer(model, algo_config=config)
    quantizer.process()
    return quantizer.model.model
