"""The CUDA backend. Without a GPU (CI): bench models compile to device code for the architecture
asked for, and every attempt to run one is a clear error. With a GPU (marker `cuda`): outputs
match ONNX Runtime in fp32 and fp16, with and without CUDA graphs."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

import tvmopt
from tvmopt.backends.cuda.fatbin import device_code
from tvmopt.benchmark.models import DEFAULT_SUITE, SUITE, export
from tvmopt.errors import TargetError
from tvmopt.inputs import random_inputs
from tvmopt.reference import FP32_TOLERANCE, max_relative_error

from .helpers import gpu_present, make_model, ort_outputs

pytestmark = pytest.mark.skipif(shutil.which("nvcc") is None, reason="needs the CUDA toolkit")
TVMOPT = [sys.executable, "-m", "tvmopt"]
FP16_TOLERANCE = 2e-2


needs_gpu = pytest.mark.skipif(not gpu_present(), reason="needs an NVIDIA GPU")
without_gpu = pytest.mark.skipif(gpu_present(), reason="checks the errors of a GPU-less machine")


def cli(*args, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([*TVMOPT, *map(str, args)], capture_output=True, text=True, cwd=cwd)


@pytest.fixture(scope="module")
def bench_models(tmp_path_factory):
    """The bench suite's ONNX files, exported once from their seeded PyTorch definitions."""
    cache_dir = tmp_path_factory.mktemp("bench-models")
    return {name: export(SUITE[name], cache_dir) for name in DEFAULT_SUITE}


# slow: the five bench models through nvcc took 2.5-3.3 min of the default suite (Zen 3)
@pytest.mark.slow
@pytest.mark.parametrize("name", DEFAULT_SUITE)
def test_bench_models_compile_to_device_code_for_sm_90(bench_models, tmp_path, name):
    library = tmp_path / f"{name}.so"
    result = cli("compile", bench_models[name], "-o", library, "--target", "cuda", "--arch",
                 "sm_90")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert device_code(library) == [("sass", "sm_90")]
    assert tvmopt.artifact.read_metadata(library).target["arch"] == "sm_90"


def test_device_code_is_for_the_architecture_asked_for(demo_model, tmp_path):
    for arch in ("sm_80", "sm_89"):
        compiled = tvmopt.compile(demo_model, target={"kind": "cuda", "arch": arch})
        compiled.export(tmp_path / f"{arch}.so")
        assert device_code(tmp_path / f"{arch}.so") == [("sass", arch)]
    assert device_code(tmp_path / "sm_80.so") != device_code(tmp_path / "sm_89.so")


def test_the_host_side_runs_on_any_cpu_of_the_architecture_unless_given(demo_model):
    compiled = tvmopt.compile(demo_model, target={"kind": "cuda", "arch": "sm_90"})
    assert compiled.metadata.target["host"]["mcpu"] == "x86-64-v2"  # built here, run anywhere
    host = {"kind": "llvm", "mcpu": "skylake-avx512"}
    given = tvmopt.compile(demo_model, target={"kind": "cuda", "arch": "sm_90", "host": host})
    assert given.metadata.target["host"]["mcpu"] == "skylake-avx512"
    assert given.metadata.target["host"]["mtriple"].startswith("x86_64")


def test_fp16_computes_convs_in_float16_and_keeps_float32_io(demo_model, tmp_path):
    dump = tmp_path / "ir"
    compiled = tvmopt.compile(demo_model, target={"kind": "cuda", "arch": "sm_90"},
                              precision="fp16", dump_ir=dump)  # fmt: skip
    files = sorted(dump.iterdir())
    at = next(i for i, p in enumerate(files) if p.name.endswith("_ToMixedPrecision.py"))
    converted, folded = files[at].read_text(), files[at + 1].read_text()
    assert "R.nn.conv2d(" in converted and 'dtype="float16"' in converted
    assert "R.astype(metadata" in converted and "R.astype(metadata" not in folded  # fp16 weights
    assert [spec.dtype for spec in (*compiled.inputs, *compiled.outputs)] == ["float32"] * 2


