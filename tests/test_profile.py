"""Where the time goes: `CompiledModel.profile` and `tvmopt run --profile --trace` time every
call of a run, and name each kernel's schedule rule, its rate against the ISA's measured peak and
the ONNX nodes it covers (tvmopt/profile.py)."""

from __future__ import annotations

import json

from tvmopt.cli import main


def test_profile_names_each_kernel_its_rule_and_rate(compiled_demo):
    profile = compiled_demo.profile(repeat=2)
    rules = {kernel.name: kernel.rule for kernel in profile.kernels}
    assert {"Conv2dNHWC", "Conv2dWinograd", "Matmul"} <= set(rules.values())
    assert all(rule is None for name, rule in rules.items() if name.startswith("vm.builtin."))
    convs = [k for k in profile.kernels if k.rule and k.rule.startswith("Conv2d")]
    assert convs and all(k.calls == 1 and k.gflops > 0.1 for k in convs)
    assert abs(sum(k.seconds for k in profile.kernels) - profile.seconds) < 1e-12
    table = profile.table()
    assert "Conv2dWinograd" in table and "all calls, per run" in table


def test_profile_names_each_kernels_onnx_nodes_and_its_share_of_the_peak(compiled_demo):
    profile = compiled_demo.profile(repeat=2)
    nodes = {kernel.rule: kernel.nodes for kernel in profile.kernels}
    assert set(nodes["Conv2dWinograd"]) == {"conv2", "relu2"}
    isa = compiled_demo.metadata.extra["cpu"]["isa"]
    assert profile.peak is not None and profile.peak.isa == isa
    winograd = next(kernel for kernel in profile.kernels if kernel.rule == "Conv2dWinograd")
    assert 0 < winograd.share_of_peak(profile.peak) < 1.5  # a measured peak, not a bound
    rows = profile.table().splitlines()
    row = next(line for line in rows if line.startswith(winograd.name))
    assert row.endswith(", ".join(winograd.nodes)) and "%" in row.split()[-3]
    assert rows[-1].startswith(f"peak: {profile.peak.gflops:.1f} GFLOP/s")


def test_run_profile_prints_the_table_and_writes_a_chrome_trace(tmp_path, demo_library, capsys):
    trace = tmp_path / "trace.json"
    assert main(["run", demo_library, "--repeat", "2", "--profile", "--trace", str(trace)]) == 0
    out = capsys.readouterr().out
    assert "GFLOP/s" in out and "Conv2dNHWC" in out and f"wrote {trace}" in out
    events = json.loads(trace.read_text())["traceEvents"]
    kernels = [e for e in events if e["cat"] == "kernel"]
    assert kernels and all(e["ph"] == "X" and e["dur"] > 0 for e in kernels)
    assert all(e["args"]["onnx_nodes"] for e in kernels)
    assert events == sorted(events, key=lambda e: e["ts"])


def test_trace_into_a_missing_directory_is_one_line(tmp_path, demo_library, capsys):
    trace = tmp_path / "nowhere" / "trace.json"
    assert main(["run", demo_library, "--repeat", "1", "--trace", str(trace)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"tvmopt: error: output directory does not exist: {trace.parent}"
