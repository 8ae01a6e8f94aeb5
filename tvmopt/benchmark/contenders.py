"""Contenders: our targets and the peers we measure against, each prepared from one BenchCase.

A contender says why it cannot run here (`unavailable`), or prepares a `Prepared` runner whose
outputs the harness checks against ONNX Runtime fp32 before timing anything.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..reference import FP32_TOLERANCE
from .case import BenchCase

# int8 outputs are judged by their cosine similarity to float32's (the error is reported too):
# a max-error bound fails an int8 model for a single outlier among a million values.
INT8_MIN_COSINE = 0.99
FP16_TOLERANCE = 2e-2  # float16 operands carry 11 bits: about 5e-4 per product, summed


@dataclass
class Prepared:
    run: Callable[[], list[np.ndarray]]  # runs on the case's feeds; outputs in graph order
    compile_seconds: float
    artifact_bytes: int | None = None


class Contender:
    name = ""
    kind = "target"  # or "peer"
    tolerance = FP32_TOLERANCE
    min_cosine: float | None = None  # set for int8 contenders

    def unavailable(self, case: BenchCase) -> str | None:
        return None

    def prepare(self, case: BenchCase, threads: int) -> Prepared:
        raise NotImplementedError


class NotYetContender(Contender):
    """A target tvmopt will have, listed so reports say plainly that it is missing."""

    def __init__(self, name: str, reason: str):
        self.name, self.reason = name, reason

    def unavailable(self, case):
        return self.reason


class TvmoptLLVM(Contender):
    """tvmopt on the host CPU at an opt level (`llvm` is the default -O3, `llvm-O0` no passes),
    or on this CPU for an ISA below its own (`llvm-avx2`: x86-64-v3 code, AVX2's 16 ymm
    registers, as on a Zen 3; an AVX-512 CPU runs it unchanged)."""

    def __init__(self, name: str = "llvm", opt_level: int = 3, target: str | None = None):
        self.name, self.opt_level, self.target = name, opt_level, target

    def unavailable(self, case):
        return None if self.target is None else _cannot_run(self.target)

    def prepare(self, case, threads):
        import tvmopt

        start = time.perf_counter()
        compiled = tvmopt.compile(case.onnx_path, **self.options(case))
        seconds = time.perf_counter() - start
        size = _exported_size(compiled)
        names = [spec.name for spec in compiled.outputs]
        return Prepared(lambda: [compiled.run(case.feeds)[n] for n in names], seconds, size)

    def options(self, case) -> dict:
        return {"opt_level": self.opt_level, "target": self.target}


class TvmoptDense(TvmoptLLVM):
    """tvmopt -O3 with the sparse kernels off (--sparse off): what pruning gains is read
    against it (`llvm` picks sparse kernels for pruned weights on its own)."""

    def __init__(self):
        super().__init__("llvm-dense")

    def options(self, case) -> dict:
        return {**super().options(case), "sparse": "off"}


class DeepSparseContender(Contender):
    """DeepSparse on the case's ONNX file, in its own Python (deepsparse_peer.py)."""

    name, kind = "deepsparse", "peer"

    def unavailable(self, case):
        from .deepsparse_peer import unavailable

        return unavailable()

    def prepare(self, case, threads):
        import onnx

        from .deepsparse_peer import DeepSparse

        start = time.perf_counter()
        batch = next(iter(case.feeds.values())).shape[0]
        engine = DeepSparse(onnx.load(case.onnx_path), batch=batch, cores=threads)
        return Prepared(lambda: engine.run(case.feeds), time.perf_counter() - start)


def _cannot_run(level: str) -> str | None:
    """Why this CPU cannot run code for the x86-64 `level`, or None."""
    from ..backends.cpu_features import X86_LEVELS, host_arch, host_features

    needs = dict(X86_LEVELS)[level]
    have = host_features() or frozenset()
    if host_arch() != "x86_64" or not all(feature in have for feature in needs):
        return f"this CPU cannot run {level} code"
    return None


def _exported_size(compiled) -> int:
    with tempfile.TemporaryDirectory() as workdir:
        path = Path(workdir) / "model.so"
        compiled.export(path)
        return path.stat().st_size


class OnnxRuntime(Contender):
    name, kind = "onnxruntime", "peer"

    def prepare(self, case, threads):
        start = time.perf_counter()
        session = _ort_session(case.onnx_path, threads)
        return Prepared(lambda: session.run(None, case.feeds), time.perf_counter() - start)


