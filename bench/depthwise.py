"""Depthwise convs (MobileNetV2's shapes, 3x3 + bias + ReLU6): the channels-last kernel that
compiled models use, the NCHW depthwise rule, the general conv rule that one replaced, and ONNX
Runtime, in one run. Kernel time: the channels-last kernel runs on NHWC tensors, as inside a
model; the NCHW builds run their one-conv model on the VM, ONNX Runtime through an IOBinding,
each on tensors made once.

    python bench/depthwise.py [--rounds 10] [--repeat 20] [--threads 2]

Each contender is timed in alternating rounds (median of medians), so drift hits all alike.
Writes bench/results/depthwise.md.
"""

import argparse
import time
from pathlib import Path

import numpy as np
import onnxruntime
from onnx import TensorProto, helper, numpy_helper
from tvm import te

import tvmopt
from tvmopt._tvm import tvm
from tvmopt.backends import resolve_target
from tvmopt.backends.llvm import kernel_depthwise_nhwc as depthwise_nhwc
from tvmopt.backends.llvm import rules
from tvmopt.backends.llvm.kernel_int8_depthwise import pack_depthwise
from tvmopt.backends.llvm.rule_depthwise import DepthwiseConv2dNCHW
from tvmopt.backends.llvm.rule_depthwise_nhwc import DepthwiseNHWC
from tvmopt.passes.conv_geometry import ConvGeometry

RESULTS = Path(__file__).parent / "results"
SHAPES = [(96, 112, 2), (144, 56, 1), (144, 56, 2), (192, 28, 1), (384, 14, 1), (576, 14, 2),
          (960, 7, 1)]  # fmt: skip


def depthwise_model(channels: int, size: int, stride: int):
    rng = np.random.default_rng(0)
    out = (size + 2 - 3) // stride + 1
    weight = rng.standard_normal((channels, 1, 3, 3)).astype(np.float32)
    bias = rng.standard_normal(channels).astype(np.float32)
    inits = [numpy_helper.from_array(weight, "w"), numpy_helper.from_array(bias, "b"),
             numpy_helper.from_array(np.array(0, np.float32), "lo"),
             numpy_helper.from_array(np.array(6, np.float32), "hi")]  # fmt: skip
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], group=channels, pads=[1] * 4,
                              strides=[stride] * 2),
             helper.make_node("Clip", ["c", "lo", "hi"], ["y"])]  # fmt: skip
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, (1, channels, size, size))
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, (1, channels, out, out))
    graph = helper.make_graph(nodes, "depthwise", [x], [y], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def nchw_build(model, general_rule: bool):
    """The model kept NCHW, its conv scheduled by the NCHW depthwise rule, or with that rule left
    out (`general_rule`) by Conv2dNCHW, as before it."""
    every, depthwise = rules.default_rules, depthwise_nhwc.is_depthwise
    if general_rule:
        rules.default_rules = lambda: [r for r in every() if not isinstance(r, DepthwiseConv2dNCHW)]
    depthwise_nhwc.is_depthwise = lambda *args: False  # a grouped conv: the model stays NCHW
    try:
        return tvmopt.compile(model)
    finally:
        rules.default_rules, depthwise_nhwc.is_depthwise = every, depthwise


def ort_runner(model, threads: int, feeds):
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    session = onnxruntime.InferenceSession(model.SerializeToString(), options)
    binding = session.io_binding()
    binding.bind_cpu_input("x", feeds["x"])
    binding.bind_output("y", "cpu")
    return session, lambda: session.run_with_iobinding(binding)


def vm_runner(compiled, feeds):
    vm = tvm.relax.VirtualMachine(compiled._module, tvm.cpu())
    x = tvm.runtime.tensor(feeds["x"])
    return lambda: vm["main"](x)


def nhwc_kernel(model, stride: int, feeds):
    """The channels-last kernel of the model's conv + ReLU6, scheduled by its rule: a runner on
    NHWC tensors, and its output NCHW."""
    weight, bias = (numpy_helper.to_array(t) for t in model.graph.initializer[:2])
    x = np.ascontiguousarray(feeds["x"].transpose(0, 2, 3, 1))
    out = (x.shape[1] + 2 - 3) // stride + 1
    geometry = ConvGeometry((3, 3), (stride, stride), (1, 1), (1, 1), (out, out))
    arrays = [x, pack_depthwise(weight), bias]
    placeholders = [te.placeholder(a.shape, "float32") for a in arrays]
    y = depthwise_nhwc.depthwise_conv2d_nhwc(*placeholders, geometry=geometry,
                                             channels=len(bias))  # fmt: skip
    clip = te.compute(y.shape, lambda *i: te.min(te.max(y(*i), 0.0), 6.0), name="relu6")
    func = te.create_prim_func([*placeholders, clip]).with_attr("global_symbol", "main")
    target = resolve_target(None)
    lib = tvm.compile(DepthwiseNHWC().apply(func, target, False).mod, target=target)
    args = [tvm.runtime.tensor(a) for a in arrays]
    args.append(tvm.runtime.tensor(np.zeros([int(d) for d in clip.shape], np.float32)))
    lib(*args)
    return lambda: lib(*args), args[-1].numpy().transpose(0, 3, 1, 2)


def median_ms(fn, repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1e3)
    return float(np.median(samples))


def measure(shape, args) -> tuple[float, float, float, float]:
    model = depthwise_model(*shape)
    channels, size, _ = shape
    feeds = {
        "x": np.random.default_rng(1).standard_normal((1, channels, size, size)).astype(np.float32)
    }
    builds = {"nchw": nchw_build(model, general_rule=False),
              "general": nchw_build(model, general_rule=True)}  # fmt: skip
    session, ort = ort_runner(model, args.threads, feeds)
    reference = session.run(None, feeds)[0]
    nhwc, nhwc_out = nhwc_kernel(model, shape[2], feeds)
    outputs = [nhwc_out] + [build.run(feeds)["y"] for build in builds.values()]
    for output in outputs:
        assert np.abs(output - reference).max() <= 1e-4 * np.abs(reference).max()
    runs = {name: vm_runner(build, feeds) for name, build in builds.items()}
    runs |= {"nhwc": nhwc, "ort": ort}
    rounds = {name: [] for name in runs}
    for _ in range(args.rounds):
        for name, fn in runs.items():
            fn()
            rounds[name].append(median_ms(fn, args.repeat))
    return tuple(float(np.median(rounds[name])) for name in ("nhwc", "nchw", "general", "ort"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    lines = [
        "# Depthwise 3x3 convs (+ bias, ReLU6)",
        "",
        f"`python bench/depthwise.py --rounds {args.rounds} --repeat {args.repeat} "
        f"--threads {args.threads}`: median ms of alternating rounds; outputs checked against "
        "ONNX Runtime.",
        "",
        "| channels x size, stride | channels last | NCHW depthwise rule | general conv rule | "
        "ONNX Runtime | channels last vs ORT |",
        "|---|--:|--:|--:|--:|--:|",
    ]
    for shape in SHAPES:
        nhwc, nchw, general, ort = measure(shape, args)
        lines.append(f"| {shape[0]} x {shape[1]}, /{shape[2]} | {nhwc:.3f} | {nchw:.3f} | "
                     f"{general:.3f} | {ort:.3f} | {ort / nhwc:.2f}x |")  # fmt: skip
        print(lines[-1])
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "depthwise.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
