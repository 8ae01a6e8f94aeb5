"""Which ONNX operators tvmopt can import, and the one error that lists every gap at once."""

from __future__ import annotations

from collections import defaultdict

import onnx

from ..errors import UnsupportedOpError

# Handled by TVM's importer outside its converter table.
_BUILTIN_OPS = frozenset({"Constant", "If"})
_DEFAULT_DOMAINS = ("", "ai.onnx")
_ML_DOMAIN = "ai.onnx.ml"  # admitted op by op: those converters_ml.py converts
_MS_DOMAIN = "com.microsoft"  # ONNX Runtime's: those its transformer optimizer writes, MatMulNBits
# converters_contrib_*.py and converters_weight_blocks.py; LayerNormalization and Gelu are
# ai.onnx's converters (the same op), FastGelu and BiasGelu TVM's
CONTRIB_OPS = frozenset({
    "MatMulNBits", "Attention", "MultiHeadAttention", "SkipLayerNormalization",
    "EmbedLayerNormalization", "LayerNormalization", "Gelu", "FastGelu", "BiasGelu",
})  # fmt: skip


def supported_ops() -> frozenset[str]:
    from tvm.relax.frontend.onnx.onnx_frontend import _get_convert_map

    from .converters import OURS

    return frozenset(_get_convert_map()) | frozenset(OURS) | _BUILTIN_OPS


def ml_ops() -> frozenset[str]:
    from .converters_ml import OPS

    return frozenset(OPS)


def _is_supported(node: onnx.NodeProto, supported: frozenset[str]) -> bool:
    if node.domain == _ML_DOMAIN:
        return node.op_type in ml_ops()
    if node.domain == _MS_DOMAIN:
        return node.op_type in CONTRIB_OPS
    return node.domain in _DEFAULT_DOMAINS and node.op_type in supported


def opset_of(model: onnx.ModelProto) -> int:
    """The model's default-domain (ai.onnx) opset."""
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 1)


def qualified_op(node: onnx.NodeProto) -> str:
    return node.op_type if node.domain in _DEFAULT_DOMAINS else f"{node.domain}.{node.op_type}"


def find_unsupported(graph: onnx.GraphProto) -> dict[str, list[str]]:
    """Map each unsupported op (domain-qualified outside the default domain) to its node names."""
    supported = supported_ops()
    gaps: dict[str, list[str]] = defaultdict(list)
    for index, node in enumerate(_all_nodes(graph)):
        if not _is_supported(node, supported):
            gaps[qualified_op(node)].append(node.name or f"#{index}")
    return dict(gaps)


def _all_nodes(graph: onnx.GraphProto):
    for node in graph.node:
        yield from nodes_within(node)


def nodes_within(node: onnx.NodeProto):
    """The node itself, then every node of its subgraphs (If/Loop/Scan bodies), recursively."""
    yield node
    for sub in subgraphs(node):
        yield from _all_nodes(sub)


def subgraphs(node: onnx.NodeProto) -> list[onnx.GraphProto]:
    """The graphs in a node's attributes: an If's branches, a Loop's or Scan's body."""
    graphs = []
    for attr in node.attribute:
        graphs.extend([attr.g] if attr.type == onnx.AttributeProto.GRAPH else attr.graphs)
    return graphs


def describe_gaps(gaps: dict[str, list[str]], max_names: int = 3) -> str:
    parts = []
    for op, names in sorted(gaps.items()):
        shown = ", ".join(names[:max_names]) + (
            f", +{len(names) - max_names} more" if len(names) > max_names else ""
        )
        parts.append(f"{op} (node{'s' if len(names) > 1 else ''} {shown})")
    return "; ".join(parts)


def check_supported(graph: onnx.GraphProto) -> None:
    gaps = find_unsupported(graph)
    if gaps:
        raise UnsupportedOpError(f"unsupported ONNX operators: {describe_gaps(gaps)}")