def _ort_session(path, threads: int):
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class OnnxRuntimeInt8(Contender):
    """ONNX Runtime's static int8 quantization (quantize_static, QDQ format), calibrated on the
    same samples as ours: per-channel int8 weights, uint8 activations (its advice for x86)."""

    name, kind, min_cosine = "onnxruntime-int8", "peer", INT8_MIN_COSINE

    def prepare(self, case, threads):
        from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

        start = time.perf_counter()
        with tempfile.TemporaryDirectory() as workdir, _quiet_root_logger():
            quantized = Path(workdir) / "int8.onnx"
            quantize_static(
                case.onnx_path, quantized, _CalibrationReader(case.calibration),
                quant_format=QuantFormat.QDQ, per_channel=True,
                activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
            )  # fmt: skip
            session = _ort_session(quantized, threads)
            size = quantized.stat().st_size
        seconds = time.perf_counter() - start
        return Prepared(lambda: session.run(None, case.feeds), seconds, size)


class _CalibrationReader:
    """ONNX Runtime's CalibrationDataReader protocol over a list of input dicts."""

    def __init__(self, samples):
        self.samples = iter(samples)

    def get_next(self):
        return next(self.samples, None)


class TvmoptInt8(TvmoptLLVM):
    """tvmopt -O3 with int8 quantization, calibrated on the case's calibration samples; with
    `weight_bits` 8, full-range weights where the target would take 7 (AVX2: vpmaddwd on
    int16 instead of vpmaddubsw)."""

    min_cosine = INT8_MIN_COSINE

    def __init__(self, name: str = "llvm-int8", target: str | None = None, weight_bits=None):
        super().__init__(name, target=target)
        self.weight_bits = weight_bits

    def options(self, case) -> dict:
        from ..passes.quantize.spec import QuantizeConfig

        config = QuantizeConfig(weight_bits=self.weight_bits)
        return {"quantize": "int8", "calib": case.calibration, "target": self.target,
                "quantize_config": config}  # fmt: skip


class TvmoptTuned(TvmoptLLVM):
    """tvmopt -O3 with the best records of a tuning database (`bench/tune.py` fills it; set
    TVMOPT_TUNING_DB to use another)."""

    def __init__(self):
        super().__init__("llvm-tuned")
        self.db = Path(os.environ.get("TVMOPT_TUNING_DB", "bench/results/tuning-db"))

    def unavailable(self, case):
        if not self.db.is_dir():
            return f"no tuning database at {self.db} (python bench/tune.py MODEL... fills it)"
        return None

    def options(self, case) -> dict:
        return {"db": self.db}


@contextmanager
def _quiet_root_logger():
    """The quantizer logs advice about its own pre-processing on the root logger every time."""
    logger = logging.getLogger()
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


class TorchEager(Contender):
    name, kind = "torch", "peer"

    def unavailable(self, case):
        return (
            None if case.torch_build else "needs a suite model (an ONNX file has no torch module)"
        )

    def prepare(self, case, threads):
        import torch

        torch.set_num_threads(threads)
        module, inputs = case.torch_build()
        start = time.perf_counter()
        module.eval()
        seconds = time.perf_counter() - start

        def run():
            with torch.inference_mode():
                out = module(*inputs)
            return [t.numpy() for t in (out if isinstance(out, tuple) else (out,))]

        return Prepared(run, seconds)


class TvmoptCUDA(TvmoptLLVM):
    """tvmopt on GPU 0 (architecture detected), fp32 or fp16 (float16 operands, float32 sums).
    Timed runs include copying inputs in and outputs out, as torch-cuda's do."""

    def __init__(self, precision: str = "fp32"):
        super().__init__("cuda" if precision == "fp32" else f"cuda-{precision}")
        self.precision = precision
        self.tolerance = FP32_TOLERANCE if precision == "fp32" else FP16_TOLERANCE

    def unavailable(self, case):
        return _no_gpu()

    def options(self, case) -> dict:
        return {"target": "cuda", "precision": self.precision}


class TvmoptCUDAGraph(TvmoptCUDA):
    """tvmopt fp32 on GPU 0, its kernels replayed as one CUDA graph (--cuda-graph)."""

    def __init__(self):
        super().__init__()
        self.name = "cuda-graph"

    def options(self, case) -> dict:
        return {**super().options(case), "cuda_graph": True}


