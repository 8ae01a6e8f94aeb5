"""The `tvmopt` command line: a thin layer over the Python API, one file per command.

Every TvmoptError becomes one line on stderr and exit status 2; anything else is a bug and keeps
its traceback.
"""

from __future__ import annotations

import argparse
import sys

from ..errors import TvmoptError
from . import (
    bench_cmd,
    compile_cmd,
    config_cmd,
    db_cmd,
    demo_cmd,
    distill_cmd,
    generate_cmd,
    inspect_cmd,
    package_cmd,
    prune_cmd,
    quantize_report_cmd,
    rpc_cmd,
    run_cmd,
    tune_cmd,
    vta_report_cmd,
)

COMMANDS = (compile_cmd, run_cmd, inspect_cmd, quantize_report_cmd, tune_cmd, db_cmd, rpc_cmd,
            package_cmd, config_cmd, vta_report_cmd, bench_cmd, demo_cmd, prune_cmd,
            generate_cmd, distill_cmd)  # fmt: skip


class OneLineParser(argparse.ArgumentParser):
    """A usage error is one line and exit status 2, as every other bad input is: argparse's own
    prints the usage first."""

    def error(self, message: str):
        self.exit(2, f"tvmopt: error: {message} (see: {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="tvmopt", description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.register(subparsers)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args) or 0
    except TvmoptError as err:
        print(f"tvmopt: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("tvmopt: interrupted", file=sys.stderr)
        return 130
