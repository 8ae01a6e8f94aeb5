"""ResNet-50's conv shapes, int8 against our own float32, layer by layer, on one ISA: a chain of
three convs (+ bias + ReLU, alternating C -> K -> C) compiled by tvmopt both ways, whole
pipelines (the float build picks Winograd or the channels-last kernel as it would in the model,
the int8 build quantizes, calibrated on the same inputs), timed in alternating rounds.

    TVM_NUM_THREADS=1 python bench/int8_layers.py --target x86-64-v3 [--rounds 15]

The ratio is where int8 pays and by how much: issue 32 asks for int8 at most 0.5x float32.
"""

import argparse

import numpy as np
from onnx import TensorProto, helper, numpy_helper

import tvmopt
from tvmopt.timing import interleaved_medians

# (channels in, channels out, kernel, map size): ResNet-50's 3x3 and 1x1 convs per stage
SHAPES = [
    (64, 64, 3, 56), (128, 128, 3, 28), (256, 256, 3, 14), (512, 512, 3, 7),
    (256, 64, 1, 56), (512, 128, 1, 28), (1024, 256, 1, 14), (2048, 512, 1, 7),
    (64, 256, 1, 56), (256, 1024, 1, 14),
]  # fmt: skip
CONVS = 3


def conv_chain(channels_in: int, channels_out: int, kernel: int, size: int):
    """Conv -> ReLU, CONVS times, the channels going in -> out -> in ...; He-initialized."""
    rng = np.random.default_rng(0)
    nodes, weights, current = [], [], "x"
    for index in range(CONVS):
        cin, cout = (channels_in, channels_out) if index % 2 == 0 else (channels_out, channels_in)
        scale = np.sqrt(2 / (cin * kernel * kernel))
        w = (rng.standard_normal((cout, cin, kernel, kernel)) * scale).astype(np.float32)
        b = (rng.standard_normal(cout) * 0.1).astype(np.float32)
        weights += [numpy_helper.from_array(w, f"w{index}"),
                    numpy_helper.from_array(b, f"b{index}")]  # fmt: skip
        conv = helper.make_node("Conv", [current, f"w{index}", f"b{index}"], [f"c{index}"],
                                pads=[kernel // 2] * 4)  # fmt: skip
        nodes += [conv, helper.make_node("Relu", [f"c{index}"], [f"r{index}"])]
        current = f"r{index}"
    image = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, channels_in, size, size])
    out = helper.make_tensor_value_info(current, TensorProto.FLOAT, None)
    graph = helper.make_graph(nodes, "chain", [image], [out], weights)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def measure(shape, target: str, rounds: int) -> dict[str, float]:
    """Milliseconds per run of the chain in float32 and in int8."""
    channels_in, _, _, size = shape
    rng = np.random.default_rng(1)
    shape_nchw = (1, channels_in, size, size)
    samples = [{"x": np.abs(rng.standard_normal(shape_nchw)).astype(np.float32)} for _ in range(4)]
    model = conv_chain(*shape)
    float32 = tvmopt.compile(model, target=target)
    int8 = tvmopt.compile(model, target=target, quantize="int8", calib=samples)
    runs = {"fp32": lambda: float32.run(samples[0]), "int8": lambda: int8.run(samples[0])}
    return {name: s * 1e3 for name, s in interleaved_medians(runs, rounds, calls=3).items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="x86-64-v3", help="an x86-64 level or a CPU name")
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    print(f"target {args.target}, {CONVS} convs per chain, median ms of alternating rounds")
    print("| C -> K | kernel | map | fp32 ms | int8 ms | int8 / fp32 |\n|---|---|---|--:|--:|--:|")
    for shape in SHAPES:
        ms = measure(shape, args.target, args.rounds)
        channels_in, channels_out, kernel, size = shape
        print(
            f"| {channels_in} -> {channels_out} | {kernel}x{kernel} | {size}x{size} | "
            f"{ms['fp32']:.2f} | {ms['int8']:.2f} | {ms['int8'] / ms['fp32']:.2f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
