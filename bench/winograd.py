"""ResNet's 3x3 convs (stride 1, + bias + ReLU, channels last): Winograd's F(4x4, 3x3) against
the direct channels-last kernel it replaces and against ONNX Runtime's conv, in one run.

    python bench/winograd.py [--rounds 10] [--repeat 10] [--threads 2]

Kernel time: both tvmopt kernels run on tensors made once, ONNX Runtime through an IOBinding
with its buffers allocated once. Each contender is timed in alternating rounds (median of
medians), so drift hits all alike. Writes bench/results/winograd.md.
"""

import argparse
import os
import statistics
import time
from functools import partial
from pathlib import Path

import numpy as np
import onnxruntime
from onnx import TensorProto, helper, numpy_helper
from tvm import te

from tvmopt._tvm import tvm
from tvmopt.backends import resolve_target
from tvmopt.backends.llvm import kernel_conv_nhwc as conv_nhwc
from tvmopt.backends.llvm import kernel_winograd as conv_winograd
from tvmopt.backends.llvm.rule_conv_nhwc import Conv2dNHWC
from tvmopt.backends.llvm.rule_winograd import Conv2dWinograd
from tvmopt.passes.conv_geometry import ConvGeometry

RESULTS = Path(__file__).parent / "results"
SHAPES = [(64, 56), (128, 28), (256, 14), (512, 7)]  # channels in = out, map size


def tvmopt_runner(kernel, rule, packed, x, bias, target):
    """A callable that runs the TE `kernel` (+ ReLU), scheduled by `rule`, on fixed tensors,
    and its output tensor."""
    size, channels = x.shape[1], len(bias)
    geometry = ConvGeometry((3, 3), (1, 1), (1, 1), (1, 1), (size, size))
    placeholders = [te.placeholder(a.shape, "float32") for a in (x, packed, bias)]
    y = kernel(*placeholders, geometry=geometry, channels=channels)
    relu = te.compute(y.shape, lambda *i: te.max(y(*i), 0.0), name="relu")
    func = te.create_prim_func([*placeholders, relu]).with_attr("global_symbol", "main")
    lib = tvm.compile(rule.apply(func, target, False).mod, target=target)
    out = np.zeros((*x.shape[:3], channels), np.float32)
    args = [tvm.runtime.tensor(a) for a in (x, packed, bias, out)]
    return lambda: lib(*args), args[-1]


def ort_runner(weight, bias, x_nchw, threads: int):
    node = helper.make_node
    graph = helper.make_graph(
        [node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]), node("Relu", ["c"], ["y"])],
        "conv3x3", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_nchw.shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(weight, "w"), numpy_helper.from_array(bias, "b")],
    )  # fmt: skip
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    session = onnxruntime.InferenceSession(model.SerializeToString(), options,
                                           providers=["CPUExecutionProvider"])  # fmt: skip
    binding = session.io_binding()
    binding.bind_cpu_input("x", x_nchw)
    binding.bind_output("y", "cpu")
    session.run_with_iobinding(binding)
    return lambda: session.run_with_iobinding(binding)


def median_ms(fn, repeat: int) -> float:
    """After ONNX Runtime's threads stop spinning (0.2 s) and 20 ms of untimed runs: as the
    model bench does, since a kernel timed right after ONNX Runtime ran 3x slower."""
    time.sleep(0.2)
    warm_until = time.perf_counter() + 0.02
    while time.perf_counter() < warm_until:
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def measure(channels: int, size: int, args, target) -> dict[str, float]:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, size, size, channels)).astype(np.float32)
    weight = (rng.standard_normal((channels, channels, 3, 3)) / channels).astype(np.float32)
    bias = rng.standard_normal(channels).astype(np.float32)
    direct, out_direct = tvmopt_runner(conv_nhwc.conv2d_nhwc, Conv2dNHWC(),
                                       conv_nhwc.pack_weight(weight), x, bias, target)  # fmt: skip
    tile = conv_winograd.DEFAULT_TILE
    winograd, out_winograd = tvmopt_runner(
        partial(conv_winograd.conv2d_winograd, tile=tile), Conv2dWinograd(),
        conv_winograd.transform_weight(weight, tile), x, bias, target,
    )  # fmt: skip
    direct(), winograd()
    scale = np.abs(out_direct.numpy()).max()
    error = np.abs(out_winograd.numpy() - out_direct.numpy()).max() / scale
    nchw = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    contenders = {"direct": direct, "winograd": winograd,
                  "onnxruntime": ort_runner(weight, bias, nchw, args.threads)}  # fmt: skip
    rounds = {name: [] for name in contenders}
    for _ in range(args.rounds):
        for name, fn in contenders.items():
            rounds[name].append(median_ms(fn, args.repeat))
    return {name: statistics.median(ms) for name, ms in rounds.items()} | {"error": error}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    os.environ["TVM_NUM_THREADS"] = str(args.threads)
    target = resolve_target(None)
    lines = ["# 3x3 convs: Winograd F(4x4, 3x3) against the direct kernel and ONNX Runtime", "",
             f"`python bench/winograd.py --rounds {args.rounds} --repeat {args.repeat} "
             f"--threads {args.threads}`", "",
             "Median ms of one conv + bias + ReLU (stride 1, padding 1, C -> C channels). "
             "Maps of 7x7 stay direct in compiled models.", "",
             "| shape | direct | Winograd | ONNX Runtime | direct / Winograd | error |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    for channels, size in SHAPES:
        ms = measure(channels, size, args, target)
        lines.append(f"| {channels} -> {channels} @ {size} | {ms['direct']:.3f} | "
                     f"{ms['winograd']:.3f} | {ms['onnxruntime']:.3f} | "
                     f"{ms['direct'] / ms['winograd']:.2f}x | {ms['error']:.1e} |")  # fmt: skip
        print(lines[-1], flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "winograd.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
