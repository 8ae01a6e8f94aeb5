"""A bench model compiled with --target vta, next to the same model on this CPU.

    python bench/vta_model.py [resnet18] [--calib 8] [--repeat 20]

Compiles the suite model (seeded weights, exported once into bench/results/cache) for VTA and
for this CPU in VTA's int8 recipe (quantize="vta"), checks that both give identical bytes and
how close they stay to ONNX Runtime's float32, prints `tvmopt vta-report`'s table for one
inference, and times the CPU builds (VTA's recipe, tvmopt's own int8, float32) side by side.
Writes bench/results/vta/<model>_model.md.
"""

import argparse
from pathlib import Path

import numpy as np

import tvmopt
from tvmopt.backends.vta import runtime
from tvmopt.backends.vta.partition import PartitionReport
from tvmopt.backends.vta.report import report_table
from tvmopt.benchmark.models import SUITE, export

HERE = Path(__file__).parent
RESULTS = HERE / "results" / "vta"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", default="resnet18", choices=sorted(SUITE))
    parser.add_argument("--calib", type=int, default=8, help="calibration samples")
    parser.add_argument("--repeat", type=int, default=20, help="timed CPU runs per build")
    args = parser.parse_args()
    path = export(SUITE[args.model], HERE / "results" / "cache")
    rng = np.random.default_rng(0)
    shape = (1, 3, 224, 224)
    calib = [{"input": rng.standard_normal(shape).astype(np.float32)} for _ in range(args.calib)]
    feeds = {"input": rng.standard_normal(shape).astype(np.float32)}
    builds = {
        "vta": tvmopt.compile(path, target="vta", quantize="int8", calib=calib),
        "cpu, VTA's int8 recipe": tvmopt.compile(path, quantize="vta", calib=calib),
        "cpu, tvmopt int8": tvmopt.compile(path, quantize="int8", calib=calib),
        "cpu, float32": tvmopt.compile(path),
    }
    runtime.last_runs.clear()
    outputs = {name: next(iter(build.run(feeds).values())) for name, build in builds.items()}
    runs = list(runtime.last_runs)
    placement = PartitionReport.from_records(builds["vta"].metadata.extra["vta"]["layers"])
    table = report_table(placement, runs)
    lines = report(args, table, outputs, builds, feeds, path)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / f"{args.model}_model.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def report(args, table, outputs, builds, feeds, path) -> list[str]:
    import onnxruntime

    reference = onnxruntime.InferenceSession(str(path)).run(None, feeds)[0]
    vta = outputs["vta"]
    same = np.array_equal(vta, outputs["cpu, VTA's int8 recipe"])
    cosine = float((vta * reference).sum() / np.linalg.norm(vta) / np.linalg.norm(reference))
    lines = [
        f"# {args.model} compiled for VTA",
        "",
        f"`python bench/vta_model.py {args.model} --calib {args.calib} --repeat {args.repeat}`",
        "",
        f"- VTA build vs CPU build of VTA's recipe: {'identical bytes' if same else 'DIFFERENT'}",
        f"- VTA build vs ONNX Runtime float32: cosine {cosine:.5f}, top-1 "
        f"{'same' if vta.argmax() == reference.argmax() else 'different'}",
        "",
        "One inference, `tvmopt vta-report`:",
        "",
        "```",
        table,
        "```",
        "",
        "The same model on this CPU (median of the runs, 2 threads):",
        "",
        "| build | ms |",
        "|---|--:|",
    ]
    for name, build in builds.items():
        if name != "vta":  # its time is the simulator's wall time, not the accelerator's
            lines.append(f"| {name} | {build.benchmark(feeds, repeat=args.repeat).median_ms:.2f} |")
    return lines


if __name__ == "__main__":
    main()