def kernel_calls(compiled) -> dict[str, list[str]]:
    """The kernels each VM function calls, from the executable's listing (TVM's builtins aside)."""
    text = compiled._module.as_text()
    packed = set(re.findall(r"^@(\S+) packed_func;", text, re.MULTILINE))
    calls, function = {}, None
    for line in text.splitlines():
        if header := re.match(r"^@(\S+):$", line):
            function = calls.setdefault(header.group(1), [])
        elif (call := re.match(r"^\s+call\s+(\S+)\s", line)) and call.group(1) in packed:
            if not call.group(1).startswith("vm.builtin."):
                function.append(call.group(1))
    return calls


def test_cuda_graph_captures_the_kernels_between_the_first_and_the_last(bench_models):
    import onnx

    model = onnx.load(bench_models["resnet18"])
    target = {"kind": "cuda", "arch": "sm_90"}
    plain = kernel_calls(tvmopt.compile(model, target=target))
    compiled = tvmopt.compile(model, target=target, cuda_graph=True)
    captured = kernel_calls(compiled)
    assert list(plain) == ["main"]  # one launch per kernel
    # the first kernel reads the inputs, the last writes the outputs: both stay outside
    assert captured["main"] == [plain["main"][0], plain["main"][-1]]
    assert captured["main_cuda_graph_capture"] == plain["main"][1:-1]
    kernels = len(plain["main"])
    assert compiled.metadata.extra["cuda_graph"] == {
        "kernels": kernels,
        "captured": kernels - 2,
        "graphs": 1,
    }


def test_compile_says_what_the_cuda_graph_holds(demo_path, tmp_path):
    library = tmp_path / "graph.so"
    result = cli("compile", demo_path, "-o", library, "--target", "cuda", "--arch", "sm_90",
                 "--cuda-graph")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "cuda graph: 4 of 6 kernel launches captured (1 graph;" in result.stdout
    assert tvmopt.artifact.read_metadata(library).extra["cuda_graph"]["captured"] == 4


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--cuda-graph"], "cuda_graph is for CUDA targets"),
        (["--target", "cuda", "--arch", "sm_9x"], "unknown CUDA architecture 'sm_9x'"),
        (["--target", "llvm", "--arch", "sm_90"], "--arch is for --target cuda"),
        (["--precision", "fp16"], "precision 'fp16' is for CUDA targets"),
        (["--target", '{"kind": "cuda", "arch": "sm_50"}'], "this nvcc knows: sm_75"),
    ],
)
def test_bad_cuda_options_are_one_line_errors(demo_path, tmp_path, args, fragment):
    result = cli("compile", demo_path, "-o", tmp_path / "m.so", *args)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert fragment in result.stderr and not (tmp_path / "m.so").exists()


@without_gpu
def test_cuda_without_arch_needs_a_gpu_to_detect_it(demo_path, tmp_path):
    result = cli("compile", demo_path, "-o", tmp_path / "m.so", "--target", "cuda")
    assert result.returncode == 2
    assert "no NVIDIA GPU here to detect the CUDA architecture from" in result.stderr


@without_gpu
def test_running_a_cuda_library_without_a_gpu_is_a_clear_error(demo_model, tmp_path):
    library = tmp_path / "demo.so"
    tvmopt.compile(demo_model, target={"kind": "cuda", "arch": "sm_90"}).export(library)
    model = tvmopt.load(library)  # loading (to read it) works; running needs the GPU
    assert model.metadata.target["arch"] == "sm_90"
    with pytest.raises(TargetError, match="runs on an NVIDIA GPU, and there is no NVIDIA driver"):
        model.run(random_inputs(model.inputs))
    result = cli("run", library)
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "no NVIDIA driver here" in result.stderr


def gpu_matches_ort(model, precision, tolerance):
    compiled = tvmopt.compile(model, target="cuda", precision=precision)
    feeds = random_inputs(compiled.inputs, seed=1)
    actual = compiled.run(feeds)
    for name, expected in ort_outputs(model, feeds).items():
        assert max_relative_error(actual[name], expected) <= tolerance, name
    assert compiled.benchmark(feeds, repeat=3).median_ms > 0


@pytest.mark.cuda
@needs_gpu
@pytest.mark.parametrize(
    "precision, tolerance", [("fp32", FP32_TOLERANCE), ("fp16", FP16_TOLERANCE)]
)
def test_demo_on_the_gpu_matches_onnx_runtime(demo_model, precision, tolerance):
    gpu_matches_ort(demo_model, precision, tolerance)


