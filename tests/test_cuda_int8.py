"""int8 on NVIDIA GPUs: calibrated on this CPU, GEMMs on dp4a (backends/cuda/rule_int8_gemm.py).

Without a GPU: the kernels built for CUDA (int8 activations, `signed`) compute what the CPU's
uint8 ones do, here on the CPU; the bench models compile to sm_90 code whose int8 GEMMs call
dp4a, down to the PTX instruction. With a GPU (marker `cuda`): outputs match our CPU's int8 and
stay as close to ONNX Runtime's fp32 as the bench asks of int8."""

from __future__ import annotations

import re
import shutil

import numpy as np
import onnx
import pytest
from tvm import s_tir

import tvmopt
import tvmopt.quantization
from tvmopt._tvm import tvm
from tvmopt.backends.cuda import enable_codegen
from tvmopt.backends.cuda.fatbin import device_code
from tvmopt.benchmark.contenders import INT8_MIN_COSINE
from tvmopt.benchmark.models import DEFAULT_SUITE, SUITE, export
from tvmopt.errors import OptionError
from tvmopt.frontend import onnx as onnx_frontend
from tvmopt.inputs import random_inputs

from .helpers import gpu_present, inverted_residual_cnn, ort_outputs, residual_cnn

SM_90 = {"kind": "cuda", "arch": "sm_90"}
needs_nvcc = pytest.mark.skipif(shutil.which("nvcc") is None, reason="needs the CUDA toolkit")
needs_gpu = pytest.mark.skipif(not gpu_present(), reason="needs an NVIDIA GPU")
GPU_VS_CPU_TOLERANCE = 2e-2  # of the output's peak: a requantization may round the other way


def _calibration(model, count=8):
    specs, _ = onnx_frontend.signature(onnx_frontend.prepare(model, None))
    return [random_inputs(specs, seed=10 + i) for i in range(count)]


@pytest.fixture(scope="module")
def bench_models(tmp_path_factory):
    cache_dir = tmp_path_factory.mktemp("bench-models")
    return {name: onnx.load(export(SUITE[name], cache_dir)) for name in DEFAULT_SUITE}


@pytest.mark.parametrize("build", [residual_cnn, inverted_residual_cnn])
def test_signed_kernels_compute_what_the_uint8_ones_do(build, monkeypatch):
    """The CUDA build's int8 layers, built here for the CPU: the same outputs, bit for bit (the
    same int32 sums, shifted by 128 and corrected back)."""
    from tvmopt.backends.llvm import LLVMBackend, int8_kernels
    from tvmopt.passes.quantize.spec import QuantizeConfig

    model = build()
    calib = _calibration(model)
    # 8-bit weights on both (AVX2 would give the uint8 build 7-bit ones by default)
    options = {"quantize": "int8", "calib": calib, "quantize_config": QuantizeConfig(weight_bits=8)}
    uint8 = tvmopt.compile(model, **options)
    monkeypatch.setattr(LLVMBackend, "int8_kernels", lambda self: int8_kernels(signed=True))
    signed = tvmopt.compile(model, **options)
    for feeds in calib[:3]:
        np.testing.assert_array_equal(signed.run(feeds)["y"], uint8.run(feeds)["y"])


def cuda_source(compiled) -> str:
    """The CUDA C that TVM generated for a compiled model's kernels."""
    pending = [compiled._module.mod]
    while pending:
        module = pending.pop()
        if module.kind == "cuda":
            return module.inspect_source("cuda")
        pending.extend(module.imports)
    raise AssertionError("no CUDA module in the library")


def gemm_kernels(source: str) -> dict[str, str]:
    """Kernel name -> body, for the kernels of int8 layers with a GEMM (not depthwise ones)."""
    bodies = re.split(r'extern "C" __global__ void ', source)[1:]
    named = (re.match(r"(?:__launch_bounds__\(\d+\) )?(\w+)\(", body) for body in bodies)
    kernels = {m.group(1): body for m, body in zip(named, bodies, strict=True) if "{" in body}
    return {name: body for name, body in kernels.items()
            if re.search(r"int8_(conv2d|matmul)", name)}  # fmt: skip


