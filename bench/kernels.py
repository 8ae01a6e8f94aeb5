"""Kernel-level bench: the ResNet 3x3 conv (64->64 channels, 56x56) and a 768x3072 dense layer
(128 rows, as in BERT-base at sequence 128), tvmopt against ONNX Runtime in one run, next to
this machine's measured fp32 peak (tvmopt/peak.py: independent FMA chains on every thread), per
ISA: tvmopt for this CPU, and for AVX2 (x86-64-v3: 16 ymm registers, as on a Zen 3), which an
AVX-512 CPU runs unchanged, against the peak of AVX2 code on this CPU.

    python bench/kernels.py [--threads 2] [--rounds 10] [--block 10]

Kernel time, not API time: tvmopt runs on tensors made once, ONNX Runtime through an IOBinding
with preallocated input and output buffers, so neither side pays for copies. The contenders take
turns in blocks of back-to-back runs (each block warmed up first), so a noisy neighbour hits both
alike; the table reports the median over all runs. Writes bench/results/kernels.md.
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from tvmopt.peak import measured_peak

HERE = Path(__file__).parent
RESULTS = HERE / "results"


def single_op(name, node, x_shape, weights) -> Path:
    rng = np.random.default_rng(0)
    inits = [
        numpy_helper.from_array(rng.standard_normal(s).astype(np.float32), n) for n, s in weights
    ]
    graph = helper.make_graph(
        [node], name, [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits,
    )  # fmt: skip
    path = RESULTS / "cache" / f"{name}.onnx"
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def resnet_conv3x3() -> Path:
    conv = helper.make_node("Conv", ["x", "w"], ["y"], pads=[1] * 4)
    return single_op("resnet_conv3x3", conv, [1, 64, 56, 56], [("w", (64, 64, 3, 3))])


def dense_768x3072() -> Path:
    matmul = helper.make_node("MatMul", ["x", "w"], ["y"])
    return single_op("dense_768x3072", matmul, [128, 768], [("w", (768, 3072))])


# ISA: (tvmopt's target, the peak's -march); AVX2 where this CPU runs x86-64-v3 code
ISAS = {"host": (None, "native"), "avx2": ("x86-64-v3", "x86-64-v3")}
KERNELS = {  # name: (model builder, FLOPs per run)
    "resnet_conv3x3": (resnet_conv3x3, 2 * 64 * 56 * 56 * 64 * 9),
    "dense_768x3072": (dense_768x3072, 2 * 128 * 768 * 3072),
}


def runnable_isas() -> dict:
    from tvmopt.backends.cpu_features import X86_LEVELS, host_arch, host_features

    have = host_features() or frozenset()
    avx2 = host_arch() == "x86_64" and all(f in have for f in dict(X86_LEVELS)["x86-64-v3"])
    return {isa: spec for isa, spec in ISAS.items() if isa == "host" or avx2}


def tvmopt_kernel(path: Path, x: np.ndarray, target=None):
    """The compiled VM function on a tensor made once; checked against ONNX Runtime first."""
    import tvmopt
    from tvmopt._tvm import tvm

    compiled = tvmopt.compile(path, target=target)
    main, tensor = compiled._machine["main"], tvm.runtime.tensor(x)
    return lambda: main(tensor), lambda: compiled.run({"x": x})["y"]


def ort_kernel(path: Path, x: np.ndarray, threads: int):
    """An ONNX Runtime session bound once to its input and a preallocated output."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    expected = session.run(None, {"x": x})[0]
    binding = session.io_binding()
    binding.bind_cpu_input("x", x)
    binding.bind_ortvalue_output("y", onnxruntime.OrtValue.ortvalue_from_numpy(expected.copy()))
    return lambda: session.run_with_iobinding(binding), expected


# Both thread pools spin-wait for a while after a run and would steal the cores of whoever runs
# next; a block starts once the previous contender's threads have gone to sleep.
SETTLE_SECONDS = 0.2


def timed_blocks(runners: dict, rounds: int, block: int) -> dict[str, list[float]]:
    """Per contender, `rounds` blocks of `block` back-to-back timed runs, contenders in turn."""
    samples = {name: [] for name in runners}
    for _ in range(rounds):
        for name, run in runners.items():
            time.sleep(SETTLE_SECONDS)
            run()  # warm: the other contender's threads have just gone idle
            for _ in range(block):
                start = time.perf_counter()
                run()
                samples[name].append((time.perf_counter() - start) * 1e3)
    return samples


def bench_kernel(name: str, threads: int, rounds: int, block: int, isas: dict):
    """(median ms per contender, FLOPs); contenders "tvmopt host", "tvmopt avx2", ONNX Runtime
    (which picks its own kernels for this CPU)."""
    make, flops = KERNELS[name]
    path = make()
    shape = [d.dim_value for d in onnx.load(path).graph.input[0].type.tensor_type.shape.dim]
    x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    ort_run, expected = ort_kernel(path, x, threads)
    runners = {}
    for isa, (target, _) in isas.items():
        tvm_run, tvm_result = tvmopt_kernel(path, x, target)
        error = np.abs(tvm_result() - expected).max() / np.abs(expected).max()
        assert error < 1e-4, f"{name} ({isa}): tvmopt differs from ONNX Runtime by {error:.2g}"
        runners[f"tvmopt {isa}"] = tvm_run
    samples = timed_blocks({**runners, "onnxruntime": ort_run}, rounds, block)
    return {who: statistics.median(ms) for who, ms in samples.items()}, flops


def table(medians: dict, peaks: dict) -> str:
    """Each contender's GFLOP/s against the peak of its ISA (ONNX Runtime's: this CPU's)."""
    measured = ", ".join(f"{isa} {peak:.1f}" for isa, peak in peaks.items())
    lines = [
        f"Measured peak, GFLOP/s per ISA (`tvmopt/peak_flops.c`): {measured}\n",
        "| kernel | contender | median ms | GFLOP/s | % of its ISA's peak |",
        "|---|---|---|---|---|",
    ]
    for kernel, (per_contender, flops) in medians.items():
        for who, ms in per_contender.items():
            gflops = flops / ms / 1e6
            share = 100 * gflops / peaks[who.split()[-1] if who.startswith("tvmopt") else "host"]
            lines.append(f"| {kernel} | {who} | {ms:.3f} | {gflops:.1f} | {share:.0f}% |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--block", type=int, default=10)
    args = parser.parse_args()
    os.environ["TVM_NUM_THREADS"] = str(args.threads)  # read when TVM's thread pool starts
    isas = runnable_isas()
    peaks = {isa: measured_peak(march, args.threads) for isa, (_, march) in isas.items()}
    medians = {k: bench_kernel(k, args.threads, args.rounds, args.block, isas) for k in KERNELS}
    command = "python " + " ".join(["bench/kernels.py", *sys.argv[1:]])
    from tvmopt.benchmark.report import machine

    where = machine()
    text = (f"Machine: {where['cpu']} ({where['llvm_cpu']}: {where['isa']})\n\n"
            + table(medians, peaks) + f"\nProduced by `{command}`.\n")  # fmt: skip
    (RESULTS / "kernels.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
