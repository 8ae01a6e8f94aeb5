"""Bucket padding against exact buckets, symbolic kernels, a static library per length and ONNX
Runtime: a MiniLM-L6-sized BERT (hidden 384, 12 heads, FFN 1536, 6 layers; transformers'
BertModel, seeded weights) exported with dynamic batch and sequence and its attention mask.

    python bench/bucket_padding.py [--seq 60 100 120 250] [--threads 1] [--rounds 15]

"bucketed" is one library with buckets 16..512 (a length between buckets runs the symbolic
kernels); "padded" is the same library compiled with bucket_padding="attention_mask" (a length
within 1.25x of the next bucket pads up to it); "static" is compiled for the length alone.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import warnings
from functools import partial
from pathlib import Path

import numpy as np
import onnx

BUCKETS = [16, 32, 64, 128, 256, 512]


def export() -> onnx.ModelProto:
    import torch

    # bench/kernels.py would shadow the `kernels` package transformers imports
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent]
    import transformers

    config = transformers.BertConfig(vocab_size=30522, hidden_size=384, num_hidden_layers=6,
                                     num_attention_heads=12, intermediate_size=1536)  # fmt: skip
    torch.manual_seed(0)
    model = transformers.BertModel(config).eval()

    class Hidden(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.bert = model

        def forward(self, input_ids, attention_mask):
            return self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    ids = torch.randint(1, 30522, (1, 16))
    buffer = io.BytesIO()
    axes = {"batch": 0, "sequence": 1}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(Hidden(), (ids, torch.ones_like(ids)), buffer, dynamo=False,
                          input_names=["input_ids", "attention_mask"], output_names=["hidden"],
                          opset_version=17,
                          dynamic_axes={"input_ids": {v: k for k, v in axes.items()},
                                        "attention_mask": {v: k for k, v in axes.items()}})
    return onnx.load_model_from_string(buffer.getvalue())  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seq", type=int, nargs="+", default=[60, 100, 120, 250])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    os.environ["TVM_NUM_THREADS"] = str(args.threads)  # read when TVM's pool starts
    model = export()

    import onnxruntime as ort

    import tvmopt
    from tvmopt.timing import interleaved_medians

    ranges, buckets = {"batch": (1, 8), "sequence": (1, 512)}, {"sequence": BUCKETS}
    libraries = {
        "bucketed": tvmopt.compile(model, dims=ranges, buckets=buckets),
        "padded": tvmopt.compile(model, dims=ranges, buckets=buckets,
                                 bucket_padding="attention_mask"),
    }  # fmt: skip
    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    session = ort.InferenceSession(model.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])  # fmt: skip
    print(f"target {libraries['padded'].metadata.target}, {args.threads} thread(s), "
          f"load average {os.getloadavg()[0]:.1f}")  # fmt: skip
    calls = {}
    for seq in args.seq:
        static = tvmopt.compile(model, input_shapes={"input_ids": (1, seq),
                                                     "attention_mask": (1, seq)})  # fmt: skip
        feeds = {"input_ids": np.random.default_rng(seq).integers(1, 30522, (1, seq)),
                 "attention_mask": np.ones((1, seq), np.int64)}  # fmt: skip
        reference = session.run(None, feeds)[0]
        for name, compiled in {**libraries, "static": static}.items():
            error = float(np.abs(compiled.run(feeds)["hidden"] - reference).max())
            print(f"{seq} tokens, {name}: runs {compiled.function_for([(1, seq)] * 2)}, max abs "
                  f"error vs ONNX Runtime {error:.1e}")  # fmt: skip
            calls[seq, name] = partial(compiled.run, feeds)
        calls[seq, "onnxruntime"] = partial(session.run, None, feeds)
    medians = interleaved_medians(calls, args.rounds)
    print("| tokens | padded library | bucketed, unpadded | static library | ONNX Runtime |")
    print("|---:|---:|---:|---:|---:|")
    for seq in args.seq:
        static, peer = medians[seq, "static"], medians[seq, "onnxruntime"]
        cells = [f"{medians[seq, n] * 1e3:.2f} ms ({medians[seq, n] / static:.2f}x static, "
                 f"{medians[seq, n] / peer:.2f}x ORT)" for n in ("padded", "bucketed")]  # fmt: skip
        print(f"| {seq} | {' | '.join(cells)} | {static * 1e3:.2f} ms | {peer * 1e3:.2f} ms |")


if __name__ == "__main__":
    main()
