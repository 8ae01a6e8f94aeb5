"""Per-token decode latency of a GPT-2-small-config decoder with a KV cache: tvmopt vs ONNX
Runtime, fp32, on the same ONNX file.

The decoder (tvmopt.benchmark.nets.gpt2: vocab 50257, hidden 768, 12 heads, 12 layers by
default, 1024 positions, seeded weights) is exported once with dynamic batch, seq and past
axes and compiled once with symbolic dims (seq 1..64, past 0..1023). One decode step (one new
token, a past of L tokens) is timed for each L, both runtimes in one process, interleaved,
medians of repeated rounds: compare the ratios, not the times. tvmopt's step runs on tvm
tensors (the cache as generate keeps it) and reads back the last logits row; ONNX Runtime's
is `session.run` on numpy arrays, its presents returned as numpy.

A past of 1024 would put the new token at position 1024, past GPT-2's 1024-entry position
table: the longest past a GPT-2 step can take is 1023.

    python bench/decoder.py [--layers 12] [--past 128,512,1023] [--rounds 15] [--threads N]

--threads sets both runtimes' threads (TVM_NUM_THREADS, ONNX Runtime's intra-op threads);
the default is one per physical core, as tvmopt runs.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np


def export(layers: int):
    from tvmopt.benchmark.nets import gpt2

    config = gpt2.GPT2Config(layers=layers)
    return config, gpt2.export(gpt2.seeded(config))


def step_feeds(config, past: int, seed: int = 0) -> dict:
    from tvmopt.benchmark.nets import gpt2

    rng = np.random.default_rng(seed)
    feeds = {"input_ids": rng.integers(0, config.vocab, (1, 1)).astype(np.int64)}
    shape = (1, config.heads, past, config.head_dim)
    names = gpt2.input_names(config)[1:]
    return feeds | {name: rng.standard_normal(shape).astype(np.float32) for name in names}


def tvmopt_step(compiled, feeds: dict):
    """One decode step as generate runs it: tvm tensors in and out, the last logits read."""
    from tvmopt.generate import _last_row

    tensors = [compiled.tensor(feeds[spec.name]) for spec in compiled.inputs]
    return lambda: _last_row(compiled.run_tensors(tensors)[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--past", default="128,512,1023")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--threads", type=int, default=0, help="0: one per physical core")
    args = parser.parse_args()
    if args.threads:
        os.environ["TVM_NUM_THREADS"] = str(args.threads)  # before TVM's pool starts
    config, model = export(args.layers)

    import onnxruntime as ort

    import tvmopt
    from tvmopt.threads import physical_cores
    from tvmopt.timing import interleaved_medians

    start = time.perf_counter()
    compiled = tvmopt.compile(model, dims={"batch": (1, 1), "seq": (1, 64), "past": (0, 1023)})
    print(f"compiled in {time.perf_counter() - start:.0f} s; target {compiled.metadata.target}; "
          f"{args.threads or physical_cores()} threads")  # fmt: skip
    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads or physical_cores()  # as tvmopt runs
    session = ort.InferenceSession(model.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])  # fmt: skip
    print(f"{'past':>5} {'tvmopt ms':>10} {'ORT ms':>8} {'tvmopt/ORT':>10}  max |logit error|")
    for past in (int(length) for length in args.past.split(",")):
        feeds = step_feeds(config, past)
        step = tvmopt_step(compiled, feeds)
        error = float(np.abs(step() - session.run(["logits"], feeds)[0][0, -1]).max())
        runs = {"tvmopt": step, "ort": lambda f=feeds: session.run(None, f)}
        medians = {name: s * 1e3 for name, s in interleaved_medians(runs, args.rounds, 3).items()}
        ratio = medians["tvmopt"] / medians["ort"]
        print(f"{past:>5} {medians['tvmopt']:>10.2f} {medians['ort']:>8.2f} {ratio:>10.2f}  "
              f"{error:.2e}")  # fmt: skip


if __name__ == "__main__":
    main()
