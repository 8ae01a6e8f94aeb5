"""Kernel-level bench: the ResNet 3x3 conv (64->64 channels, 56x56) and a 768x3072 dense layer
(128 rows, as in BERT-base at sequence 128), tvmopt against ONNX Runtime in one run, next to
this machine's measured fp32 peak (peak_flops.c: independent FMA chains on every thread).

    python bench/kernels.py [--threads 2] [--repeat 20]

Writes bench/results/kernels.md.
"""

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from tvmopt.benchmark.runner import run_bench

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


def measured_peak(threads: int) -> float:
    with tempfile.TemporaryDirectory() as workdir:
        binary = Path(workdir) / "peak"
        flags = ["-O3", "-march=native", "-ffp-contract=fast", "-fopenmp"]
        subprocess.run(["cc", *flags, str(HERE / "peak_flops.c"), "-o", str(binary)], check=True)
        env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        return float(subprocess.run([str(binary)], env=env, capture_output=True, text=True).stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    conv = single_op("resnet_conv3x3", helper.make_node("Conv", ["x", "w"], ["y"], pads=[1] * 4),
                     [1, 64, 56, 56], [("w", (64, 64, 3, 3))])  # fmt: skip
    dense = single_op("dense_768x3072", helper.make_node("MatMul", ["x", "w"], ["y"]),
                      [128, 768], [("w", (768, 3072))])  # fmt: skip
    peak = measured_peak(args.threads)
    out = RESULTS / "kernels"
    run_bench([str(conv), str(dense)], ["llvm", "onnxruntime"], args.threads, args.repeat, 3,
              out, "python " + " ".join(sys.argv), log=lambda _: None)  # fmt: skip
    table = rows_with_peak(out, peak)
    (RESULTS / "kernels.md").write_text(table)
    print(table)


def rows_with_peak(out: Path, peak: float) -> str:
    import csv

    lines = [
        f"Measured peak: {peak:.1f} GFLOP/s (`bench/peak_flops.c`)\n",
        "| kernel | contender | median ms | GFLOP/s | % of peak |",
        "|---|---|---|---|---|",
    ]
    for row in csv.DictReader(open(out / "results.csv")):
        share = f"{100 * float(row['gflops']) / peak:.0f}%" if row["gflops"] else ""
        cells = [row["model"], row["contender"], row["median_ms"], row["gflops"], share]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