@needs_nvcc
# slow: the five bench models through nvcc took 2.5-3.3 min of the default suite (Zen 3)
@pytest.mark.slow
@pytest.mark.parametrize("name", DEFAULT_SUITE)
def test_int8_bench_models_compile_to_dp4a_for_sm_90(bench_models, tmp_path, name):
    model = bench_models[name]
    compiled = tvmopt.compile(model, target=SM_90, quantize="int8", calib=_calibration(model, 2))
    compiled.export(tmp_path / "m.so")
    assert device_code(tmp_path / "m.so") == [("sass", "sm_90")]
    kernels = gemm_kernels(cuda_source(compiled))
    plain = [kernel for kernel, body in kernels.items() if "__dp4a(" not in body]
    # a classifier over one row is a GEMV: dlight's GEMV rule takes it, byte by byte
    assert kernels and all(re.fullmatch(r"(fused_)?int8_matmul\w*_kernel", k) for k in plain)


@needs_nvcc
def test_dp4a_survives_to_the_ptx(demo_model, tmp_path):
    from tvm.support import nvcc

    enable_codegen()
    compiled = tvmopt.compile(demo_model, target=SM_90, quantize="int8",
                              calib=_calibration(demo_model, 2))  # fmt: skip
    with tvm.target.Target(SM_90):  # where TVM's nvcc wrapper reads the architecture from
        ptx = nvcc.compile_cuda(cuda_source(compiled), target_format="ptx", compiler="nvcc")
    assert re.search(rb"dp4a\.s32\.s32", ptx)


@pytest.mark.cuda
@needs_gpu
@pytest.mark.parametrize("name", DEFAULT_SUITE)
def test_int8_on_the_gpu_matches_int8_on_the_cpu_and_onnx_runtime(bench_models, name):
    model = bench_models[name]
    calib = _calibration(model)
    gpu = tvmopt.compile(model, target="cuda", quantize="int8", calib=calib)
    cpu = tvmopt.compile(model, quantize="int8", calib=calib)
    feeds = random_inputs(gpu.inputs, seed=1)
    on_gpu, on_cpu = gpu.run(feeds), cpu.run(feeds)
    for output, expected in ort_outputs(model, feeds).items():
        peak = np.abs(on_cpu[output]).max()
        assert np.abs(on_gpu[output] - on_cpu[output]).max() <= GPU_VS_CPU_TOLERANCE * peak
        got, want = on_gpu[output].ravel(), expected.ravel()
        assert got @ want / (np.linalg.norm(got) * np.linalg.norm(want)) >= INT8_MIN_COSINE


@needs_nvcc
def test_a_qdq_model_runs_its_own_qparams_on_dp4a(tmp_path):
    from .helpers import quantize_with_ort

    compiled = tvmopt.compile(quantize_with_ort(tmp_path, "QDQ", "QUInt8"), target=SM_90)
    kernels = gemm_kernels(cuda_source(compiled))
    assert any("__dp4a(" in body for name, body in kernels.items() if "conv2d" in name)


def test_vta_recipe_for_cuda_is_a_clear_error(demo_model):
    with pytest.raises(OptionError, match="for cuda use quantize='int8'"):
        tvmopt.compile(demo_model, target=SM_90, quantize="vta", calib=_calibration(demo_model))


def test_int8_gemms_to_tune_start_from_the_dp4a_schedule(demo_model):
    """`tvmopt tune --target cuda --quantize int8` searches the int8 GEMMs too, measuring our
    dp4a schedule first (a record slower than it is never applied)."""
    from tvmopt.api import prepare
    from tvmopt.autotune.tasks import extract_tasks

    prepared = prepare(demo_model, target=SM_90, quantize="int8",
                       calib=_calibration(demo_model, 2))  # fmt: skip
    int8 = [task for task in extract_tasks(prepared) if task.rule.__name__ == "Int8Gemm"]
    assert len(int8) == 2  # the demo's two convs (its classifier is a GEMV)
    for task in int8:
        schedule = prepared.backend.untuned_schedule(task.rule, task.mod)
        assert any(i.kind.name == "Tensorize" for i in schedule.trace.insts)
        replayed = s_tir.Schedule(task.mod)  # as a database record is applied
        schedule.trace.apply_to_schedule(replayed, remove_postproc=False)
        tvm.ir.assert_structural_equal(replayed.mod, schedule.mod)
