"""VTA on ResNet-18's offloaded convolutions: the 19 layers the ReQuEST'18 design runs on VTA
(C2-C12, reference section 8), each lowered to a VTA program, simulated bit-exactly (checked
against the int32 reference) with and without latency hiding, next to the same int8 layer on
this CPU (tvmopt's int8 kernels, QLinearConv) and the published Pynq-Z1 times (TopHub).

    python bench/vta_resnet18.py [--clock-mhz 100] [--repeat 20] [--no-cpu]

Data are seeded random int8 tensors: cycles depend on shapes, not values. Writes
bench/results/vta/resnet18_convs.md.
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from tvmopt.backends.vta.config import VTAConfig
from tvmopt.backends.vta.cycles import CycleModel
from tvmopt.backends.vta.lower_conv import conv_reference, lower_conv, unpack_activation
from tvmopt.backends.vta.requantize import Requantize
from tvmopt.backends.vta.simulator import Simulator

RESULTS = Path(__file__).parent / "results" / "vta"
# name: (input size, in channels, out channels, kernel, stride, times in ResNet-18)
LAYERS = {
    "C2": (56, 64, 64, 3, 1, 4), "C4": (56, 64, 128, 3, 2, 1), "C5": (56, 64, 128, 1, 2, 1),
    "C6": (28, 128, 128, 3, 1, 3), "C7": (28, 128, 256, 3, 2, 1), "C8": (28, 128, 256, 1, 2, 1),
    "C9": (14, 256, 256, 3, 1, 3), "C10": (14, 256, 512, 3, 2, 1), "C11": (14, 256, 512, 1, 2, 1),
    "C12": (7, 512, 512, 3, 1, 3),
}  # fmt: skip
TOPHUB_MS = {"C2": 5.699, "C4": 2.966, "C5": 1.349, "C6": 5.183, "C7": 2.669, "C8": 1.029,
             "C9": 4.934, "C10": 3.994, "C11": 1.081, "C12": 7.348}  # fmt: skip


def layer_data(name, rng):
    size, cin, cout, k, stride, _ = LAYERS[name]
    x = rng.integers(-128, 128, (cin, size, size)).astype(np.int8)
    w = rng.integers(-128, 128, (cout, cin, k, k)).astype(np.int8)
    bias = rng.integers(-(2**15), 2**15, cout).astype(np.int32)
    return x, w, bias, stride, k // 2


def simulate(name, config, double_buffer, rng):
    x, w, bias, stride, padding = layer_data(name, rng)
    requantize = Requantize(shift=12, relu=True)
    program = lower_conv(x, w, bias, stride, padding, requantize, config,
                         double_buffer=double_buffer)  # fmt: skip
    dram = program.dram.copy()
    start = time.perf_counter()
    counters = Simulator(dram, config).run(program.insns)
    seconds = time.perf_counter() - start
    expected = conv_reference(x, w, bias, stride, padding, requantize)
    out_h, out_w = expected.shape[1:]
    blocks = program.read("y", dram).reshape(-1, out_h, out_w, config.block)
    actual = unpack_activation(blocks, w.shape[0])
    if not np.array_equal(actual, expected):
        sys.exit(f"{name}: the simulated output differs from the reference")
    return counters, seconds, len(program.insns)


def cpu_ms(name, repeat) -> float:
    """The same int8 layer on this CPU: a QLinearConv model compiled by tvmopt, median ms."""
    import tvmopt

    x, w, bias, stride, padding = layer_data(name, np.random.default_rng(0))
    scalar = lambda n, v, t: numpy_helper.from_array(np.array(v, t), n)  # noqa: E731
    inits = [numpy_helper.from_array(w, "w"), numpy_helper.from_array(bias, "b"),
             scalar("xs", 0.05, np.float32), scalar("ws", 0.01, np.float32),
             scalar("ys", 0.2, np.float32), scalar("zp", 0, np.int8)]  # fmt: skip
    node = helper.make_node("QLinearConv", ["x", "xs", "zp", "w", "ws", "zp", "ys", "zp", "b"],
                            ["y"], pads=[padding] * 4, strides=[stride] * 2)  # fmt: skip
    out = (x.shape[1] + 2 * padding - w.shape[-1]) // stride + 1
    graph = helper.make_graph(
        [node], name, [helper.make_tensor_value_info("x", TensorProto.INT8, (1, *x.shape))],
        [helper.make_tensor_value_info("y", TensorProto.INT8, (1, w.shape[0], out, out))], inits,
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    compiled = tvmopt.compile(model)
    check_against_onnxruntime(model, compiled, x[None], name)
    return compiled.benchmark({"x": x[None]}, repeat=repeat).median_ms


def check_against_onnxruntime(model, compiled, x, name) -> None:
    """int8 outputs may differ by one where rounding ties fall differently; no more."""
    import onnxruntime

    session = onnxruntime.InferenceSession(model.SerializeToString(),
                                           providers=["CPUExecutionProvider"])  # fmt: skip
    expected = session.run(None, {"x": x})[0].astype(np.int32)
    actual = compiled.run({"x": x})["y"].astype(np.int32)
    if np.abs(actual - expected).max() > 1:
        sys.exit(f"{name}: tvmopt's int8 CPU output differs from ONNX Runtime's by more than 1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clock-mhz", type=float, default=100.0)
    parser.add_argument("--repeat", type=int, default=20, help="CPU timing runs per layer")
    parser.add_argument("--no-cpu", action="store_true", help="skip the CPU column")
    args = parser.parse_args()
    config = VTAConfig(clock_mhz=args.clock_mhz)
    model = CycleModel(config)
    rows, totals = [], {"gemm": 0, "serial": 0, "hidden": 0, "cpu": 0.0, "tophub": 0.0}
    for name, (*_, times) in LAYERS.items():
        serial, _, _ = simulate(name, config, False, np.random.default_rng(0))
        hidden, sim_s, insns = simulate(name, config, True, np.random.default_rng(0))
        cpu = None if args.no_cpu else cpu_ms(name, args.repeat)
        rows.append((name, times, insns, hidden, serial, sim_s, cpu))
        totals["gemm"] += times * hidden.gemm_counter
        totals["serial"] += times * serial.cycles
        totals["hidden"] += times * hidden.cycles
        totals["cpu"] += times * (cpu or 0)
        totals["tophub"] += times * TOPHUB_MS[name]
        print(f"{name}: {hidden.cycles} cycles, utilization {hidden.gemm_utilization:.0%}",
              file=sys.stderr)  # fmt: skip
    write_report(rows, totals, model, args)


def write_report(rows, totals, model, args) -> None:
    lines = [
        "# VTA: ResNet-18's offloaded convolutions",
        "",
        f"`python bench/vta_resnet18.py --clock-mhz {args.clock_mhz:g} --repeat {args.repeat}"
        f"{' --no-cpu' if args.no_cpu else ''}`: simulated cycles at {args.clock_mhz:g} MHz "
        "(16x16 int8 GEMM core, 64-bit bus); every output was checked bit for bit against the "
        "int32 reference. CPU: the same int8 layer (QLinearConv) compiled by tvmopt for this "
        "machine's CPU (2 threads; outputs within 1 of ONNX Runtime's), median of the runs. "
        "Pynq-Z1: AutoTVM TopHub's measured times on the "
        "board (published, not measured here).",
        "",
        "| layer | x | insns | GEMM uop-iters | cycles (no hiding) | util | cycles (hiding) "
        "| util | VTA ms | CPU ms | Pynq-Z1 ms | sim s |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for name, times, insns, hidden, serial, sim_s, cpu in rows:
        cpu_text = f"{cpu:.2f}" if cpu is not None else "-"
        lines.append(
            f"| {name} | {times} | {insns} | {hidden.gemm_counter:,} | {serial.cycles:,} "
            f"| {serial.gemm_utilization:.0%} | {hidden.cycles:,} | {hidden.gemm_utilization:.0%} "
            f"| {model.seconds(hidden.cycles) * 1e3:.2f} | {cpu_text} | {TOPHUB_MS[name]:.2f} "
            f"| {sim_s:.2f} |"
        )
    lines += summary(totals, model, args)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "resnet18_convs.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def summary(totals, model, args) -> list[str]:
    cpu = f"{totals['cpu']:.1f} ms" if not args.no_cpu else "not measured"
    return [
        "",
        "All 19 layers (each counted as often as ResNet-18 runs it):",
        "",
        f"- GEMM uop-iterations: {totals['gemm']:,} (the ideal; reference: 6,623,232)",
        f"- cycles without latency hiding: {totals['serial']:,} "
        f"(GEMM utilization {totals['gemm'] / totals['serial']:.0%})",
        f"- cycles with latency hiding: {totals['hidden']:,} "
        f"(GEMM utilization {totals['gemm'] / totals['hidden']:.0%}; "
        f"{model.seconds(totals['hidden']) * 1e3:.1f} ms at {args.clock_mhz:g} MHz)",
        "- published: 70% utilization without and 88% with latency hiding (ReQuEST'18); "
        "7,729,601 tsim cycles for the offloaded net (tvm-vta PR #30); TopHub's Pynq-Z1 "
        f"layer times sum to {totals['tophub']:.1f} ms",
        f"- the same layers on this CPU (tvmopt int8): {cpu}",
    ]


if __name__ == "__main__":
    main()
