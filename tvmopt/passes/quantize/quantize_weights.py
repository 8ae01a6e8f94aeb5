"""Weight-only quantization: every float32 matmul's constant weight in blocks of `group` rows.

    matmul(x, W: const float32 [K, N]) -> matmul(x, call_tir(dequantize_blocks, (levels, scales,
                                                              zeros)))      (weight_blocks.py)

Activations stay float32 and nothing is calibrated: the weights alone are quantized, which is what
decoding wants (its matrix-vector products read every weight once per token: memory-bound).
Runs on folded weights (after the float32 graph passes, where a Gemm's transposed weight is a
[K, N] constant); a backend's pass then fuses the dequantization into the product.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from tvm.relax.expr_functor import PyExprMutator, mutator

from ..._tvm import tvm
from ...errors import OptionError
from ..consts import dtype, is_constant, value
from ..spans import node_names, spanned
from ..uses import bindings, op_name, relax_functions
from .weight_blocks import GROUP_SIZES, check_group, emit_blocks, quantize_blocks

# name -> (bits, int8 activations): the "-a8" schemes let the product round its activations to
# int8 per group and multiply in integers (ONNX Runtime's MatMulNBits accuracy level 4,
# llama.cpp's Q4_0 x Q8_0: backends/llvm/kernel_weight_only_q8.py), the others keep float32's
SCHEMES = {"int4-weights": (4, False), "int8-weights": (8, False),
           "int4-weights-a8": (4, True), "int8-weights-a8": (8, True)}  # fmt: skip
# int4: 16 levels want small groups (MLC's q4f16 and llama.cpp's Q4_0 take 32); its float32 scale
# and zero point per 32 weights cost 1.25 bits of the 5.25. int8 rounds 16x finer: 128 keeps
# its scale to 0.25 bits of 8.25 (ONNX Runtime's MatMulNBits quantizer defaults to 128 too).
DEFAULT_GROUPS = {4: 32, 8: 128}


@dataclass(frozen=True)
class WeightOnlyConfig:
    """How weight-only quantization quantizes: `bits` per level, `group_size` rows per scale,
    symmetric (zero point 2^(bits-1)) or each group's own zero point (None: asymmetric for
    int4, whose 16 levels a one-sided group would half waste, symmetric for int8);
    int8_activations: the products may round activations to int8 per group (SCHEMES)."""

    bits: int = 4
    group_size: int | None = None
    symmetric: bool | None = None
    int8_activations: bool = False

    def __post_init__(self):
        if self.bits not in DEFAULT_GROUPS:
            raise OptionError(f"weight bits must be 4 or 8, got {self.bits!r}")
        if self.group_size is not None and self.group_size not in GROUP_SIZES:
            raise OptionError(f"group_size must be one of {', '.join(map(str, GROUP_SIZES))}, "
                              f"got {self.group_size!r}")  # fmt: skip

    @property
    def group(self) -> int:
        return self.group_size or DEFAULT_GROUPS[self.bits]

    @property
    def is_symmetric(self) -> bool:
        return self.bits == 8 if self.symmetric is None else self.symmetric


def weight_only_config(scheme: str, group_size=None, symmetric=None) -> WeightOnlyConfig:
    bits, int8_activations = SCHEMES[scheme]
    return WeightOnlyConfig(bits, group_size, symmetric, int8_activations)


@mutator
class _QuantizeWeights(PyExprMutator):
    def __init__(self, mod, config: WeightOnlyConfig):
        super().__init__(mod)
        self.config = config

    def visit_call_(self, call):
        call = self.visit_expr_post_order(call)
        if call.op != tvm.ir.Op.get("relax.matmul") or not _constant_weight(call):
            return call
        weight = value(call.args[1])
        blocks = quantize_blocks(weight, self.config.bits, self.config.group,
                                 self.config.is_symmetric)  # fmt: skip
        blocks = replace(blocks, int8_activations=self.config.int8_activations)
        dequantized = self.builder_.emit(emit_blocks(self.builder_, blocks))
        return spanned(tvm.relax.op.matmul(call.args[0], dequantized), call.span)


def _check_groups(mod, group: int) -> None:
    """Every weight's K a multiple of `group`, checked before anything is rewritten."""
    for _, func in relax_functions(mod):
        for call in bindings(func).values():
            if op_name(call) == "relax.matmul" and _constant_weight(call):
                shape = value(call.args[1]).shape
                names = node_names(call.span) if call.span is not None else []
                name = f"'{names[0]}'" if names else "a MatMul"
                check_group(group, shape[0], f"{name} (weight {list(shape)})")


def _constant_weight(call) -> bool:
    weight = call.args[1]
    return is_constant(weight) and dtype(call) == "float32" and value(weight).ndim == 2


def quantize_weights(mod, config: WeightOnlyConfig):
    """`mod` with every float32 matmul's constant 2-D weight in blocks (the module docstring)."""
    _check_groups(mod, config.group)
    mutator_ = _QuantizeWeights(mod, config)
    for gvar, func in mod.functions.items():
        if isinstance(func, tvm.relax.Function):
            mutator_.builder_.update_func(gvar, mutator_.visit_expr(func))
    return mutator_.builder_.get()
