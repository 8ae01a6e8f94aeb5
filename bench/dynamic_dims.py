"""One library for every sequence length vs a library per length, vs ONNX Runtime.

A MiniLM-L6-sized encoder (tvmopt.benchmark.nets.bert: hidden 384, 12 heads, FFN 1536; 6 layers
by default) exported with dynamic batch and sequence axes is compiled twice: with symbolic dims
(`dims={"batch": (1, 8), "sequence": (1, 512)}`) and pinned to the measured shape. The three are
timed in one process, interleaved, medians of repeated rounds: compare the ratios, not the times.

    python bench/dynamic_dims.py [--layers 6] [--seq 128] [--rounds 15]
"""

from __future__ import annotations

import argparse
import io

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
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    model = export(args.layers)

    import onnxruntime as ort

    import tvmopt
    from tvmopt.threads import physical_cores
    from tvmopt.timing import interleaved_medians

    dynamic = tvmopt.compile(model, dims={"batch": (1, 8), "sequence": (1, 512)})
    static = tvmopt.compile(model, input_shapes={"input_ids": (1, args.seq)})
    options = ort.SessionOptions()
    options.intra_op_num_threads = physical_cores()  # as tvmopt runs (threads.py)
    session = ort.InferenceSession(model.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])  # fmt: skip
    feeds = {"input_ids": np.random.default_rng(0).integers(1, 30522, (1, args.seq))}
    reference = session.run(None, feeds)[0]
    for name, compiled in (("dynamic", dynamic), ("static", static)):
        error = float(np.abs(compiled.run(feeds)["hidden"] - reference).max())
        print(f"{name}: max abs error vs ONNX Runtime {error:.2e}")
    medians = interleaved_medians({
        "tvmopt dynamic (1..512)": lambda: dynamic.run(feeds),
        f"tvmopt static (1, {args.seq})": lambda: static.run(feeds),
        "onnxruntime": lambda: session.run(None, feeds),
    }, args.rounds)  # fmt: skip
    for name, seconds in medians.items():
        ratio = seconds / medians["onnxruntime"]
        print(f"{name:26} {seconds * 1e3:8.2f} ms   x{ratio:.2f} of ONNX Runtime")


if __name__ == "__main__":
    main()
