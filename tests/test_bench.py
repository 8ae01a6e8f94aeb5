"""The bench harness on a tiny model: what it checks, how it alternates, what it writes.
Timings themselves are not asserted."""

import csv

import numpy as np
import pytest
from onnx import TensorProto, helper

from tvmopt.benchmark import harness
from tvmopt.benchmark.case import case_from_onnx
from tvmopt.benchmark.contenders import Contender, OnnxRuntime, Prepared
from tvmopt.benchmark.flops import count_flops
from tvmopt.benchmark.harness import alternate, bench_case
from tvmopt.benchmark.runner import run_bench
from tvmopt.cli import main

from .helpers import make_model


class WrongAnswers(Contender):
    name = "wrong"

    def prepare(self, case, threads):
        return Prepared(lambda: [np.ones_like(r) * 7 for r in case.reference], 0.0)


def gemm_model(tmp_path):
    import onnx

    model = make_model(
        [helper.make_node("Gemm", ["x", "w"], ["y"], transB=1)],
        [("x", TensorProto.FLOAT, [2, 8])],
        [("y", TensorProto.FLOAT, [2, 4])],
        initializers={"w": np.ones((4, 8), np.float32)},
    )
    path = tmp_path / "gemm.onnx"
    onnx.save(model, path)
    return model, path


def test_mismatching_contender_is_reported_failing_and_not_timed(tmp_path):
    _, path = gemm_model(tmp_path)
    case = case_from_onnx("gemm", path)
    results = bench_case(case, [OnnxRuntime(), WrongAnswers()], 1, 3, 0, log=lambda _: None)
    by_name = {r.contender: r for r in results}
    assert by_name["wrong"].status == "mismatch" and by_name["wrong"].latency is None
    assert by_name["onnxruntime"].status == "ok"
    assert len(by_name["onnxruntime"].latency.samples_ms) == 3


def test_alternate_rotates_who_goes_first(monkeypatch):
    calls = []

    def runner(name):
        return Prepared(lambda: calls.append(name), 0.0)

    monkeypatch.setattr(harness, "SETTLE_SECONDS", 0.0)
    monkeypatch.setattr(harness, "REWARM_SECONDS", 0.0)
    monkeypatch.setattr(harness, "BLOCK", 2)
    latencies = alternate({"a": runner("a"), "b": runner("b"), "c": runner("c")}, 3, 1)
    assert calls[:3] == ["a", "b", "c"]  # warm-up
    # round 1: blocks of 2 timed runs, each after an untimed one; round 2: the last run, rotated
    assert "".join(calls[3:]) == "aaabbbccc" + "bbccaa"
    assert all(len(lat.samples_ms) == 3 for lat in latencies.values())


def test_flops_of_conv_and_gemm(tmp_path):
    model, _ = gemm_model(tmp_path)
    assert count_flops(model) == 2 * 2 * 4 * 8
    conv = make_model(
        [helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1], group=2)],
        [("x", TensorProto.FLOAT, [1, 4, 5, 5])],
        [("y", TensorProto.FLOAT, [1, 6, 5, 5])],
        initializers={"w": np.ones((6, 2, 3, 3), np.float32)},
    )
    assert count_flops(conv) == 2 * (6 * 5 * 5) * (2 * 3 * 3)


def test_run_bench_writes_table_csv_plots_and_machine(tmp_path):
    report = run_bench(["tiny_mlp"], ["llvm", "vta", "onnxruntime", "torch"], 1, 2, 1, tmp_path,
                       "tvmopt bench tiny_mlp", log=lambda _: None)  # fmt: skip
    for name in ("results.md", "results.csv", "latency.png", "speedup.png", "machine.json"):
        assert (tmp_path / name).stat().st_size > 0
    rows = {row["contender"]: row for row in csv.DictReader(open(tmp_path / "results.csv"))}
    assert rows["llvm"]["status"] == "ok" and float(rows["llvm"]["median_ms"]) > 0
    assert rows["torch"]["status"] == "ok"
    assert rows["onnxruntime"]["speedup_vs_ort"] == "1.00"
    assert rows["vta"]["status"] == "unavailable" and rows["vta"]["median_ms"] == ""
    assert "| tiny_mlp | llvm | ok |" in report.read_text()


def test_cli_rejects_unknown_contender(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", "tiny_mlp", "--targets", "llvm,tpu"])
    assert exit_info.value.code == 2
    assert "unknown 'tpu'; choose from llvm," in capsys.readouterr().err


def test_cli_rejects_unknown_model(capsys, tmp_path):
    status = main(["bench", "no_such_net", "--output-dir", str(tmp_path)])
    err = capsys.readouterr().err.strip()
    assert status == 2 and err.startswith("tvmopt: error: unknown bench model 'no_such_net'")
    assert not list(tmp_path.iterdir())
