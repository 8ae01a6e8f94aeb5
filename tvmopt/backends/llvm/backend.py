"""The CPU backend: LLVM code for the host or another CPU, our schedule rules on every kernel."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from functools import partial

from ..._tvm import tvm
from ...errors import TargetError, last_line
from ...passes.quantize.convert import Int8Kernels
from ..base import CPU_RECORD, Backend
from ..cpu_features import runs_here
from ..kernel_record import KernelRecord
from . import pipeline, tir_pipeline, tuning
from .cpu import cpu_of
from .int8_quads import fit_quads
from .kernel_int8_depthwise import int8_depthwise_conv2d, pack_depthwise
from .kernel_int8_gemm import int8_conv2d, int8_matmul, pack_weight
from .rule_matmul import matmul_row_block
from .sparse_weights import SPARSE_RECORD, SparseWeights, with_sparse_weights
from .target import EXAMPLE, complete, host_target, host_triple, is_host_arch

FLEET_LEVELS = ("x86-64-v2", "x86-64-v3", "x86-64-v4")


def int8_kernels(block=(16, 4, "int8"), signed: bool = False) -> Int8Kernels:
    """The int8 layers' TE kernels (kernel_int8_gemm.py, kernel_int8_depthwise.py), the GEMMs'
    weights in blocks of L output channels x D input channels of a dtype (`block`, cpu.py's
    int8_block: 16 x 4 int8 for AVX-512 VNNI, 8 x 2 int16 for AVX2), depthwise ones in vectors
    of L; `signed` GEMMs read int8 activations, as CUDA's dp4a does."""
    lanes, depth, dtype, *parts = block  # parts: the depth-8 step's (cpu.py's int8_block)
    pack = partial(pack_weight, lanes=lanes, depth=depth, dtype=dtype, parts=(*parts, 1)[0])
    return Int8Kernels(int8_conv2d, pack,
                       int8_depthwise_conv2d, partial(pack_depthwise, lanes=lanes), int8_matmul,
                       signed)  # fmt: skip


def cpu_int8_kernels(cpu) -> Int8Kernels:
    """int8_kernels for `cpu`, each GEMM's weight packed for the first of its int8 steps that
    is exact on it (cpu.py's int8_block: vpmaddubsw's blocks for 7-bit weights on AVX2)."""
    step = cpu.int8_step  # sdot multiplies int8 by int8: the activations are shifted
    kernels = int8_kernels(cpu.int8_block(), signed=bool(step) and step.activation == "int8")
    return replace(kernels, pack_conv2d=partial(_pack_for, cpu),
                   weight_bits=7 if cpu.narrow_weights else 8,
                   fit_weight=fit_quads if cpu.quad_weights else None)  # fmt: skip


def _pack_for(cpu, quantized):
    lanes, depth, dtype, parts = cpu.int8_block(quantized)
    return pack_weight(quantized, lanes, depth, dtype, parts)