@pytest.mark.cuda
@needs_gpu
@pytest.mark.parametrize("name", DEFAULT_SUITE)
@pytest.mark.parametrize(
    "precision, tolerance", [("fp32", FP32_TOLERANCE), ("fp16", FP16_TOLERANCE)]
)
def test_bench_models_on_the_gpu_match_onnx_runtime(bench_models, name, precision, tolerance):
    import onnx

    gpu_matches_ort(onnx.load(bench_models[name]), precision, tolerance)


@pytest.mark.cuda
@needs_gpu
@pytest.mark.parametrize("name", ["resnet18", "bert_base"])
def test_cuda_graph_replays_match_onnx_runtime_for_new_inputs(bench_models, name):
    import onnx

    model = onnx.load(bench_models[name])
    compiled = tvmopt.compile(model, target="cuda", cuda_graph=True)
    plain = tvmopt.compile(model, target="cuda")
    for seed in (1, 2, 3):  # the first run captures, the others replay
        feeds = random_inputs(compiled.inputs, seed=seed)
        actual, expected = compiled.run(feeds), plain.run(feeds)
        for output, reference in ort_outputs(model, feeds).items():
            np.testing.assert_array_equal(actual[output], expected[output])
            assert max_relative_error(actual[output], reference) <= FP32_TOLERANCE, output


@pytest.mark.cuda
@needs_gpu
def test_gather_and_argmax_on_the_gpu(tmp_path):
    from onnx import TensorProto, helper

    model = make_model(
        [helper.make_node("Gather", ["table", "ids"], ["rows"]),
         helper.make_node("ArgMax", ["rows"], ["best"], axis=1, keepdims=0)],
        [("ids", TensorProto.INT64, (3,))], [("best", TensorProto.INT64, (3,))],
        initializers={"table": np.arange(20, dtype=np.float32).reshape(5, 4) % 3},
    )  # fmt: skip
    gpu_matches_ort(model, "fp32", 0)


@without_gpu
def test_tuning_for_cuda_without_a_gpu_leaves_no_database(demo_path, tmp_path):
    cuda = '{"kind": "cuda", "arch": "sm_90"}'
    result = cli("tune", demo_path, "--db", tmp_path / "db", "--trials", 4, "--target", cuda)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "tuning for cuda measures candidates on a GPU here, and there is none" in result.stderr
    assert not (tmp_path / "db").exists()


def test_tuning_for_cuda_over_rpc_is_refused(demo_path, tmp_path):
    cuda = '{"kind": "cuda", "arch": "sm_90"}'
    result = cli("tune", demo_path, "--db", tmp_path / "db", "--trials", 4, "--target", cuda,
                 "--rpc", "127.0.0.1:9190")  # fmt: skip
    assert result.returncode == 2 and "tuning for cuda over RPC is not implemented" in result.stderr
    assert not (tmp_path / "db").exists()


def test_cuda_kernels_to_tune_are_the_gemms_dlight_schedules(demo_model):
    from tvmopt.api import prepare
    from tvmopt.autotune.tasks import extract_tasks

    prepared = prepare(demo_model, target={"kind": "cuda", "arch": "sm_90"})
    tasks = extract_tasks(prepared)
    assert tasks and all(task.rule.__name__ in ("Matmul", "GEMV") for task in tasks)
    assert all("conv2d" in task.name or "matmul" in task.name for task in tasks)
    for task in tasks:  # the untuned schedule measured first is dlight's
        assert prepared.backend.untuned_schedule(task.rule, task.mod) is not None


@pytest.mark.cuda
@pytest.mark.tuning
@needs_gpu
def test_tuning_on_the_gpu_then_compiling_with_the_database(demo_model, demo_path, tmp_path):
    db = tmp_path / "db"
    result = cli("tune", demo_path, "--db", db, "--trials", 32, "--target", "cuda")
    assert result.returncode == 0, result.stderr
    assert (db / "untuned.jsonl").read_text().count("\n") >= 1  # dlight's time per kernel
    compiled = tvmopt.compile(demo_model, target="cuda", db=db)
    feeds = random_inputs(compiled.inputs, seed=1)
    for name, expected in ort_outputs(demo_model, feeds).items():
        assert max_relative_error(compiled.run(feeds)[name], expected) <= FP32_TOLERANCE
