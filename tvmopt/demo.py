"""The built-in demo: a small CNN built with onnx.helper and seeded weights (no downloads),
compiled, run, checked against ONNX Runtime and timed side by side with it."""

from __future__ import annotations

import json

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from .timing import time_callable

INPUT_NAME = "image"
INPUT_SHAPE = (1, 3, 64, 64)
NUM_CLASSES = 10


def build_demo_model(seed: int = 0) -> onnx.ModelProto:
    """conv-bn-relu -> maxpool -> conv-relu -> global avgpool -> flatten -> gemm -> softmax."""
    rng = np.random.default_rng(seed)
    weights = {
        "conv1_w": rng.standard_normal((16, 3, 3, 3)) * 0.3,
        "conv1_b": rng.standard_normal(16) * 0.1,
        "bn_scale": 1.0 + rng.standard_normal(16) * 0.1,
        "bn_bias": rng.standard_normal(16) * 0.1,
        "bn_mean": rng.standard_normal(16) * 0.1,
        "bn_var": 1.0 + rng.random(16),
        "conv2_w": rng.standard_normal((32, 16, 3, 3)) * 0.1,
        "conv2_b": rng.standard_normal(32) * 0.1,
        "fc_w": rng.standard_normal((NUM_CLASSES, 32)) * 0.2,
        "fc_b": rng.standard_normal(NUM_CLASSES) * 0.1,
    }
    initializers = [numpy_helper.from_array(v.astype(np.float32), k) for k, v in weights.items()]
    node = helper.make_node
    nodes = [
        node("Conv", [INPUT_NAME, "conv1_w", "conv1_b"], ["c1"], pads=[1, 1, 1, 1], name="conv1"),
        node(
            "BatchNormalization",
            ["c1", "bn_scale", "bn_bias", "bn_mean", "bn_var"],
            ["b1"],
            name="bn1",
        ),
        node("Relu", ["b1"], ["r1"], name="relu1"),
        node("MaxPool", ["r1"], ["p1"], kernel_shape=[2, 2], strides=[2, 2], name="pool1"),
        node("Conv", ["p1", "conv2_w", "conv2_b"], ["c2"], pads=[1, 1, 1, 1], name="conv2"),
        node("Relu", ["c2"], ["r2"], name="relu2"),
        node("GlobalAveragePool", ["r2"], ["g"], name="gap"),
        node("Flatten", ["g"], ["f"], name="flatten"),
        node("Gemm", ["f", "fc_w", "fc_b"], ["logits"], transB=1, name="fc"),
        node("Softmax", ["logits"], ["probs"], axis=1, name="softmax"),
    ]
    graph = helper.make_graph(
        nodes,
        "tvmopt_demo_cnn",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, INPUT_SHAPE)],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, (1, NUM_CLASSES))],
        initializers,
    )
    opset_imports = [helper.make_opsetid("", 17)]
    # the IR version opset 17 needs, not this onnx's newest: older ONNX Runtimes read it
    ir_version = helper.find_min_ir_version_for(opset_imports)
    model = helper.make_model(graph, opset_imports=opset_imports, ir_version=ir_version,
                              producer_name="tvmopt")  # fmt: skip
    onnx.checker.check_model(model)
    return model


def run_demo(target=None, repeat: int = 50, out=print) -> bool:
    """Compile and run the demo model, compare with ONNX Runtime, print both latencies."""
    import onnxruntime

    from .api import compile as compile_model
    from .reference import max_relative_error

    model = build_demo_model()
    compiled = compile_model(model, target=target)
    image = np.random.default_rng(1).standard_normal(INPUT_SHAPE).astype(np.float32)
    session = onnxruntime.InferenceSession(
        model.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    expected = session.run(None, {INPUT_NAME: image})[0]
    actual = compiled.run({INPUT_NAME: image})["probs"]
    error = max_relative_error(actual, expected)
    out(f"demo model: {compiled!r}")
    out(f"target: {json.dumps(compiled.metadata.target)}")
    out(
        f"output vs ONNX Runtime: max abs error / output scale = {error:.2e} "
        f"({'match' if error <= 1e-4 else 'MISMATCH'})"
    )
    tvmopt_latency = time_callable(lambda: compiled.run({INPUT_NAME: image}), repeat=repeat)
    ort_latency = time_callable(lambda: session.run(None, {INPUT_NAME: image}), repeat=repeat)
    out(f"tvmopt latency:       {tvmopt_latency}")
    out(f"onnxruntime latency:  {ort_latency}")
    return error <= 1e-4
