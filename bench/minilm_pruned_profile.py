"""Where the pruned MiniLM's time goes: all-MiniLM-L6-v2 dense and pruned (FFN 1536 -> 768,
heads 12 -> 8; weights do not change the time, so plain l2 pruning) compiled by tvmopt, timed in
one interleaved run, then profiled kernel by kernel; per schedule rule: time and FLOPs per run,
dense against pruned. Answers why the pruned model is not 2x faster.

    PYTHONPATH=. python bench/minilm_pruned_profile.py [--seq 64] [--threads 1] [--rounds 20]
"""

from __future__ import annotations

import argparse
import os
from collections import defaultdict

import numpy as np


def by_rule(profile) -> dict:
    """{rule: [seconds, GFLOP]} per run; the VM's own builtins under "vm"."""
    rows = defaultdict(lambda: [0.0, 0.0])
    for kernel in profile.kernels:
        row = rows[kernel.rule or "vm"]
        row[0] += kernel.seconds
        row[1] += (kernel.flops or 0) / 1e9
    return rows


def interleaved_rules(compiled: dict, feed: dict, rounds: int, repeat: int) -> dict:
    """{model: {rule: [seconds, GFLOP]}}: profiles taken in turns, median seconds per rule over
    the rounds (a loaded host's drift hits both models alike)."""
    taken = {name: [] for name in compiled}
    for _ in range(rounds):
        for name, model in compiled.items():
            taken[name].append(by_rule(model.profile(feed, repeat=repeat)))
    return {name: {rule: [float(np.median([t[rule][0] for t in runs])), runs[0][rule][1]]
                   for rule in runs[0]}
            for name, runs in taken.items()}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seq", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=5, help="profiled runs per model a round")
    parser.add_argument("--profile-rounds", type=int, default=8)
    args = parser.parse_args()
    os.environ["TVM_NUM_THREADS"] = str(args.threads)

    import tvmopt
    from tvmopt.benchmark.nets.minilm_real import export
    from tvmopt.pruning.structured import prune_structured
    from tvmopt.timing import interleaved_medians

    dense = export(args.seq)
    pruned = prune_structured(dense, ffn=0.5, heads=1 / 3).model
    shapes = {name: (1, args.seq) for name in ("input_ids", "attention_mask")}
    feed = {"input_ids": np.random.default_rng(0).integers(1000, 20000, (1, args.seq)),
            "attention_mask": np.ones((1, args.seq), np.int64)}  # fmt: skip
    compiled = {"dense": tvmopt.compile(dense, input_shapes=shapes),
                "pruned": tvmopt.compile(pruned, input_shapes=shapes)}  # fmt: skip
    print(f"target: {compiled['dense'].metadata.target}, threads {args.threads}")
    medians = interleaved_medians({k: (lambda c=c: c.run(feed)) for k, c in compiled.items()},
                                  args.rounds)  # fmt: skip
    print(f"interleaved medians: dense {medians['dense'] * 1e3:.2f} ms, pruned "
          f"{medians['pruned'] * 1e3:.2f} ms: x{medians['dense'] / medians['pruned']:.2f}")
    rules = interleaved_rules(compiled, feed, args.profile_rounds, args.repeat)
    print(f"{'rule':<24} {'dense us':>9} {'pruned us':>9} {'time x':>7} "
          f"{'dense GF':>9} {'pruned GF':>9} {'FLOP x':>7}")
    for rule in sorted(rules["dense"], key=lambda r: -rules["dense"][r][0]):
        (ds, dg), (ps, pg) = rules["dense"][rule], rules["pruned"].get(rule, (0.0, 0.0))
        print(f"{rule[:24]:<24} {ds * 1e6:9.1f} {ps * 1e6:9.1f} {ds / ps if ps else 0:7.2f} "
              f"{dg:9.4f} {pg:9.4f} {dg / pg if pg else 0:7.2f}")
    total = {k: [sum(v[i] for v in r.values()) for i in (0, 1)] for k, r in rules.items()}
    print(f"{'all':<24} {total['dense'][0] * 1e6:9.1f} {total['pruned'][0] * 1e6:9.1f} "
          f"{total['dense'][0] / total['pruned'][0]:7.2f} {total['dense'][1]:9.4f} "
          f"{total['pruned'][1]:9.4f} {total['dense'][1] / total['pruned'][1]:7.2f}")


if __name__ == "__main__":
    main()
