"""The CUDA backend: kernels for an NVIDIA GPU, compiled with nvcc (with or without a GPU here),
scheduled by dlight's GPU rules and ours for int8; the host side is launch glue for a baseline
CPU of this architecture."""

from __future__ import annotations

import os

from ..._tvm import tvm
from ...errors import OptionError, TuneError
from ...passes.pipeline import FP16
from ..base import CPU_RECORD, Backend
from ..llvm import LLVMBackend, host_target, int8_kernels
from ..llvm.cpu import cpu_of
from . import pipeline, tuning
from .graph import Capture
from .target import EXAMPLE, cuda_target
from .toolchain import driver_present, enable_codegen, gpu_device, gpu_missing, runtime_loaded


class CUDABackend(Backend):
    name = "cuda"
    aliases = ("cuda",)  # the architecture of the GPU present
    example = EXAMPLE
    measure_device = "cuda"
    untuned_is_record = False  # dlight's schedules have no sampled decisions: kept as a time

    def __init__(self, target, options=None):
        super().__init__(target, options)
        self.capture = Capture() if self.options.cuda_graph else None

    @classmethod
    def named_target(cls, name: str) -> tvm.target.Target:
        return cuda_target()

    @classmethod
    def target_from_spec(cls, spec: dict) -> tvm.target.Target:
        return cuda_target(spec=spec)

    @classmethod
    def complete(cls, target: tvm.target.Target) -> tvm.target.Target:
        return target if target.host is not None else cuda_target(spec=dict(target.export()))

    @classmethod
    def with_arch(cls, spec: dict, arch: str) -> dict:
        return {**spec, "arch": arch}

    def check_options(self, options) -> None:
        """fp16 and CUDA graphs are this backend's; both are fine here."""

    def recipe(self, quantize):
        if quantize == "vta":
            raise OptionError("quantize='vta' (VTA's recipe) runs on CPU and VTA targets; "
                              "for cuda use quantize='int8'")  # fmt: skip
        return quantize

    def calibration_backend(self) -> Backend:
        """This CPU: a model is calibrated where it is compiled, with or without a GPU."""
        return LLVMBackend(host_target())

    def int8_kernels(self):
        return int8_kernels(signed=True)  # dp4a multiplies int8 by int8

    def graph_passes(self, opt_level: int) -> list:
        return pipeline.graph_passes(opt_level)

    def graph_after_quantize(self) -> list:
        return pipeline.AFTER_QUANTIZE

    def precision_passes(self) -> list:
        return [(name, make()) for name, make in FP16] if self.options.precision == "fp16" else []

    def lowering_passes(self, opt_level: int, database=None) -> list:
        return pipeline.lowering_passes(opt_level, self.target, database, self.capture)

    def build(self, mod, graph, opt_level, database=None):
        enable_codegen()
        with self.target:  # TVM's nvcc callback reads the architecture from the current target
            return super().build(mod, graph, opt_level, database)

    def record(self) -> dict:
        """The CPU features of the host code (launch glue, for a baseline CPU), and how many
        kernel launches the CUDA graphs hold, when captured."""
        host = {CPU_RECORD: cpu_of(self.target.host).record()}
        return host if self.capture is None else {**host, "cuda_graph": self.capture.record()}

    @classmethod
    def before_load(cls, metadata, path) -> None:
        super().before_load(metadata, path)
        if not runtime_loaded():
            enable_codegen()  # TVM's CUDA runtime reads the library's device code

    @classmethod
    def device(cls):
        return gpu_device()

    def check_tunable(self) -> None:
        """Tunable: the search space is below."""

    def tunable_rule(self, mod):
        return tuning.tunable_rule(mod, self.target)

    def search_space(self, rule):
        return tuning.space_generator()

    def untuned_schedule(self, rule, mod):
        return tuning.default_schedule(rule, mod, self.target)

    def prepare_measurement(self, measure) -> None:
        """Candidates run here on the GPU: check it is there, and have the build and run workers
        load TVM's CUDA runtime (popen_worker reads the variable; it stays set)."""
        if measure.rpc:  # never tried: a remote GPU's runner setup is not written yet
            raise TuneError("tuning for cuda over RPC is not implemented yet; tune on the GPU "
                            "machine")  # fmt: skip
        if not driver_present():
            raise TuneError("tuning for cuda measures candidates on a GPU here, and there is "
                            "none (no NVIDIA driver: libcuda.so.1 not found)")  # fmt: skip
        reason = gpu_missing()
        if reason is not None:
            raise TuneError(f"tuning for cuda measures candidates on a GPU here: {reason}")
        enable_codegen()
        os.environ["TVMOPT_WORKER_CUDA"] = "1"

    def trials_per_batch(self, requested: int, build_workers: int) -> int:
        """Candidates build on every core while the GPU measures: batches keep the cores busy."""
        return max(requested, 2 * build_workers)
