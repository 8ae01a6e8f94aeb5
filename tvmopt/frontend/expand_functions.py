"""Expand ONNX ops that TVM 0.27 cannot import into the function bodies the ONNX spec gives them.

    Attention(Q, K, V, mask) -> MatMul, Softmax, Where, ... (its ai.onnx function body)
    Celu(x)                  -> Div, Elu, Mul               (likewise for any op TVM lacks)

Recent opsets define many ops as functions of older ones, so expanding them is exact. Two cases:
TVM's importer has no converter for the op (Celu, RotaryEmbedding, Swish, ...), or it finds a
converter by op name alone whose semantics belong to another domain: `MISCONVERTED`. The torch
dynamo exporter at opset 23 writes `scaled_dot_product_attention` as ai.onnx Attention, which
TVM sends to its com.microsoft Attention converter (KeyError: 'num_heads').

Runs after shape inference, because context-dependent bodies are built from the input types, and
before `fold_constants`, because bodies carry Shape/Gather chains that folding removes. Ops with
no function body are left alone for the op-support check to report. Top-level graph only.
"""

from __future__ import annotations

import onnx
from onnx import defs, inliner, shape_inference

from .support import opset_of, supported_ops

# TVM's converters of these names implement a different domain's op of the same name.
MISCONVERTED = frozenset({"Attention"})  # TVM's is com.microsoft.Attention
EXPANDED_DOMAIN = "tvmopt.expanded"


def expand_functions(model: onnx.ModelProto) -> onnx.ModelProto:
    """Replace each op TVM cannot import by its ONNX function body, inlined; re-infer shapes."""
    supported = supported_ops()
    if not any(_needs_expansion(node, supported) for node in model.graph.node):
        return model  # the common case: no copy, no re-inference
    opset, types, model = opset_of(model), _value_types(model.graph), _copy(model)
    functions = []
    for index, node in enumerate(model.graph.node):
        body = _body_for(node, opset, types) if _needs_expansion(node, supported) else None
        if body is not None:
            functions.append(_call_as_local_function(node, body, f"{node.op_type}_{index}"))
    return _inline(model, functions) if functions else model


def _inline(model: onnx.ModelProto, functions: list) -> onnx.ModelProto:
    # onnx's inliner renames each body's values apart and converts it to the model's opset
    model.functions.extend(functions)
    model.opset_import.append(onnx.helper.make_opsetid(EXPANDED_DOMAIN, 1))
    model = inliner.inline_local_functions(model, convert_version=True)
    _drop_opset(model, EXPANDED_DOMAIN)
    return shape_inference.infer_shapes(model, data_prop=True)


def _needs_expansion(node: onnx.NodeProto, supported: frozenset) -> bool:
    if node.domain not in ("", "ai.onnx"):
        return False
    return node.op_type in MISCONVERTED or node.op_type not in supported


def _body_for(node: onnx.NodeProto, opset: int, types: dict) -> onnx.FunctionProto | None:
    """The op's function body at the model's opset, or None where the spec defines none."""
    try:
        schema = defs.get_schema(node.op_type, opset, "")
    except defs.SchemaError:
        return None
    if not (schema.has_function or schema.has_context_dependent_function):
        return None
    _add_default_attributes(node, schema)
    try:
        serialized = _serialized_body(schema, node, opset, types)
    except Exception:  # noqa: BLE001 - onnx's body builders raise any type on odd input types
        return None
    return onnx.FunctionProto.FromString(serialized)


def _serialized_body(schema, node: onnx.NodeProto, opset: int, types: dict) -> bytes:
    if schema.has_function:
        version = _latest(schema.function_opset_versions, opset)
        return schema.get_function_with_opset_version(version)
    version = _latest(schema.context_dependent_function_opset_versions, opset)
    input_types = [types.get(name, onnx.TypeProto()).SerializeToString() for name in node.input]
    return schema.get_context_dependent_function_with_opset_version(
        version, node.SerializeToString(), input_types
    )


def _latest(versions, opset: int) -> int:
    return max(v for v in versions if v <= opset)


def _add_default_attributes(node: onnx.NodeProto, schema) -> None:
    # bodies read attributes by reference (ref_attr_name); the inliner needs each one on the node
    present = {attr.name for attr in node.attribute}
    for name, attr in schema.attributes.items():
        if name not in present and attr.default_value.type != onnx.AttributeProto.UNDEFINED:
            node.attribute.append(attr.default_value)


def _call_as_local_function(node, body: onnx.FunctionProto, name: str) -> onnx.FunctionProto:
    """Point `node` at `body`, renamed into our domain so the inliner treats it as local."""
    body.name, body.domain = name, EXPANDED_DOMAIN
    node.op_type, node.domain = name, EXPANDED_DOMAIN
    return body


def _value_types(graph: onnx.GraphProto) -> dict[str, onnx.TypeProto]:
    types = {v.name: v.type for v in [*graph.input, *graph.value_info, *graph.output]}
    for init in graph.initializer:
        types[init.name] = onnx.helper.make_tensor_type_proto(init.data_type, list(init.dims))
    return types


def _drop_opset(model: onnx.ModelProto, domain: str) -> None:
    for entry in [o for o in model.opset_import if o.domain == domain]:
        model.opset_import.remove(entry)


def _copy(model: onnx.ModelProto) -> onnx.ModelProto:
    copied = onnx.ModelProto()
    copied.CopyFrom(model)
    return copied
