"""Shared test helpers: tiny ONNX graphs, and the ONNX Runtime check every compiled model gets."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
from onnx import TensorProto, helper, numpy_helper

from tvmopt.deploy import npy_file_name
from tvmopt.inputs import random_inputs
from tvmopt.reference import FP32_TOLERANCE, max_relative_error


def make_model(
    nodes, inputs, outputs, initializers=(), opset=17, extra_opsets=None
) -> onnx.ModelProto:
    """A checked model from nodes and (name, elem_type, shape) triples for inputs and outputs."""
    graph = helper.make_graph(
        nodes,
        "test_graph",
        [helper.make_tensor_value_info(*spec) for spec in inputs],
        [helper.make_tensor_value_info(*spec) for spec in outputs],
        [numpy_helper.from_array(np.asarray(v), name) for name, v in dict(initializers).items()],
    )
    opsets = {"": opset, **(extra_opsets or {})}
    opset_imports = [helper.make_opsetid(domain, v) for domain, v in opsets.items()]
    # the oldest IR version the opsets allow: an ONNX Runtime older than onnx still reads it
    ir_version = helper.find_min_ir_version_for(opset_imports, ignore_unknown=True)
    model = helper.make_model(graph, opset_imports=opset_imports, ir_version=ir_version)
    onnx.checker.check_model(model)
    return model


def relu_model(shape=(2, 3)) -> onnx.ModelProto:
    return make_model(
        [helper.make_node("Relu", ["x"], ["y"], name="relu")],
        [("x", TensorProto.FLOAT, shape)],
        [("y", TensorProto.FLOAT, shape)],
    )


def ort_session(model: onnx.ModelProto, optimized: bool = True):
    """ONNX Runtime on `model`. Not `optimized`, its graph runs as written: for a QDQ model that
    is DequantizeLinear -> float op -> QuantizeLinear, the exact int8 semantics. Its optimized
    int8 kernels are not exact on every CPU: on AVX2 (no VNNI) they add u8 x s8 products in
    pairs into int16 (vpmaddubsw), which saturates (../shared/reference/CPU-ISA.md)."""
    options = onnxruntime.SessionOptions()
    if not optimized:
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
    return onnxruntime.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )


def ort_outputs(model: onnx.ModelProto, feeds: dict, optimized=True) -> dict[str, np.ndarray]:
    session = ort_session(model, optimized)
    names = [out.name for out in session.get_outputs()]
    return dict(zip(names, session.run(names, feeds), strict=True))


def assert_matches_ort(model: onnx.ModelProto, compiled, feeds=None, tolerance=FP32_TOLERANCE):
    """Run `compiled` and ONNX Runtime on the same inputs; every output must match."""
    if feeds is None:
        feeds = random_inputs(compiled.inputs, seed=0)
    expected = ort_outputs(model, feeds)
    actual = compiled.run(feeds)
    assert list(actual) == list(expected)
    for name, reference in expected.items():
        error = max_relative_error(actual[name], reference)
        assert error <= tolerance, f"output {name}: error {error:.3g} > {tolerance}"
    return actual


@cache
def gpu_present() -> bool:
    """An NVIDIA GPU that TVM can run on (its driver, TVM's CUDA runtime, a device)."""
    from tvmopt.backends.cuda import gpu_missing

    return gpu_missing() is None


def residual_cnn(size: int = 32) -> onnx.ModelProto:
    """ResNet's shape in small: stem conv, relu, max pool, a residual block, a pointwise conv,
    global pooling, a dense layer; a `size` x `size` image, the block's maps a quarter of that."""
    rng = np.random.default_rng(0)

    def weight(*shape):
        return (rng.standard_normal(shape) / np.sqrt(np.prod(shape[1:]))).astype(np.float32)

    node = helper.make_node
    nodes = [
        node("Conv", ["x", "w0"], ["c0"], pads=[3, 3, 3, 3], strides=[2, 2], name="stem"),
        node("Relu", ["c0"], ["r0"]),
        node("MaxPool", ["r0"], ["p0"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
        node("Conv", ["p0", "w1"], ["c1"], pads=[1, 1, 1, 1], name="block_a"),
        node("Relu", ["c1"], ["r1"]),
        node("Conv", ["r1", "w2"], ["c2"], pads=[1, 1, 1, 1], name="block_b"),
        node("Add", ["c2", "p0"], ["s"]),
        node("Relu", ["s"], ["r2"]),
        node("Conv", ["r2", "w3"], ["c3"], name="expand"),
        node("Relu", ["c3"], ["r3"]),
        node("GlobalAveragePool", ["r3"], ["g"]),
        node("Flatten", ["g"], ["f"]),
        node("MatMul", ["f", "m"], ["y"], name="dense"),
    ]
    weights = {"w0": weight(16, 3, 7, 7), "w1": weight(16, 16, 3, 3), "w2": weight(16, 16, 3, 3),
               "w3": weight(64, 16, 1, 1), "m": weight(10, 64).T.copy()}  # fmt: skip
    return make_model(nodes, [("x", TensorProto.FLOAT, [1, 3, size, size])],
                      [("y", TensorProto.FLOAT, [1, 10])], weights)  # fmt: skip


def inverted_residual_cnn() -> onnx.ModelProto:
    """MobileNetV2's shape in small: a stem conv, then blocks of pointwise expansion, 3x3
    depthwise conv (stride 1 with a residual add, then stride 2) and pointwise projection, relu6
    between them, global pooling, a dense layer."""
    rng = np.random.default_rng(0)

    def weight(*shape):
        return (rng.standard_normal(shape) / np.sqrt(np.prod(shape[1:]))).astype(np.float32)

    node, nodes = helper.make_node, []

    def conv(x, w, name, relu6=True, **attrs):
        nodes.append(node("Conv", [x, w, f"{w}_b"], [f"{name}_c"], name=name, **attrs))
        if not relu6:
            return f"{name}_c"
        nodes.append(node("Clip", [f"{name}_c", "zero", "six"], [f"{name}_r"]))
        return f"{name}_r"

    stem = conv("x", "w0", "stem", pads=[1, 1, 1, 1], strides=[2, 2])
    h = conv(stem, "w1", "expand_a")
    h = conv(h, "w2", "depthwise_a", pads=[1, 1, 1, 1], group=32)
    h = conv(h, "w3", "project_a", relu6=False)
    nodes.append(node("Add", [h, stem], ["s"]))
    h = conv("s", "w4", "expand_b")
    h = conv(h, "w5", "depthwise_b", pads=[1, 1, 1, 1], strides=[2, 2], group=48)
    h = conv(h, "w6", "project_b", relu6=False)
    nodes += [node("GlobalAveragePool", [h], ["g"]), node("Flatten", ["g"], ["f"]),
              node("MatMul", ["f", "m"], ["y"], name="dense")]  # fmt: skip
    shapes = {"w0": (8, 3, 3, 3), "w1": (32, 8, 1, 1), "w2": (32, 1, 3, 3), "w3": (8, 32, 1, 1),
              "w4": (48, 8, 1, 1), "w5": (48, 1, 3, 3), "w6": (16, 48, 1, 1)}  # fmt: skip
    weights = {name: weight(*shape) for name, shape in shapes.items()}
    weights.update({f"{name}_b": weight(shape[0]) for name, shape in shapes.items()})
    weights.update(m=weight(10, 16).T.copy(), zero=np.float32(0), six=np.float32(6))
    return make_model(nodes, [("x", TensorProto.FLOAT, [1, 3, 32, 32])],
                      [("y", TensorProto.FLOAT, [1, 10])], weights)  # fmt: skip


def conv_case(shape, seed=0):
    """x [N, C, H, W], weight [OC, C, K, K] and the ConvGeometry of a conv test row
    (N, C, H, W, OC, kernel, stride, pad, dilation)."""
    from tvmopt.passes.conv_geometry import ConvGeometry

    n, c, h, w, oc, k, stride, pad, dil = shape
    out_h = (h + 2 * pad - dil * (k - 1) - 1) // stride + 1
    out_w = (w + 2 * pad - dil * (k - 1) - 1) // stride + 1
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, h, w)).astype(np.float32)
    weight = rng.standard_normal((oc, c, k, k)).astype(np.float32)
    geometry = ConvGeometry((k, k), (stride, stride), (pad, pad), (dil, dil), (out_h, out_w))
    return x, weight, geometry


def torch_conv2d(x, weight, geometry, bias=None, groups=1) -> np.ndarray:
    """The reference conv, in the dtype of `x`."""
    import torch

    out = torch.nn.functional.conv2d(
        torch.tensor(x), torch.tensor(weight.astype(x.dtype)),
        None if bias is None else torch.tensor(bias.astype(x.dtype)),
        stride=geometry.strides, padding=geometry.padding, dilation=geometry.dilation,
        groups=groups,
    )  # fmt: skip
    return out.numpy()


def run_scheduled(rule, placeholders, y, arrays, target) -> np.ndarray:
    """Schedule the TE kernel `placeholders` -> `y` with `rule` (which must fire), build it for
    `target` and run it on `arrays`: its output."""
    from tvm import te

    from tvmopt._tvm import tvm

    func = te.create_prim_func([*placeholders, y]).with_attr("global_symbol", "main")
    scheduled = rule.apply(func, target, False)
    assert scheduled is not None, f"{type(rule).__name__} did not fire"
    lib = tvm.compile(scheduled.mod, target=target)
    out = tvm.runtime.tensor(np.zeros([int(d) for d in y.shape], str(y.dtype)))
    lib(*[tvm.runtime.tensor(a) for a in arrays], out)
    return out.numpy()


def qdq_float_model() -> onnx.ModelProto:
    """A conv, relu and dense layer for ONNX Runtime's quantizer."""
    rng = np.random.default_rng(0)
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1], name="conv"),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("Reshape", ["r", "shape"], ["flat"], name="flatten"),
        helper.make_node("MatMul", ["flat", "m"], ["y"], name="dense"),
    ]
    initializers = {
        "w": rng.standard_normal((32, 8, 3, 3)).astype(np.float32) * 0.2,
        "shape": np.array([1, 32 * 6 * 6], np.int64),
        "m": rng.standard_normal((32 * 6 * 6, 10)).astype(np.float32) * 0.05,
    }
    return make_model(nodes, [("x", TensorProto.FLOAT, [1, 8, 6, 6])],
                      [("y", TensorProto.FLOAT, [1, 10])], initializers, opset=17)  # fmt: skip


