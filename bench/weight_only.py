"""Weight-only quantized GEMVs (a decoding step's matrix-vector products, M = 1): our int4 and
int8 weights against our float32, ONNX Runtime's float32 MatMul and its MatMulNBits int4, all in
one run, interleaved.

    python bench/weight_only.py [--rounds 15] [--repeat 40] [--threads 2]

Shapes: GPT-2 small's 768 -> 3072 (MLP up), 3072 -> 768 (down) and 768 -> 2304 (QKV), and a
stack of its six MLPs' 12 matmuls (113 MB of float32 weights: past the L3 cache, as a decoder's
weights are; one 9.4 MB weight stays in L3 across repeats). Ours compile for this CPU and for the
AVX2 level ({"kind": "llvm", "mcpu": "x86-64-v3"}); ONNX Runtime runs its own dispatch for this
CPU. Its MatMulNBits models come from its MatMulNBitsQuantizer (int4, groups of 32, zero points)
at accuracy level 0 (float32 activations, as ours) and 4 (activations rounded to int8 per block,
its fastest CPU path). ours(ORT int4) is that same MatMulNBits model compiled by tvmopt: its
output must match ONNX Runtime's level 0 to float32 rounding. Each contender's time is the median
over rounds of the median of `repeat` calls; rounds alternate the contenders so that drift hits
all alike. Writes bench/results/weight_only/results.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
from onnx import TensorProto, helper, numpy_helper

import tvmopt
from tvmopt._tvm import tvm
from tvmopt.backends import resolve_target
from tvmopt.timing import time_callable

RESULTS = Path(__file__).parent / "results" / "weight_only"
SHAPES = {"768x3072": [(768, 3072)], "3072x768": [(3072, 768)], "768x2304": [(768, 2304)],
          "6 MLPs (12 layers)": [(768, 3072), (3072, 768)] * 6}  # fmt: skip
ISAS = {"host": None, "avx2": {"kind": "llvm", "mcpu": "x86-64-v3"}}
OURS = {"fp32": None, "int8-weights": "int8-weights", "int4-weights": "int4-weights"}


def chain_model(layers) -> onnx.ModelProto:
    """x [1, K0] through MatMuls of the given (K, N), weights scaled to keep values near 1."""
    rng = np.random.default_rng(0)
    nodes, weights, name = [], [], "x"
    for index, (depth, columns) in enumerate(layers):
        weight = rng.standard_normal((depth, columns), np.float32) / np.sqrt(depth)
        weights.append(numpy_helper.from_array(weight.astype(np.float32), f"W{index}"))
        out = "y" if index == len(layers) - 1 else f"h{index}"
        nodes.append(helper.make_node("MatMul", [name, f"W{index}"], [out], name=f"mm{index}"))
        name = out
    graph = helper.make_graph(
        nodes, "chain", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, layers[0][0]])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, layers[-1][1]])], weights,
    )  # fmt: skip
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def ort_int4(model: onnx.ModelProto, accuracy_level: int) -> onnx.ModelProto:
    from onnxruntime.quantization.matmul_nbits_quantizer import (
        DefaultWeightOnlyQuantConfig,
        MatMulNBitsQuantizer,
    )

    copied = onnx.ModelProto()
    copied.CopyFrom(model)
    config = DefaultWeightOnlyQuantConfig(block_size=32, is_symmetric=False,
                                          accuracy_level=accuracy_level)  # fmt: skip
    quantizer = MatMulNBitsQuantizer(copied, algo_config=config)
    quantizer.process()
    return quantizer.model.model


def ort_runner(model, threads: int, feeds):
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    session = onnxruntime.InferenceSession(model.SerializeToString(), options,
                                           providers=["CPUExecutionProvider"])  # fmt: skip
    binding = session.io_binding()
    binding.bind_cpu_input("x", feeds["x"])
    binding.bind_output("y", "cpu")
    return session.run(None, feeds)[0], lambda: session.run_with_iobinding(binding)


def vm_runner(compiled, feeds):
    vm = tvm.relax.VirtualMachine(compiled._module, tvm.cpu())
    x = tvm.runtime.tensor(feeds["x"])
    return compiled.run(feeds)["y"], lambda: vm["main"](x)


def median_ms(fn, repeat: int) -> float:
    """After ONNX Runtime's threads stop spinning (0.2 s) and 20 ms of untimed runs, as the
    other benches do (bench/winograd.py): right after ONNX Runtime, our kernels ran 3-50x slower
    on 2 cores."""
    time.sleep(0.2)
    warm_until = time.perf_counter() + 0.02
    while time.perf_counter() < warm_until:
        fn()
    return time_callable(fn, repeat, warmup=0).median_ms


def contenders(layers, threads: int, feeds) -> dict:
    """name -> (output, runner)."""
    model = chain_model(layers)
    int4 = {level: ort_int4(model, level) for level in (0, 4)}
    runs = {}
    for isa, target in ISAS.items():
        for name, scheme in OURS.items():
            runs[f"ours {name} ({isa})"] = vm_runner(tvmopt.compile(model, target, quantize=scheme),
                                                     feeds)  # fmt: skip
    runs["ours(ORT int4) (host)"] = vm_runner(tvmopt.compile(int4[0]), feeds)
    runs["ORT fp32"] = ort_runner(model, threads, feeds)
    runs["ORT int4 acc0"] = ort_runner(int4[0], threads, feeds)
    runs["ORT int4 acc4"] = ort_runner(int4[4], threads, feeds)
    return runs


def check(runs: dict) -> dict:
    """Each output's error relative to ONNX Runtime's float32 (ours(ORT int4): to its int4)."""
    reference, int4 = runs["ORT fp32"][0], runs["ORT int4 acc0"][0]
    same = np.abs(runs["ours(ORT int4) (host)"][0] - int4).max() / np.abs(int4).max()
    assert same < 1e-5, f"tvmopt on ONNX Runtime's int4 model differs from it: {same:.3g}"
    assert np.abs(runs["ours fp32 (host)"][0] - reference).max() < 1e-4 * np.abs(reference).max()
    return {name: float(np.abs(out - reference).max() / np.abs(reference).max())
            for name, (out, _) in runs.items()}  # fmt: skip


def measure(layers, args) -> tuple[dict, dict]:
    feeds = {"x": np.random.default_rng(1).standard_normal((1, layers[0][0])).astype(np.float32)}
    runs = contenders(layers, args.threads, feeds)
    errors = check(runs)
    rounds = {name: [] for name in runs}
    for _ in range(args.rounds):
        for name, (_, fn) in runs.items():
            rounds[name].append(median_ms(fn, args.repeat))
    return {name: float(np.median(times)) for name, times in rounds.items()}, errors


def table(results: dict) -> list[str]:
    names = list(next(iter(results.values()))[0])
    lines = ["| contender | " + " | ".join(results) + " |", "|---" * (len(results) + 1) + "|"]
    for name in names:
        cells = []
        for times, errors in results.values():
            base = times["ours fp32 (host)" if "host" in name or "ORT" in name else
                         "ours fp32 (avx2)"]  # fmt: skip
            cells.append(f"{1e3 * times[name]:.0f} us ({base / times[name]:.2f}x, "
                         f"err {errors[name]:.1e})")  # fmt: skip
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--repeat", type=int, default=40)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    results = {name: measure(layers, args) for name, layers in SHAPES.items()}
    host = resolve_target(None)
    lines = [
        "# Weight-only int4/int8 GEMVs (M = 1)", "",
        f"`python bench/weight_only.py --rounds {args.rounds} --repeat {args.repeat} --threads "
        f"{args.threads}` on {platform.node()}, target {json.dumps(host.export().get('mcpu'))} "
        f"(host, AVX-512) and x86-64-v3 (avx2); ONNX Runtime {onnxruntime.__version__} on the "
        "host's own dispatch. Median of per-round medians, rounds interleaved.", "",
        "Each cell: time (speed-up over our float32 of the same ISA; ONNX Runtime's rows over "
        "our host float32), and the output's largest error relative to ONNX Runtime float32's "
        "largest magnitude (the quantization's, for the int rows).", "",
        *table(results), "",
    ]  # fmt: skip
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "results.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
