"""tvmopt db show DIR | tvmopt db merge A B... -o C"""

from __future__ import annotations

import json


def register(subparsers) -> None:
    parser = subparsers.add_parser("db", help="inspect or merge tuning databases")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    show = actions.add_parser("show", help="tasks, trials and best latency per target")
    show.add_argument("db", metavar="DIR")
    show.set_defaults(handler=run_show)
    merge = actions.add_parser("merge", help="the union of several databases, into a new one")
    merge.add_argument("sources", nargs="+", metavar="DIR")
    merge.add_argument("-o", "--output", required=True, metavar="DIR")
    merge.set_defaults(handler=run_merge)


def run_show(args) -> int:
    from ..autotune.files import summarize

    rows = summarize(args.db)
    if not rows:
        print(f"{args.db}: no trials yet")
    for target in dict.fromkeys(row.target for row in rows):
        print(f"target {_target_text(target)}")
        print(f"  {'kernel':<52} {'trials':>6} {'failed':>6} {'best us':>9}")
        for row in (r for r in rows if r.target == target):
            best = "-" if row.best_s is None else f"{row.best_s * 1e6:.1f}"
            print(f"  {row.name[:52]:<52} {row.trials:>6} {row.failed:>6} {best:>9}")
    return 0


def _target_text(key: str) -> str:
    return " ".join(f"{k}={v}" for k, v in json.loads(key).items())


def run_merge(args) -> int:
    from ..autotune.files import merge

    workloads, records = merge(args.sources, args.output)
    print(f"wrote {args.output}: {workloads} kernels, {records} records")
    return 0
