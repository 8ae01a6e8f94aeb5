"""ONNX Runtime's com.microsoft attention ops, which its transformer optimizer
(onnxruntime.transformers.optimizer) writes into BERT- and GPT-2-style graphs:

    Attention(x [B, S, D], weights [D, Dq + Dk + Dv][, bias][, mask_index][, past]
              [, attention_bias]; num_heads, qkv_hidden_sizes, unidirectional, scale,
              mask_filter_value)
        -> split(x @ weights + bias) into heads, softmax(q k^T * scale + masks) v, heads merged
    MultiHeadAttention(query [B, S, D], key [B, L, D] or [B, H, L, d], value (same)[, bias]
                       [, key_padding_mask][, attention_bias][, past_key, past_value];
                       num_heads, scale, mask_filter_value, unidirectional)
        -> the same core; the past concatenated before the new keys and values (present_*)

Every dim may be symbolic (TVM's own Attention converter reads them as numbers, and misplaces a
[B, T] mask). A masked position adds `mask_filter_value` (-10000 by default) to its score, as
ONNX Runtime does. Masks are raw 0/1 tensors, [B, T] or [B, S, T], or each row's end [B] (the
optimizer's EmbedLayerNormalization -> Attention); other mask_index forms (start and end
positions [2B], [B, 1, M, M]), Attention's `past` (ORT's packed [2, B, H, P, d] cache),
rotary embedding, packed QKV and the attributes below are refused with one line naming them.
"""

from __future__ import annotations

import math

import tvm_ffi
from tvm import relax
from tvm.relax.frontend.onnx.onnx_frontend import OnnxOpConverter

op = relax.op
UNSUPPORTED = {  # attribute -> the value we convert (anything else is refused)
    "do_rotary": 0, "past_present_share_buffer": 0, "rotary_embedding_dim": 0,
}  # fmt: skip


def _dims(x) -> list:
    return list(x.ty.shape.values)


def _refuse_attributes(name: str, attr: dict, inputs, unsupported_inputs: dict) -> None:
    for key, accepted in UNSUPPORTED.items():
        if attr.get(key, accepted) != accepted:
            raise ValueError(f"{name} with {key}={attr[key]} is not supported")
    for index, what in unsupported_inputs.items():
        if len(inputs) > index and inputs[index] is not None:
            raise ValueError(f"{name} with {what} (input {index}) is not supported")


