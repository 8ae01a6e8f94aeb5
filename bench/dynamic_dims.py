"""One library for every sequence length vs a library per length, vs ONNX Runtime.

A MiniLM-L6-sized encoder (tvmopt.benchmark.nets.bert: hidden 384, 12 heads, FFN 1536; 6 layers
by default) exported with dynamic batch and sequence axes is compiled with symbolic dims
(`dims={"batch": (1, 8), "sequence": (1, 512)}`): once symbolic only, once with buckets (static
variants at --buckets lengths, buckets.py), and once pinned to each measured length. All run in
one process, interleaved, medians of repeated rounds: compare the ratios, not the times.

    python bench/dynamic_dims.py [--layers 6] [--seq 16 64 128 384] [--rounds 15]
                                 [--buckets 16 32 64 128 256 512]
"""

from __future__ import annotations

import argparse
import io
import os
from functools import partial

import numpy as np
import onnx


def export(layers: int) -> onnx.ModelProto:
    import torch

    from tvmopt.benchmark.nets.bert import BertEncoder

    torch.manual_seed(0)
    module = BertEncoder(vocab=30522, hidden=384, layers=layers, heads=12, ffn=1536).eval()
    ids = torch.randint(1, 30522, (1, 16))
    buffer = io.BytesIO()
    with torch.no_grad():
        torch.onnx.export(module, (ids,), buffer, input_names=["input_ids"],
                          output_names=["hidden"], dynamo=False, opset_version=17,
                          dynamic_axes={"input_ids": {0: "batch", 1: "sequence"}})  # fmt: skip
    return onnx.load_model_from_string(buffer.getvalue())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=6)
    parser.add_argument("--seq", type=int, nargs="+", default=[16, 64, 128, 384])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--buckets", type=int, nargs="+", default=[16, 32, 64, 128, 256, 512])
    parser.add_argument("--threads", type=int, help="threads for each (default: physical cores)")
    args = parser.parse_args()
    if args.threads:  # read by TVM's pool when it starts (threads.py)
        os.environ["TVM_NUM_THREADS"] = str(args.threads)
    model = export(args.layers)
    ranges = {"batch": (1, 8), "sequence": (1, 512)}

    import onnxruntime as ort

    import tvmopt
    from tvmopt.threads import physical_cores
    from tvmopt.timing import interleaved_medians

    dynamic = tvmopt.compile(model, dims=ranges)
    bucketed = tvmopt.compile(model, dims=ranges, buckets={"sequence": args.buckets})
    static = {seq: tvmopt.compile(model, input_shapes={"input_ids": (1, seq)}) for seq in args.seq}
    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads or physical_cores()  # as tvmopt runs
    session = ort.InferenceSession(model.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])  # fmt: skip
    calls = {}
    for seq in args.seq:
        feeds = {"input_ids": np.random.default_rng(seq).integers(1, 30522, (1, seq))}
        reference = session.run(None, feeds)[0]
        libraries = {"symbolic": dynamic, "bucketed": bucketed, "static": static[seq]}
        for name, compiled in libraries.items():
            error = float(np.abs(compiled.run(feeds)["hidden"] - reference).max())
            print(f"{seq} tokens, {name}: max abs error vs ONNX Runtime {error:.2e}; "
                  f"runs {compiled.function_for([(1, seq)])}")  # fmt: skip
            calls[seq, name] = partial(compiled.run, feeds)
        calls[seq, "onnxruntime"] = partial(session.run, None, feeds)
    medians = interleaved_medians(calls, args.rounds)
    print("| tokens | symbolic library | bucketed library | static library | ONNX Runtime |")
    for seq in args.seq:
        print(_row(seq, medians))


def _row(seq: int, medians: dict) -> str:
    """One table row: each one-library latency with its ratios to the static and to ORT's."""
    static, ort_time = medians[seq, "static"], medians[seq, "onnxruntime"]
    cells = [_cell(medians[seq, name], static, ort_time) for name in ("symbolic", "bucketed")]
    return f"| {seq} | {' | '.join(cells)} | {static * 1e3:.2f} ms | {ort_time * 1e3:.2f} ms |"


def _cell(seconds: float, static: float, ort_time: float) -> str:
    return f"{seconds * 1e3:.2f} ms ({seconds / static:.2f}x static, {seconds / ort_time:.2f}x ORT)"


if __name__ == "__main__":
    main()
