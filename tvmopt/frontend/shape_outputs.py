"""Outputs the importer computed as shapes, returned as the int64 tensors ONNX says they are.

TVM's importer turns `Shape` of a symbolic input into a Relax shape value, not a tensor: a
model that outputs it (a tokenizer-side graph returning its input's size, say) would hand the
caller a ShapeTuple, and its signature has no tensor to describe. `shape_to_tensor` at the
end of `main` makes it the tensor the ONNX graph declares."""

from __future__ import annotations

from tvm import relax


def shape_outputs_as_tensors(func: relax.Function) -> relax.Function:
    """`func` with every shape-valued leaf of its result made an int64 tensor."""
    bindings: list = []
    result = _as_tensors(func.body.body, func.ret_ty, bindings)
    if not bindings:
        return func
    body = relax.SeqExpr([*func.body.blocks, relax.BindingBlock(bindings)], result)
    return relax.Function(func.params, relax.BlockBuilder().normalize(body), attrs=func.attrs)


def _as_tensors(expr, ty, bindings: list):
    if isinstance(ty, relax.TupleType):
        return relax.Tuple([_as_tensors(relax.TupleGetItem(expr, index), field, bindings)
                            for index, field in enumerate(ty.fields)])  # fmt: skip
    if isinstance(ty, relax.ShapeType):
        var = relax.Var("shape_as_tensor", relax.TensorType([ty.ndim], "int64"))
        bindings.append(relax.VarBinding(var, relax.op.shape_to_tensor(expr)))
        return var
    return expr
