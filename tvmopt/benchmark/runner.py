"""Run a benchmark end to end: resolve models, bench each, write the report."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import InputError
from .case import BenchCase, case_from_onnx, case_from_suite
from .contenders import CONTENDERS
from .harness import bench_case
from .models import SUITE
from .report import write_report


def check_model_names(models) -> None:
    unknown = [name for name in models if name not in SUITE and not Path(name).is_file()]
    if unknown:
        known = ", ".join(SUITE)
        raise InputError(
            f"unknown bench model '{unknown[0]}'; suite models: {known}; or an .onnx path"
        )


def resolve_case(name: str, cache_dir: Path) -> BenchCase:
    """A suite model by name, or an ONNX file by path."""
    if name in SUITE:
        return case_from_suite(SUITE[name], cache_dir)
    return case_from_onnx(Path(name).stem, Path(name))


def run_bench(models, contenders, threads, repeat, warmup, out_dir, command, log=print) -> Path:
    """Bench every model with every contender; return the path of the markdown report."""
    os.environ["TVM_NUM_THREADS"] = str(threads)  # read when TVM's thread pool first starts
    check_model_names(models)  # fail on a bad name before spending minutes on the others
    results = []
    for name in models:
        case = resolve_case(name, Path(out_dir) / "cache")
        selected = [CONTENDERS[c]() for c in contenders]
        results += bench_case(case, selected, threads, repeat, warmup, log)
    return write_report(results, Path(out_dir), command)
