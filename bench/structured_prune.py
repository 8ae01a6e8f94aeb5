"""A MiniLM-sized encoder, dense vs structurally pruned (half the FFN neurons, a third of the
heads), compiled by tvmopt for the host and run by ONNX Runtime.

The encoder is tvmopt.benchmark.nets.bert's BertEncoder (hidden 384, 12 heads, FFN 1536, 6 layers
by default), exported with static shapes (batch 1, `--seq` tokens), pruned by
tvmopt.prune.structured.prune_structured(ffn=0.5, heads=1/3): FFN 1536 -> 768 and 12 -> 8 heads
per layer. The four contenders are timed in one process, interleaved, medians of repeated rounds:
compare the ratios, not the times. The weights are random: this measures speed, not accuracy
(a pruned model is fine-tuned before use).

    python bench/structured_prune.py [--layers 6] [--seq 128] [--prune 0.5,1/3 0.5,0.5]

Measured 2026-12-07 on the 2-core AMD EPYC Zen 4 build machine (target llvm, mcpu znver4,
AVX-512 + VNNI), shared with other jobs, 6 layers, seq 128, 25 rounds of 5 calls:

    tvmopt dense          ... filled in below
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from fractions import Fraction

import numpy as np
import onnx


def export(layers: int, seq: int) -> onnx.ModelProto:
    import torch

    from tvmopt.benchmark.models import to_onnx_bytes
    from tvmopt.benchmark.nets.bert import BertEncoder

    torch.manual_seed(0)
    module = BertEncoder(vocab=30522, hidden=384, layers=layers, heads=12, ffn=1536).eval()
    ids = torch.randint(1, 30522, (1, seq))
    return onnx.load_model_from_string(to_onnx_bytes(module, (ids,)))


def median_seconds(runs: dict, rounds: int, calls: int = 5) -> dict[str, float]:
    """Each round times every contender once, in turn, so that drifts in load hit all alike."""
    times = {name: [] for name in runs}
    for _ in range(rounds):
        for name, run in runs.items():
            start = time.perf_counter()
            for _ in range(calls):
                run()
            times[name].append((time.perf_counter() - start) / calls)
    return {name: statistics.median(values) for name, values in times.items()}


def ort_session(model: onnx.ModelProto, threads: int):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    return ort.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )


def fractions(text: str) -> tuple[float, float]:
    ffn, heads = (float(Fraction(part)) for part in text.split(","))  # "0.5,1/3"
    return ffn, heads


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=6)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--prune", type=fractions, nargs="+", default=[(0.5, 1 / 3), (0.5, 0.5)],
                        metavar="FFN,HEADS", help="fractions to prune, e.g. 0.5,1/3")  # fmt: skip
    parser.add_argument("--rounds", type=int, default=25)
    parser.add_argument("--threads", type=int, default=0, help="0: one per physical core")
    args = parser.parse_args()
    if args.threads:  # read by TVM's thread pool when it starts (tvmopt/threads.py keeps it)
        os.environ["TVM_NUM_THREADS"] = str(args.threads)

    import tvmopt
    from tvmopt.prune.structured import prune_structured
    from tvmopt.threads import physical_cores

    dense = export(args.layers, args.seq)
    models = {"dense": dense}
    for ffn, heads in args.prune:
        result = prune_structured(dense, ffn=ffn, heads=heads)
        units = {row["kind"]: row["after"] for row in result.rows}  # every layer is the same
        models[f"ffn {units['ffn']} heads {units['heads']}"] = result.model
    feeds = {"input": np.random.default_rng(0).integers(1, 30522, (1, args.seq))}
    runs = {}
    for name, model in models.items():
        compiled = tvmopt.compile(model)
        session = ort_session(model, args.threads or physical_cores())
        actual = next(iter(compiled.run(feeds).values()))
        error = np.abs(actual - session.run(None, feeds)[0]).max()
        print(f"{name}: target {compiled.metadata.target}, max abs error vs ORT {error:.2e}")
        runs[("tvmopt", name)] = lambda c=compiled: c.run(feeds)
        runs[("onnxruntime", name)] = lambda s=session: s.run(None, feeds)
    medians = median_seconds(runs, args.rounds)
    for (engine, name), seconds in medians.items():
        speedup = medians[(engine, "dense")] / seconds
        print(f"{engine:12} {name:22} {seconds * 1e3:8.2f} ms   x{speedup:.2f} of its dense speed")


if __name__ == "__main__":
    main()
