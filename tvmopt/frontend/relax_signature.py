"""Output signatures read from the imported Relax module, which knows every output's final
shape and dtype even where ONNX shape inference gave up."""

from __future__ import annotations

from .._tvm import tvm
from ..frontend.signature import TensorSpec


def output_specs(mod, names: list[str]) -> list[TensorSpec]:
    leaves = _leaves(mod["main"].ret_ty)
    pairs = zip(names, leaves, strict=True)
    return [TensorSpec(name, _dims(info), str(info.dtype)) for name, info in pairs]


def _leaves(info) -> list:
    if isinstance(info, tvm.relax.TupleType):
        return [leaf for field in info.fields for leaf in _leaves(field)]
    return [info]


def _dims(info) -> tuple:
    if info.shape is None or not hasattr(info.shape, "values"):
        return ("?",) * max(info.ndim, 0)
    return tuple(int(d) if isinstance(d, tvm.tirx.IntImm) else str(d) for d in info.shape.values)
