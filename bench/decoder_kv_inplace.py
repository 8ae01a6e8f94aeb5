"""Per-token decode latency of a GPT-2-small-config decoder, its KV cache as ONNX has it (each
step takes the past and returns past + new: a copy of the whole cache per token) against the
in-place cache (`kv_cache="in-place"`: one buffer of capacity 1024 per past input, the new rows
written at past_length, attention reading the first past + 1 rows where they lie).

Both are compiled from one ONNX file (tvmopt.benchmark.nets.gpt2, seeded weights) with batch 1,
seq 1..64, past 0..1023, per weight format (fp32, int4-weights-a8). One decode step (one new
token, a past of L) is timed for each L, every contender in one process, interleaved, medians
of repeated rounds: compare the ratios. Each step runs on tvm tensors and reads back the last
logits row, as generate does. Then greedy generation: both contracts' tokens must be equal.

    python bench/decoder_kv_inplace.py [--layers 12] [--past 128,512,1023] [--rounds 15]
        [--threads 1] [--weights fp32,int4-weights-a8] [--new-tokens 16] [--target JSON]
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

PROMPT = [464, 2068, 318, 257, 1332, 286, 262, 3303]
CAPACITY = 1024


def compiled_pair(model, scheme, target) -> dict:
    """{"<scheme> concat": model, "<scheme> in-place": model}."""
    import tvmopt

    dims = {"batch": (1, 1), "seq": (1, 64), "past": (0, CAPACITY - 1)}
    quantize = None if scheme == "fp32" else scheme
    pair = {}
    for mode in ("concat", "in-place"):
        start = time.perf_counter()
        pair[f"{scheme} {mode}"] = tvmopt.compile(model, target=target, dims=dims,
                                                  quantize=quantize, kv_cache=mode)  # fmt: skip
        print(f"{scheme} {mode}: compiled in {time.perf_counter() - start:.0f} s", flush=True)
    return pair


def step(compiled, config, past: int, seed: int = 0):
    """One decode step at a past of `past` tokens, on tensors made once."""
    from tvmopt.generate import _last_row
    from tvmopt.kv_cache import record_of

    rng = np.random.default_rng(seed)
    rows = CAPACITY if record_of(compiled.metadata) else past
    feeds = {"input_ids": rng.integers(0, config.vocab, (1, 1)).astype(np.int64),
             "past_length": np.array([past], np.int64)}  # fmt: skip
    for spec in compiled.inputs[1:]:
        if spec.name != "past_length":
            shape = (1, config.heads, rows, config.head_dim)
            feeds[spec.name] = rng.standard_normal(shape).astype(np.float32)
    tensors = [compiled.tensor(feeds[spec.name]) for spec in compiled.inputs]
    return lambda: _last_row(compiled.run_tensors(tensors)[0])


def latency_table(models: dict, config, pasts, rounds: int) -> None:
    from tvmopt.timing import interleaved_medians

    names = list(models)
    print("per-token ms (in-place / concat of the same weights)")
    print(f"{'past':>5} " + " ".join(f"{name:>26}" for name in names))
    for past in pasts:
        runs = {name: step(model, config, past) for name, model in models.items()}
        medians = {n: s * 1e3 for n, s in interleaved_medians(runs, rounds, 3).items()}
        cells = []
        for name in names:
            base = medians[name.replace("in-place", "concat")]
            cells.append(f"{medians[name]:8.2f} ({medians[name] / base:.2f})")
        print(f"{past:>5} " + " ".join(f"{cell:>26}" for cell in cells), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--past", default="128,512,1023")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--weights", default="fp32,int4-weights-a8")
    parser.add_argument("--new-tokens", type=int, default=16)
    parser.add_argument("--target", type=json.loads, default=None)
    args = parser.parse_args()
    os.environ["TVM_NUM_THREADS"] = str(args.threads)  # before TVM's pool starts
    from tvmopt.benchmark.nets import gpt2

    config = gpt2.GPT2Config(layers=args.layers)
    model = gpt2.export(gpt2.seeded(config))
    models = {}
    for scheme in args.weights.split(","):
        models |= compiled_pair(model, scheme, args.target)
    first = next(iter(models.values()))
    print(f"target {first.metadata.target}; {args.threads} threads; "
          f"load average {os.getloadavg()[0]:.1f}", flush=True)  # fmt: skip
    for scheme in args.weights.split(","):
        old, new = (models[f"{scheme} {mode}"].generate(PROMPT, args.new_tokens).tokens
                    for mode in ("concat", "in-place"))  # fmt: skip
        print(f"greedy {scheme}: in-place tokens {'==' if old == new else '!='} concat's {new}")
    latency_table(models, config, [int(p) for p in args.past.split(",")], args.rounds)
    print(f"load average {os.getloadavg()[0]:.1f}; uptime: {os.popen('uptime').read().strip()}")


if __name__ == "__main__":
    main()