def qdq_samples(count):
    return [{"x": np.random.default_rng(i).standard_normal((1, 8, 6, 6)).astype(np.float32)}
            for i in range(count)]  # fmt: skip


def quantize_with_ort(tmp_path, fmt, activation, model=None, samples=None) -> onnx.ModelProto:
    """`model` quantized by ONNX Runtime (static, per channel) in `fmt`: "QDQ" or "QOperator"."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.samples = iter(samples or qdq_samples(16))

        def get_next(self):
            return next(self.samples, None)

    source, target = tmp_path / "float.onnx", tmp_path / "int8.onnx"
    onnx.save(model or qdq_float_model(), source)
    quantize_static(str(source), str(target), Reader(), per_channel=True,
                    quant_format=getattr(QuantFormat, fmt),
                    activation_type=getattr(QuantType, activation),
                    weight_type=QuantType.QInt8)  # fmt: skip
    return onnx.load(target)


def flipped(data: bytes) -> bytes:
    """A library with one byte of its code changed, as a bad disk or copy leaves it."""
    middle = len(data) // 2
    return data[:middle] + bytes([data[middle] ^ 0x40]) + data[middle + 1 :]


def save_inputs(directory: Path, feeds: dict) -> Path:
    """One .npy per input, named as tvmopt-run reads them (deploy.npy_file_name)."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, array in feeds.items():
        np.save(directory / npy_file_name(name), array)
    return directory