def split_heads(bb, x, heads: int):
    """[B, S, H * d] -> [B, H, S, d]."""
    batch, seq, width = _dims(x)
    shaped = bb.normalize(op.reshape(x, [batch, seq, heads, width // heads]))
    return bb.normalize(op.permute_dims(shaped, [0, 2, 1, 3]))


def merge_heads(bb, x):
    """[B, H, S, d] -> [B, S, H * d]."""
    batch, heads, seq, width = _dims(x)
    merged = bb.normalize(op.permute_dims(x, [0, 2, 1, 3]))
    return bb.normalize(op.reshape(merged, [batch, seq, heads * width]))


def padding_bias(bb, mask, filter_value: float, dtype: str, total, batch):
    """A raw 0/1 mask, [B, T] or [B, S, T] -> (1 - mask) * filter_value, [B, 1, (1|S), T], its T
    the keys' own (a mask's dim of another name would not broadcast against the scores)."""
    dims = _dims(mask)
    if len(dims) == 1 and tvm_ffi.structural_equal(dims[0], batch):
        return end_positions_bias(bb, mask, filter_value, dtype, total)
    if len(dims) not in (2, 3):
        raise ValueError(
            f"attention mask_index of shape {dims} is not supported (only "
            "0/1 masks [batch, total] or [batch, seq, total], ends [batch])"
        )
    masked = op.subtract(relax.const(1.0, dtype), op.astype(mask, dtype))
    bias = bb.normalize(op.multiply(masked, relax.const(filter_value, dtype)))
    shape = [dims[0], 1, 1, total] if len(dims) == 2 else [dims[0], 1, dims[1], total]
    return bb.normalize(op.reshape(bias, shape))


def end_positions_bias(bb, ends, filter_value: float, dtype: str, total):
    """mask_index [B], each row's end (EmbedLayerNormalization's count of unmasked tokens) ->
    filter_value at keys from the end on, [B, 1, 1, T]."""
    batch = _dims(ends)[0]
    keys = op.reshape(op.arange(0, total, 1, "int64"), [1, total])
    past_end = op.greater_equal(keys, op.reshape(op.astype(ends, "int64"), [batch, 1]))
    bias = op.where(past_end, relax.const(filter_value, dtype), relax.const(0.0, dtype))
    return bb.normalize(op.reshape(bias, [batch, 1, 1, total]))


def causal_bias(bb, seq, total, filter_value: float, dtype: str):
    """[S, T]: filter_value where key j comes after query i (j > i + T - S), else 0."""
    rows = op.add(op.arange(0, seq, 1, "int64"), op.subtract(_as_tensor(total), _as_tensor(seq)))
    later = op.greater(op.reshape(op.arange(0, total, 1, "int64"), [1, total]),
                       op.reshape(rows, [seq, 1]))  # fmt: skip
    zero, masked = relax.const(0.0, dtype), relax.const(filter_value, dtype)
    return bb.normalize(op.where(later, masked, zero))


def _as_tensor(dim):
    return op.reshape(op.shape_to_tensor(relax.ShapeExpr([dim])), [])


def attend(bb, q, k, v, scale: float, biases):
    """softmax(q k^T * scale + sum(biases)) v, over [B, H, S, d] heads."""
    dtype = str(q.ty.dtype)
    scores = op.multiply(op.matmul(q, op.permute_dims(k, [0, 1, 3, 2])), relax.const(scale, dtype))
    for bias in biases:
        scores = op.add(scores, bias)
    probabilities = bb.normalize(op.nn.softmax(bb.normalize(scores), axis=-1))
    return bb.normalize(op.matmul(probabilities, v))


def _masks(bb, attr, q, k, padding_mask, attention_bias):
    """The additive biases of a [B, H, S, d] query against [B, H, T, d] keys."""
    dtype, filter_value = str(q.ty.dtype), float(attr.get("mask_filter_value", -10000.0))
    biases = [] if attention_bias is None else [attention_bias]
    if padding_mask is not None:
        total, batch = _dims(k)[2], _dims(q)[0]
        biases.append(padding_bias(bb, padding_mask, filter_value, dtype, total, batch))
    if attr.get("unidirectional", 0):
        biases.append(causal_bias(bb, _dims(q)[2], _dims(k)[2], filter_value, dtype))
    return biases


def _scale(attr, head_size) -> float:
    scale = float(attr.get("scale", 0.0))
    return scale if scale else 1.0 / math.sqrt(int(head_size))


class Attention(OnnxOpConverter):
    @classmethod
    def _impl_v1(cls, bb, inputs, attr, params):
        _refuse_attributes("Attention", attr, inputs, {4: "past", 6: "past_sequence_length"})
        heads, x = int(attr["num_heads"]), inputs[0]
        projected = op.matmul(x, inputs[1])
        if inputs[2] is not None:
            projected = op.add(projected, inputs[2])
        projected = bb.normalize(projected)
        width = int(_dims(projected)[2])
        q_size, k_size, _ = attr.get("qkv_hidden_sizes", [width // 3] * 3)
        parts = bb.normalize(op.split(projected, [q_size, q_size + k_size], axis=2))
        q, k, v = (split_heads(bb, bb.normalize(relax.TupleGetItem(parts, i)), heads)
                   for i in range(3))  # fmt: skip
        biases = _masks(bb, attr, q, k, inputs[3], inputs[5])
        output = merge_heads(bb, attend(bb, q, k, v, _scale(attr, q_size // heads), biases))
        return relax.Tuple([output, relax.const(0.0, "float32")])  # no present without a past


class MultiHeadAttention(OnnxOpConverter):
    @classmethod
    def _impl_v1(cls, bb, inputs, attr, params):
        _refuse_attributes("MultiHeadAttention", attr, inputs,
                           {8: "past_sequence_length", 9: "cache_indirection"})  # fmt: skip
        heads = int(attr["num_heads"])
        query, key, value = inputs[0], inputs[1], inputs[2]
        if key is None or value is None or len(_dims(query)) != 3:
            raise ValueError("MultiHeadAttention with packed QKV or KV is not supported")
        if inputs[3] is not None:
            query, key, value = _with_bias(bb, inputs[3], query, key, value)
        q = split_heads(bb, query, heads)
        k, v = (x if len(_dims(x)) == 4 else split_heads(bb, x, heads) for x in (key, value))
        if inputs[6] is not None and inputs[7] is not None:  # the past goes before the new tokens
            k = bb.normalize(op.concat([inputs[6], k], axis=2))
            v = bb.normalize(op.concat([inputs[7], v], axis=2))
        biases = _masks(bb, attr, q, k, inputs[4], inputs[5])
        output = merge_heads(bb, attend(bb, q, k, v, _scale(attr, _dims(q)[3]), biases))
        return relax.Tuple([output, k, v])


def _with_bias(bb, bias, query, key, value):
    """MultiHeadAttention's bias: [Dq + Dk + Dv], added to 3-D query, key and value."""
    if len(_dims(key)) != 3:
        raise ValueError("MultiHeadAttention with a bias and 4-D key/value is not supported")
    sizes = [int(_dims(x)[2]) for x in (query, key)]
    parts = bb.normalize(op.split(bias, [sizes[0], sizes[0] + sizes[1]], axis=0))
    return [bb.normalize(op.add(x, relax.TupleGetItem(parts, i)))
            for i, x in enumerate((query, key, value))]  # fmt: skip


OPS = {"Attention": Attention, "MultiHeadAttention": MultiHeadAttention}
