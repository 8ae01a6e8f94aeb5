"""The `llm` bench suite (benchmark/llm_suite.py): a dynamic-axes encoder compiled once with
symbolic dims and buckets, once per length, checked against ONNX Runtime, timed interleaved and
written as a table; shown here on a 1-layer encoder at a length between its buckets."""

import csv

import pytest

from tvmopt.benchmark import llm_suite
from tvmopt.benchmark.models import SUITES
from tvmopt.cli import main


@pytest.mark.slow  # three compiles: about 21 s on the loaded 2-core host
def test_the_llm_suite_writes_every_length_and_contender_with_its_ratios(tmp_path):
    report = llm_suite.run_llm_suite(["tiny_encoder"], [23], threads=1, rounds=2,
                                     out_dir=tmp_path, command="test", log=lambda _: None,
                                     buckets={"sequence": [16]})  # fmt: skip
    with open(tmp_path / "results.csv") as stream:
        rows = list(csv.DictReader(stream))
    assert [(r["tokens"], r["contender"]) for r in rows] == [
        ("23", c) for c in ("dynamic", "static", "onnxruntime")
    ]
    for row in rows:
        assert float(row["median_ms"]) > 0
        if row["contender"] == "static":
            assert float(row["vs_static"]) == 1.0
        if row["contender"] != "onnxruntime":
            assert float(row["max_abs_error"]) <= llm_suite.TOLERANCE
    assert "| tiny_encoder | 23 | dynamic |" in report.read_text()


def test_a_wrong_output_stops_the_bench_before_timing(tmp_path, monkeypatch):
    monkeypatch.setattr(llm_suite, "TOLERANCE", -1.0)  # every output now counts as wrong
    with pytest.raises(AssertionError, match="tiny_encoder at 16 tokens"):
        llm_suite.run_llm_suite(["tiny_encoder"], [16], threads=1, rounds=1, out_dir=tmp_path,
                                command="test", log=lambda _: None, buckets={})  # fmt: skip
    assert not (tmp_path / "results.csv").exists()


def test_the_cli_names_the_llm_suite_and_rejects_an_unknown_encoder(capsys, tmp_path):
    assert SUITES["llm"] == ["minilm", "bert_base"]
    status = main(["bench", "gpt5", "--suite", "llm", "--output-dir", str(tmp_path)])
    assert status == 2
    assert "unknown llm bench model 'gpt5'" in capsys.readouterr().err
