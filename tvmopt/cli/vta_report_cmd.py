"""tvmopt vta-report OUT.so [--inputs in.npz]: per layer, where it ran and VTA's counters."""

from __future__ import annotations


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "vta-report", help="per-layer VTA counters (cycles, utilization, bytes) of one inference"
    )
    parser.add_argument("library", help="a library compiled with --target vta")
    parser.add_argument("--inputs", help=".npz with one array per input name (default: random)")
    parser.set_defaults(handler=run)


def run(args) -> int:
    from ..api import load
    from ..backends.vta import KEY, runtime
    from ..backends.vta.partition import PartitionReport
    from ..backends.vta.report import report_table
    from ..errors import ArtifactError
    from ..inputs import random_inputs, read_npz

    model = load(args.library)
    if KEY not in model.metadata.extra:  # the layer placement a VTA build records
        raise ArtifactError(f"{args.library} was not compiled for VTA (--target vta)")
    inputs = read_npz(args.inputs) if args.inputs else random_inputs(model.inputs)
    runtime.last_runs.clear()
    model.run(inputs)
    placement = PartitionReport.from_records(model.metadata.extra[KEY]["layers"])
    print(report_table(placement, list(runtime.last_runs)))
    return 0
