"""Where each model's time goes: tvmopt -O3 on this CPU, every kernel timed (Profile), the top
kernels and the share of each schedule rule, as markdown; each model's full table beside it.

    TVM_NUM_THREADS=2 python bench/top_kernels.py bench/results/extended/cache/densenet121.onnx \\
        --top 3 --tables bench/results/extended/profiles > bench/results/extended/kernels.md
"""

import argparse
from collections import Counter
from pathlib import Path

import tvmopt
from tvmopt.inputs import random_inputs


def profile_of(path: Path, repeat: int):
    compiled = tvmopt.compile(path)
    return compiled.profile(random_inputs(compiled.inputs, seed=0), repeat=repeat)


def top_rows(name: str, profile, top: int) -> list[str]:
    total = profile.seconds
    return [f"| {name} | `{k.name}` | {k.rule or 'vm'} | {100 * k.seconds / total:.1f}% | "
            f"{k.seconds * 1e3:.2f} | {'' if k.gflops is None else f'{k.gflops:.1f}'} |"
            for k in profile.kernels[:top]]  # fmt: skip


def rule_shares(profile) -> str:
    """Each rule's share of the run, largest first."""
    shares = Counter()
    for kernel in profile.kernels:
        shares[kernel.rule or "vm"] += kernel.seconds / profile.seconds
    return ", ".join(f"{rule} {100 * share:.0f}%" for rule, share in shares.most_common())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", type=Path, help=".onnx files")
    parser.add_argument("--top", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--tables", type=Path, help="a folder for each model's full table")
    args = parser.parse_args()
    rows, rules = [], []
    for path in args.models:
        profile = profile_of(path, args.repeat)
        rows += top_rows(path.stem, profile, args.top)
        rules.append(
            f"- {path.stem} ({profile.seconds * 1e3:.1f} ms a run): {rule_shares(profile)}"
        )
        if args.tables:
            args.tables.mkdir(parents=True, exist_ok=True)
            (args.tables / f"{path.stem}.txt").write_text(profile.table(40) + "\n")
    print("| model | kernel | rule | share | ms | GFLOP/s |\n|---|---|---|---|---|---|")
    print("\n".join(rows) + "\n\nShare of each schedule rule:\n\n" + "\n".join(rules))


if __name__ == "__main__":
    main()