class LLVMBackend(Backend):
    name = "llvm"
    # this CPU; or an x86-64 level, one library for a fleet (v2: SSE4.2, v3: AVX2, v4: AVX-512)
    aliases = ("llvm", "cpu", "host", *FLEET_LEVELS)
    example = EXAMPLE
    weight_only = True  # fuse_weight_only.py, rule_weight_only.py
    buckets = True
    isa_variants = True

    def __init__(self, target, options=None):
        super().__init__(target, options)
        self.cpu = cpu_of(target)  # what the kernels and weight layouts are sized from
        self.kernels = KernelRecord()  # the last build's kernels, for `tvmopt run --profile`
        self.sparse_layers = []  # the last build's matmuls with constant weights (sparse_weights)

    @classmethod
    def named_target(cls, name: str) -> tvm.target.Target:
        if name in FLEET_LEVELS:
            return tvm.target.Target({"kind": "llvm", "mtriple": host_triple(), "mcpu": name})
        return host_target()

    @classmethod
    def target_from_spec(cls, spec: dict) -> tvm.target.Target:
        try:
            target = tvm.target.Target(spec)
        except Exception as err:  # noqa: BLE001 - TVM reports bad keys with several error types
            raise TargetError(f"invalid target {json.dumps(spec)}: {last_line(err)}") from None
        return complete(target)

    @classmethod
    def complete(cls, target: tvm.target.Target) -> tvm.target.Target:
        return complete(target)

    def calibration_backend(self) -> Backend:
        """This backend where its code runs here; else this CPU (a library for a newer CPU or
        another architecture is calibrated and measured on this one's kernels)."""
        return self if runs_here(self.cpu.record()) else LLVMBackend(host_target())

    def int8_kernels(self) -> Int8Kernels:
        return cpu_int8_kernels(self.cpu)

    def int8_slower(self, kind: str) -> str | None:
        """Every int8 layer, where the ISA has no int8 step (cpu.py): built for x86-64-v2 and
        run on Zen 4, int8 took 4-7x float32's time (ResNet-50 769 against 156 ms, BERT-base
        1298 against 353, MobileNetV2 44 against 11; bench/results/isa/sse4.md)."""
        if self.cpu.int8_step is None:
            return (f"{self.cpu.isa.name} ({self.cpu.mcpu}) has no int8 dot product instruction; "
                    "int8 would be slower than float32")  # fmt: skip
        return None

    def graph_passes(self, opt_level: int) -> list:
        cpu = self.cpu
        graph = pipeline.graph_passes(opt_level, self.options.winograd, cpu.lanes(),
                                      matmul_row_block(cpu), cpu.accumulators, cpu)  # fmt: skip
        return with_sparse_weights(graph, self._sparse_weights)

    def graph_after_quantize(self) -> list:
        cpu = self.cpu
        graph = pipeline.after_quantize(self.options.winograd, cpu.lanes(),
                                        matmul_row_block(cpu), cpu.accumulators, cpu)  # fmt: skip
        return with_sparse_weights(graph, self._sparse_weights)

    def _sparse_weights(self):
        """The pass, recording into this build's list (made when the pipeline is)."""
        return SparseWeights(self.options.sparse, self.cpu, self.sparse_layers)

    def lowering_passes(self, opt_level: int, database=None) -> list:
        return pipeline.lowering_passes(opt_level, self.target, database, self.kernels)

    def build(self, mod, graph, opt_level, database=None):
        self.kernels = KernelRecord()
        self.sparse_layers = []
        graph = pipeline.with_node_spans(graph, self.kernels)
        return super().build(mod, graph, opt_level, database)

    def build_with_variants(self, mod, variants, graph, opt_level, database=None):
        self.kernels = KernelRecord()
        self.sparse_layers = []
        graph = pipeline.with_node_spans(graph, self.kernels)
        return super().build_with_variants(mod, variants, graph, opt_level, database)

    def record(self) -> dict:
        sparse = {SPARSE_RECORD: self.sparse_layers} if self.sparse_layers else {}
        return {CPU_RECORD: self.cpu.record(), **self.kernels.record(), **sparse}

    def tir_pipeline(self) -> str:
        return tir_pipeline.registered()  # TVM's, simplified after LoopPartition

    def linker(self):
        """The system's compiler for the host's architecture, a cross g++ for another."""
        triple = str(self.target.attrs.get("mtriple", host_triple()))
        if is_host_arch(triple):
            return None  # TVM's default: the host C++ compiler
        cross = f"{triple}-g++"
        if shutil.which(cross) is None:
            raise TargetError(f"cross-compiling for '{triple}' needs the linker '{cross}' on PATH")
        from tvm.support import cc

        return cc.cross_compiler(cross)

    def check_tunable(self) -> None:
        """Tunable: the search space is below."""

    def tunable_rule(self, mod):
        return tuning.tunable_rule(mod, self.target)

    def search_space(self, rule):
        return tuning.space_generator(rule, self.target)

    def untuned_schedule(self, rule, mod):
        return tuning.default_schedule(rule, mod, self.target)
