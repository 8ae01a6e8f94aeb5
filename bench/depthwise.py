"""Depthwise convs (MobileNetV2's shapes, 3x3 + bias + ReLU6): the depthwise rule against the
general conv rule it replaced and against ONNX Runtime, in one run.

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

import tvmopt
from tvmopt.backends.llvm import rules
from tvmopt.backends.llvm.rule_depthwise import DepthwiseConv2dNCHW

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


def general_rule_build(model):
    """The same model with the depthwise rule left out: Conv2dNCHW schedules it, as before."""
    every = rules.default_rules
    rules.default_rules = lambda: [r for r in every() if not isinstance(r, DepthwiseConv2dNCHW)]
    try:
        return tvmopt.compile(model)
    finally:
        rules.default_rules = every


def ort_runner(model, threads: int, feeds):
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    session = onnxruntime.InferenceSession(model.SerializeToString(), options)
    return session, lambda: session.run(None, feeds)


def median_ms(fn, repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1e3)
    return float(np.median(samples))


def measure(shape, args) -> tuple[float, float, float]:
    model = depthwise_model(*shape)
    channels, size, _ = shape
    feeds = {
        "x": np.random.default_rng(1).standard_normal((1, channels, size, size)).astype(np.float32)
    }
    ours, general = tvmopt.compile(model), general_rule_build(model)
    session, ort = ort_runner(model, args.threads, feeds)
    reference = session.run(None, feeds)[0]
    for build in (ours, general):
        assert np.abs(build.run(feeds)["y"] - reference).max() <= 1e-4 * np.abs(reference).max()
    runs = {"ours": lambda: ours.run(feeds), "general": lambda: general.run(feeds), "ort": ort}
    rounds = {name: [] for name in runs}
    for _ in range(args.rounds):
        for name, fn in runs.items():
            fn()
            rounds[name].append(median_ms(fn, args.repeat))
    return tuple(float(np.median(rounds[name])) for name in ("ours", "general", "ort"))


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
        "| channels x size, stride | depthwise rule | general conv rule | ONNX Runtime | "
        "rule speedup | vs ORT |",
        "|---|--:|--:|--:|--:|--:|",
    ]
    for shape in SHAPES:
        ours, general, ort = measure(shape, args)
        lines.append(f"| {shape[0]} x {shape[1]}, /{shape[2]} | {ours:.3f} | {general:.3f} | "
                     f"{ort:.3f} | {general / ours:.2f}x | {ort / ours:.2f}x |")  # fmt: skip
        print(lines[-1])
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "depthwise.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
