"""Every Relax call TVM's ONNX importer makes carries the name of the ONNX node it converts, as
its span (passes/spans.py): the converter's result, and what the converter bound on the way
(a node that becomes several ops). An unnamed node is named by its op type.

TVM's normalizer drops the span of a call whose nested calls it binds (Gemm's add of a matmul),
so what the importer binds has its nested calls bound first, each with its own span."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from tvm import relax
from tvm.relax.frontend.onnx import onnx_frontend

from ..passes.spans import node_span, spanned


@contextlib.contextmanager
def spanning_nodes() -> Iterator[None]:
    """Within the block, the importer's calls carry their ONNX node's name."""
    importer, builder = onnx_frontend.ONNXGraphImporter, relax.BlockBuilder
    convert, emit, normalize = importer._convert_operator, builder.emit, builder.normalize
    current = [None]  # the span of the node being converted
    bound_calls = {}  # nested call -> its variable: a converter's result may be read twice

    def bind(self, call):
        if call not in bound_calls:
            bound_calls[call] = emit(self, _nested_calls_bound(lambda c: bind(self, c), call))
        return bound_calls[call]

    def converting(self, op_name, inputs, attrs, opset):
        name = attrs.get("tvm_custom", {}).get("name") or op_name
        current[0] = node_span(name)
        try:
            return spanned(convert(self, op_name, inputs, attrs, opset), current[0])
        finally:
            current[0] = None

    def bound(self, expr):
        return _nested_calls_bound(lambda call: bind(self, call), spanned(expr, current[0]))

    importer._convert_operator = converting
    builder.emit = lambda self, expr, name_hint="": emit(self, bound(self, expr), name_hint)
    builder.normalize = lambda self, expr: normalize(self, bound(self, expr))
    try:
        yield
    finally:
        importer._convert_operator, builder.emit, builder.normalize = convert, emit, normalize


def _nested_calls_bound(bind, expr):
    """`expr` with the calls nested in it replaced by what `bind` binds them to, innermost first."""
    if isinstance(expr, relax.Call):
        args = [_bound_operand(bind, arg) for arg in expr.args]
        if all(new.same_as(old) for new, old in zip(args, expr.args, strict=True)):
            return expr
        return relax.Call(expr.op, args, expr.attrs, expr.ty_args, expr.span)
    if isinstance(expr, relax.Tuple):
        return relax.Tuple([_bound_operand(bind, field) for field in expr.fields], expr.span)
    if isinstance(expr, relax.TupleGetItem):
        return relax.TupleGetItem(_bound_operand(bind, expr.tuple_value), expr.index)
    return expr


def _bound_operand(bind, operand):
    return bind(operand) if isinstance(operand, relax.Call) else _nested_calls_bound(bind, operand)