def save_sample_sets(directory: Path, samples) -> Path:
    """One .npz per input set, the folder format calibration and pruning read."""
    directory.mkdir(parents=True, exist_ok=True)
    for index, sample in enumerate(samples):
        np.savez(directory / f"{index:02d}.npz", **sample)
    return directory


def read_outputs(directory: Path, names) -> dict[str, np.ndarray]:
    """The .npy files tvmopt-run wrote for the outputs `names`."""
    return {name: np.load(directory / npy_file_name(name)) for name in names}


def check_nhwc_conv(shape, target, panels=None) -> None:
    """The channels-last conv kernel of `shape` ((N, C, H, W, OC, kernel, stride, pad,
    dilation)), its weight packed in `panels` panels (default: as many as the channels need),
    scheduled for `target`, against torch."""
    from tvm import te

    from tvmopt.backends.llvm import kernel_conv_nhwc as conv_nhwc
    from tvmopt.backends.llvm.cpu import cpu_of
    from tvmopt.backends.llvm.rule_conv_nhwc import Conv2dNHWC

    x, weight, geometry = conv_case(shape)
    oc, cpu = shape[4], cpu_of(target)
    bias = np.random.default_rng(1).standard_normal(oc).astype(np.float32)
    arrays = [np.ascontiguousarray(x.transpose(0, 2, 3, 1)),
              conv_nhwc.pack_weight(weight, cpu.lanes(), panels), bias]  # fmt: skip
    placeholders = [te.placeholder(a.shape, "float32") for a in arrays]
    y = conv_nhwc.conv2d_nhwc(*placeholders, geometry=geometry, channels=oc,
                              accumulators=cpu.accumulators)  # fmt: skip
    out = run_scheduled(Conv2dNHWC(), placeholders, y, arrays, target)
    expected = torch_conv2d(x, weight, geometry, bias)
    np.testing.assert_allclose(out.transpose(0, 3, 1, 2), expected, rtol=1e-4, atol=1e-4)