class TvmoptCUDAInt8(TvmoptCUDA):
    """tvmopt int8 on GPU 0 (dp4a), calibrated on this CPU with the case's samples."""

    min_cosine = INT8_MIN_COSINE

    def __init__(self):
        super().__init__()
        self.name = "cuda-int8"

    def options(self, case) -> dict:
        return {**super().options(case), "quantize": "int8", "calib": case.calibration}


class TvmoptCUDATuned(TvmoptCUDA):
    """tvmopt on GPU 0 with the best records of a CUDA tuning database (TVMOPT_CUDA_TUNING_DB,
    default bench/results/tuning-db-cuda; `tvmopt tune --target cuda` fills it)."""

    def __init__(self):
        super().__init__()
        self.name = "cuda-tuned"
        self.db = Path(os.environ.get("TVMOPT_CUDA_TUNING_DB", "bench/results/tuning-db-cuda"))

    def unavailable(self, case):
        if not self.db.is_dir():
            return f"no CUDA tuning database at {self.db} (tvmopt tune --target cuda fills it)"
        return super().unavailable(case)

    def options(self, case) -> dict:
        return {**super().options(case), "db": self.db}


class TorchEagerCUDA(TorchEager):
    """PyTorch eager on GPU 0: inputs moved there once, outputs copied back every run. fp32 is
    strict float32 (no TF32 in cuDNN convs or cuBLAS GEMMs, PyTorch's default for convs), as
    tvmopt's fp32; fp16 is autocast: float16 convs and matmuls, as tvmopt's --precision fp16."""

    name = "torch-cuda"

    def __init__(self, precision: str = "fp32"):
        self.precision = precision
        if precision != "fp32":
            self.name = f"torch-cuda-{precision}"
            self.tolerance = FP16_TOLERANCE

    def unavailable(self, case):
        import torch

        if not torch.cuda.is_available():
            return f"torch {torch.__version__} has no usable CUDA device"
        return super().unavailable(case)

    def prepare(self, case, threads):
        import torch

        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
        module, inputs = case.torch_build()
        module = module.eval().cuda()
        inputs = [t.cuda() for t in inputs]
        fp16 = self.precision == "fp16"

        def run():
            with torch.inference_mode(), torch.autocast("cuda", torch.float16, enabled=fp16):
                out = module(*inputs)
            outs = out if isinstance(out, tuple) else (out,)
            return [t.float().cpu().numpy() for t in outs]

        return Prepared(run, 0.0)


def _no_gpu() -> str | None:
    if not shutil.which("nvidia-smi"):
        return "no NVIDIA GPU on this machine"
    from ..backends.cuda import gpu_missing

    return gpu_missing()


CONTENDERS: dict[str, Callable[[], Contender]] = {
    "llvm": TvmoptLLVM,
    "llvm-O0": lambda: TvmoptLLVM("llvm-O0", opt_level=0),
    "llvm-dense": TvmoptDense,
    "llvm-int8": TvmoptInt8,
    "llvm-avx2": lambda: TvmoptLLVM("llvm-avx2", target="x86-64-v3"),
    "llvm-int8-avx2": lambda: TvmoptInt8("llvm-int8-avx2", target="x86-64-v3"),
    "llvm-int8-avx2-w8": lambda: TvmoptInt8("llvm-int8-avx2-w8", "x86-64-v3", weight_bits=8),
    "llvm-sse4": lambda: TvmoptLLVM("llvm-sse4", target="x86-64-v2"),
    "llvm-int8-sse4": lambda: TvmoptInt8("llvm-int8-sse4", target="x86-64-v2"),
    "llvm-tuned": TvmoptTuned,
    "cuda": TvmoptCUDA,
    "cuda-fp16": lambda: TvmoptCUDA("fp16"),
    "cuda-graph": TvmoptCUDAGraph,
    "cuda-int8": TvmoptCUDAInt8,
    "cuda-tuned": TvmoptCUDATuned,
    "vta": lambda: NotYetContender(
        "vta", "simulated: wall time would be the simulator's; see python bench/vta_model.py"
    ),
    "onnxruntime": OnnxRuntime,
    "onnxruntime-int8": OnnxRuntimeInt8,
    "deepsparse": DeepSparseContender,
    "torch": TorchEager,
    "torch-cuda": TorchEagerCUDA,
    "torch-cuda-fp16": lambda: TorchEagerCUDA("fp16"),
}
TARGETS = [name for name, make in CONTENDERS.items() if make().kind == "target"]
PEERS = [name for name, make in CONTENDERS.items() if make().kind == "peer"]


def default_threads() -> int:
    return len(os.sched_getaffinity(0))
