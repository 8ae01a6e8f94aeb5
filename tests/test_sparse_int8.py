"""The int8 sparse matmul (kernel_sparse_int8.py, sparse_int8.py): its packing and sums against
numpy, and QDQ models whose int8 weights are pruned, compiled with --sparse force, against the
dense int8 kernel (the same int32 sums: equal outputs) and ONNX Runtime running the graph as
written (helpers.ort_session), on the host ISA and the AVX2 build (where the layers stay dense)."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper

import tvmopt
from tests.helpers import make_model, ort_session
from tvmopt.backends.llvm import kernel_sparse_int8
from tvmopt.backends.llvm.cpu import cpu_of
from tvmopt.backends.llvm.sparse_choice import choose_int8, int8_structure
from tvmopt.backends.llvm.sparse_weights import describe

AVX2 = {"kind": "llvm", "mcpu": "x86-64-v3"}
X_SCALE, X_ZERO = 0.03, 120


def pruned_int8(shape, sparsity: float, width: int, seed: int) -> np.ndarray:
    """A random int8 Wq [K, N] with `sparsity` of its 1 x width blocks zero and a +-127 in
    every column (a symmetric per-channel quantizer gives it back exactly)."""
    rng = np.random.default_rng(seed)
    k, n = shape
    weight = rng.integers(-127, 128, shape)
    kept = rng.random((k, n // width)) >= sparsity
    kept[rng.integers(0, k, n // width), np.arange(n // width)] = True  # no empty column
    weight = weight * np.repeat(kept, width, axis=1)
    rows = np.argmax(weight != 0, axis=0)
    weight[rows, np.arange(n)] = 127 * rng.choice([-1, 1], n)
    return weight.astype(np.int8)


def qdq_matmul_model(weight: np.ndarray, rows: int) -> object:
    """x [rows, K] -> QuantizeLinear/DequantizeLinear (uint8) -> MatMul with the dequantized
    int8 weight (per column scales) -> y."""
    k, n = weight.shape
    scales = np.random.default_rng(1).uniform(0.001, 0.01, n).astype(np.float32)
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "xs", "xz"], ["xq"]),
        helper.make_node("DequantizeLinear", ["xq", "xs", "xz"], ["xd"]),
        helper.make_node("DequantizeLinear", ["w", "ws", "wz"], ["wd"], axis=1),
        helper.make_node("MatMul", ["xd", "wd"], ["y"], name="dense"),
    ]
    initializers = {"xs": np.float32(X_SCALE), "xz": np.uint8(X_ZERO), "w": weight,
                    "ws": scales, "wz": np.zeros(n, np.int8)}  # fmt: skip
    return make_model(nodes, [("x", TensorProto.FLOAT, [rows, k])],
                      [("y", TensorProto.FLOAT, [rows, n])], initializers, opset=17)  # fmt: skip


@pytest.mark.parametrize("block", [(16, 4, "int8", 1), (8, 2, "int16", 1), (8, 8, "int8", 2)],
                         ids=["vpdpbusd", "vpmaddwd", "vpmaddubsw8"])  # fmt: skip
def test_unpack_dense_inverts_every_int8_packing(block):
    from tvmopt.backends.llvm.kernel_int8_gemm import pack_weight

    weight = pruned_int8((20, 24), 0.5, 8, seed=4)  # pads K and N in every block
    lanes, depth, dtype, parts = block
    packed = pack_weight(weight.T[:, :, None, None], lanes, depth, dtype, parts)
    np.testing.assert_array_equal(kernel_sparse_int8.unpack_dense(packed, 20, 24), weight)


def test_pack_words_round_trip():
    weight = pruned_int8((10, 16), 0.7, 8, seed=2)  # K = 10: the last quad padded
    data, indices, indptr = kernel_sparse_int8.pack_words(weight, 8)
    rebuilt = np.zeros((12, 16), np.int8)
    for j in range(2):
        for p in range(indptr[j], indptr[j + 1]):
            block = data[p].astype("<i4").view(np.int8).reshape(8, 4)  # [column, k]
            rebuilt[indices[p] * 4 : indices[p] * 4 + 4, j * 8 : j * 8 + 8] = block.T
    np.testing.assert_array_equal(rebuilt[:10], weight)
    assert not rebuilt[10:].any()


@pytest.mark.parametrize(("width", "x_dtype", "step", "bits"), [
    (1, "float32", "vpdpbusd-512", 8),
    (4, "uint8", "vpdpbusd-512", 8),
    (8, "float32", "vpdpbusd-512", 8),
    (16, "uint8", "vpdpbusd-512", 8),
    (8, "float32", "vpmaddubsw-256", 7),  # AVX2, 7-bit weights: pairs fit
    (4, "uint8", "vpmaddwd-256", 8),  # AVX2, full range: x widened to int16
    (1, "float32", "vpmaddwd-256", 8),
])  # fmt: skip
def test_kernel_sums_match_numpy(width, x_dtype, step, bits):
    """Every block width and step, from a float32 input (quantized in the kernel) or a uint8 one;
    K = 70 pads its last word, 48 columns make groups of block columns. The host runs the AVX2
    steps too."""
    from tvmopt._tvm import tvm
    from tvmopt.backends.llvm.cpu import INT8_STEPS
    from tvmopt.backends.llvm.target import host_target

    if "avx512vnni" not in cpu_of(host_target()).features:
        pytest.skip("the host runs every step on AVX-512 VNNI")
    m, k, n, step = 32, 70, 48, INT8_STEPS[step]
    rng = np.random.default_rng(width)
    weight = pruned_int8((k, n), 0.8, width, seed=width)
    if bits == 7:
        weight = (weight // 2).astype(np.int8)  # [-64, 63]: worst pairs at 127 <= 128
    packed = kernel_sparse_int8.pack_words(weight, width, step.depth)
    registers = kernel_sparse_int8.free_registers(step, 32 if step.lanes == 16 else 16)
    tiling = kernel_sparse_int8.token_tiling(m, n, width, step.lanes, registers)
    kernel = kernel_sparse_int8.sparse_int8_matmul(m, k, n, width, len(packed[1]), tiling, step,
                                                   (x_dtype, 1 / X_SCALE, X_ZERO))  # fmt: skip
    lib = tvm.compile(tvm.IRModule({"main": kernel.with_attr("global_symbol", "main")}),
                      host_target())
    x = rng.standard_normal((m, k)).astype(np.float32) * 3
    x[0, :8] = 1e3  # saturates at 255: the worst case for the int16 pairs
    xq = np.clip(np.round(x / np.float32(X_SCALE)) + X_ZERO, 0, 255)
    correction = rng.integers(-1000, 1000, n).astype(np.int32)
    scale = rng.uniform(0.001, 0.01, n).astype(np.float32)
    arrays = [x if x_dtype == "float32" else xq.astype(np.uint8), *packed, correction, scale]
    y = tvm.runtime.tensor(np.zeros((m, n), np.float32), tvm.cpu())
    lib["main"](*(tvm.runtime.tensor(a, tvm.cpu()) for a in arrays), y)
    sums = xq.astype(np.int64) @ weight.astype(np.int64) + correction
    np.testing.assert_array_equal(y.numpy(), sums.astype(np.float32) * scale)


def test_auto_takes_the_int8_kernel_at_90_percent_not_at_50():
    widths = kernel_sparse_int8.BLOCK_WIDTHS
    sparse = int8_structure(pruned_int8((768, 768), 0.9, 8, seed=0))
    assert choose_int8(sparse, "auto", widths).kernel == "int8-bsr"
    half = int8_structure(pruned_int8((768, 768), 0.5, 8, seed=0))
    assert choose_int8(half, "auto", widths).kernel == "dense"
    assert choose_int8(half, "force", widths).kernel.startswith("int8-")
    unstructured = int8_structure(pruned_int8((768, 768), 0.9, 1, seed=0))  # 34% of quads
    assert choose_int8(unstructured, "auto", widths).kernel == "int8-csr"
    assert choose_int8(unstructured, "auto", (16, 8)).kernel == "dense"  # 97% of 4x8 stored


def _run(model, feeds, **options):
    return tvmopt.compile(model, **options).run(feeds)["y"]


@pytest.mark.parametrize("rows", [1, 17, 130])
@pytest.mark.parametrize(("width", "sparsity"), [(8, 0.9), (1, 0.9)], ids=["1x8", "unstructured"])
def test_sparse_int8_matches_dense_int8_and_onnxruntime(rows, width, sparsity):
    weight = pruned_int8((72, 48), sparsity, width, seed=rows)
    model = qdq_matmul_model(weight, rows)
    x = np.random.default_rng(rows).standard_normal((rows, 72)).astype(np.float32) * 2
    sparse = tvmopt.compile(model, sparse="force")
    layers = sparse.metadata.extra["sparse"]
    assert [layer["kernel"][:5] for layer in layers] == ["int8-"]
    assert " int8: density " in describe(layers[0])
    actual = sparse.run({"x": x})["y"]
    np.testing.assert_array_equal(actual, _run(model, {"x": x}, sparse="off"))
    expected = ort_session(model, optimized=False).run(None, {"x": x})[0]
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())


@pytest.mark.parametrize("rows", [1, 130])
def test_avx2_build_runs_vpmaddwd_and_matches(rows):
    """x86-64-v3 without VNNI: a QDQ model's full-range weights take vpmaddwd (x widened to
    int16, exact), as the dense GEMM does."""
    weight = pruned_int8((72, 48), 0.9, 8, seed=3)
    model = qdq_matmul_model(weight, rows)
    x = np.random.default_rng(3).standard_normal((rows, 72)).astype(np.float32)
    compiled = tvmopt.compile(model, target=AVX2, sparse="force")
    [layer] = compiled.metadata.extra["sparse"]
    assert layer["kernel"].startswith("int8-") and layer["block"].startswith("2x")
    actual = compiled.run({"x": x})["y"]
    np.testing.assert_array_equal(actual, _run(model, {"x": x}, target=AVX2, sparse="off"))
    expected = ort_session(model, optimized=False).run(None, {"x": x})[0]
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())


@pytest.mark.parametrize("target", ["llvm", AVX2], ids=["host", "avx2"])
def test_calibrated_int8_sparse_equals_dense(target):
    """Our own calibration: 7-bit weights on AVX2 (vpmaddubsw, pairs fit), 8-bit on VNNI."""
    rng = np.random.default_rng(7)
    weight = rng.standard_normal((64, 32)).astype(np.float32)
    weight *= np.repeat(rng.random((64, 4)) >= 0.9, 8, axis=1)
    weight[0] = 1.0
    nodes = [helper.make_node("MatMul", ["x", "w"], ["y"], name="dense")]
    model = make_model(nodes, [("x", TensorProto.FLOAT, [17, 64])],
                       [("y", TensorProto.FLOAT, [17, 32])], {"w": weight}, opset=17)  # fmt: skip
    calib = [{"x": rng.standard_normal((17, 64)).astype(np.float32)} for _ in range(4)]
    x = {"x": rng.standard_normal((17, 64)).astype(np.float32)}
    options = {"target": target, "quantize": "int8", "calib": calib}
    compiled = tvmopt.compile(model, sparse="force", **options)
    [layer] = compiled.metadata.extra["sparse"]
    assert layer["kernel"].startswith("int8-") and layer["block"].startswith("4x")
    np.testing.assert_array_equal(compiled.run(x)["y"], _run(model, x, sparse="off", **options))
