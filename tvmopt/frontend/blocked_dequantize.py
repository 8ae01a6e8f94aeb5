"""A MatMul's weight dequantized in blocks (opset 21's DequantizeLinear with block_size) as
ONNX Runtime's MatMulNBits, which imports as our weight-only format (converters_weight_blocks.py).

    MatMul(A, DequantizeLinear(Wq [K, N], scale [K/B, N][, zero]; axis=0, block_size=B))
        -> com.microsoft.MatMulNBits(A, levels, scales, zero_points; K, N, bits, block_size=B)

for a constant Wq of int4, uint4, int8 or uint8 (signed levels and zero points move up by
2^(bits-1) to the unsigned levels MatMulNBits holds; an unsigned weight with no zero point
gets explicit zeros, where MatMulNBits would assume 2^(bits-1)). Runs before constant folding,
which would otherwise evaluate the DequantizeLinear into a float32 weight 4 to 8 times its size.
A DequantizeLinear read by anything but MatMuls' B inputs is left as it is.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from .converters_weight_blocks import pack_bytes

BITS = {TensorProto.INT4: (4, True), TensorProto.UINT4: (4, False),
        TensorProto.INT8: (8, True), TensorProto.UINT8: (8, False)}  # fmt: skip
MS_DOMAIN = "com.microsoft"


def blocked_dequantize_as_nbits(model: onnx.ModelProto) -> onnx.ModelProto:
    graph = model.graph
    constants = {init.name: init for init in graph.initializer}
    readers = _readers(graph)
    outputs = {out.name for out in graph.output}
    rewrites = {}  # MatMul node index -> its MatMulNBits; a DequantizeLinear's -> None (dropped)
    for index, node in enumerate(graph.node):
        if not _blocked(node, constants) or node.output[0] in outputs:
            continue
        users = readers.get(node.output[0], [])
        if users and all(_reads_as_weight(graph.node[i], node.output[0]) for i in users):
            rewrites.update({i: _nbits(graph.node[i], node, constants) for i in users})
            rewrites[index] = None
    return _rewritten(model, rewrites) if rewrites else model


def _readers(graph) -> dict[str, list[int]]:
    found: dict[str, list[int]] = {}
    for index, node in enumerate(graph.node):
        for name in node.input:
            found.setdefault(name, []).append(index)
    return found


def _reads_as_weight(node, name: str) -> bool:
    return node.op_type == "MatMul" and node.domain in ("", "ai.onnx") and node.input[1] == name


def _blocked(node, constants) -> bool:
    """A DequantizeLinear in blocks along axis 0 of a constant 2-D weight."""
    if node.op_type != "DequantizeLinear" or node.domain not in ("", "ai.onnx"):
        return False
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    weight = constants.get(node.input[0])
    constant = all(name in constants for name in node.input if name)
    along_k = attrs.get("block_size", 0) > 0 and attrs.get("axis", 1) in (0, -2)
    return (along_k and constant and weight is not None and len(weight.dims) == 2
            and weight.data_type in BITS)  # fmt: skip


def _nbits(matmul, dequantize, constants):
    """(the MatMulNBits node, its new initializers) for `matmul` reading `dequantize`."""
    bits, signed = BITS[constants[dequantize.input[0]].data_type]
    block = next(helper.get_attribute_value(a) for a in dequantize.attribute
                 if a.name == "block_size")  # fmt: skip
    arrays = [_array(constants[name]) if name else None
              for name in [*dequantize.input, ""][:3]]  # fmt: skip
    levels, scales, zeros = arrays
    shift = (1 << (bits - 1)) if signed else 0
    zeros = np.zeros(scales.shape) if zeros is None else zeros
    depth, columns = levels.shape
    blocks = len(scales)
    padded = np.zeros((blocks * block, columns), np.int32)
    padded[:depth] = levels.astype(np.int32) + shift
    prefix = matmul.name or matmul.output[0]
    names = [f"{prefix}_levels", f"{prefix}_scales", f"{prefix}_zero_points"]
    tensors = [
        pack_bytes(padded.T.reshape(columns, blocks, block).astype(np.uint8), bits),
        scales.T.astype(np.float32),
        pack_bytes((zeros.astype(np.int32) + shift).T.astype(np.uint8), bits),
    ]
    node = helper.make_node("MatMulNBits", [matmul.input[0], *names], list(matmul.output),
                            name=matmul.name, domain=MS_DOMAIN, K=depth, N=columns, bits=bits,
                            block_size=block)  # fmt: skip
    return node, [numpy_helper.from_array(t, n) for t, n in zip(tensors, names, strict=True)]


def _array(tensor) -> np.ndarray:
    return np.asarray(numpy_helper.to_array(tensor)).astype(np.float32 if tensor.data_type in (
        TensorProto.FLOAT, TensorProto.FLOAT16, TensorProto.BFLOAT16) else np.int32)  # fmt: skip


def _rewritten(model: onnx.ModelProto, rewrites: dict) -> onnx.ModelProto:
    copied = onnx.ModelProto()
    copied.CopyFrom(model)
    nodes = [rewrites.get(i, (node,))[0] if rewrites.get(i, 1) else None
             for i, node in enumerate(model.graph.node)]  # fmt: skip
    del copied.graph.node[:]
    copied.graph.node.extend(node for node in nodes if node is not None)
    for _, initializers in filter(None, rewrites.values()):
        copied.graph.initializer.extend(initializers)
    if not any(o.domain == MS_DOMAIN for o in copied.opset_import):
        copied.opset_import.append(helper.make_opsetid(MS_DOMAIN, 1))
    return copied
