"""ONNX Runtime's com.microsoft layer norms, which its transformer optimizer writes into BERT- and
GPT-2-style graphs:

    SkipLayerNormalization(x, skip, gamma[, beta][, bias]; epsilon)
        -> (layer_norm(x + skip + bias), mean, inv_std_var, x + skip + bias)
    EmbedLayerNormalization(input_ids, segment_ids?, word, position, segment?, gamma, beta,
                            mask?, position_ids?; epsilon, mask_index_type)
        -> (layer_norm(word[ids] + position[position_ids] + segment[segment_ids]),
            mask_index = sum(mask, axis=1) as int32, the embedding sum)

TVM's own converters read the batch and sequence as numbers, require SkipLayerNormalization's
optional beta and bias, and give placeholders for the outputs after the first: GPT-2's
optimized graph reads the sum (output 3) as its next residual. com.microsoft's
LayerNormalization and its Gelu family (Gelu, FastGelu, BiasGelu) are ai.onnx's
LayerNormalization or TVM's converters, which are right for them.
"""

from __future__ import annotations

from tvm import relax
from tvm.relax.frontend.onnx.onnx_frontend import OnnxOpConverter

op = relax.op


def normalized(bb, x, gamma, beta, epsilon: float):
    """(layer_norm over the last axis, its mean, its 1/std), the last two keeping that axis."""
    dtype = str(x.ty.dtype)
    if beta is None:
        beta = op.zeros_like(gamma)
    output = op.nn.layer_norm(x, gamma, beta, axes=[-1], epsilon=epsilon)
    mean = bb.normalize(op.mean(x, axis=[-1], keepdims=True))
    variance = op.mean(op.square(op.subtract(x, mean)), axis=[-1], keepdims=True)
    inv_std = op.rsqrt(op.add(variance, relax.const(epsilon, dtype)))
    return bb.normalize(output), mean, bb.normalize(inv_std)


class SkipLayerNormalization(OnnxOpConverter):
    @classmethod
    def _impl_v1(cls, bb, inputs, attr, params):
        total = op.add(inputs[0], inputs[1])
        if len(inputs) > 4 and inputs[4] is not None:
            total = op.add(total, inputs[4])
        total = bb.normalize(total)
        epsilon = float(attr.get("epsilon", 1e-12))
        output, mean, inv_std = normalized(bb, total, inputs[2], inputs[3], epsilon)
        return relax.Tuple([output, mean, inv_std, total])


class EmbedLayerNormalization(OnnxOpConverter):
    @classmethod
    def _impl_v1(cls, bb, inputs, attr, params):
        if int(attr.get("mask_index_type", 1)) != 1:
            raise ValueError("EmbedLayerNormalization with mask_index_type="
                             f"{attr['mask_index_type']} is not supported (only 1)")  # fmt: skip
        ids, segments, words, positions, segment_table, gamma, beta = inputs[:7]
        mask, position_ids = inputs[7], inputs[8] if len(inputs) > 8 else None
        if position_ids is None:
            seq = ids.ty.shape.values[1]
            position_ids = op.reshape(op.arange(0, seq, 1, "int64"), [1, seq])
        total = op.add(op.take(words, ids, axis=0), op.take(positions, position_ids, axis=0))
        if segments is not None:
            total = op.add(total, op.take(segment_table, segments, axis=0))
        total = bb.normalize(total)
        output, _, _ = normalized(bb, total, gamma, beta, float(attr.get("epsilon", 1e-12)))
        return relax.Tuple([output, _mask_index(bb, ids, mask), total])


def _mask_index(bb, ids, mask):
    """The tokens each row keeps, int32 [B] (0 without a mask, as ONNX Runtime gives)."""
    if mask is None:
        return bb.normalize(op.zeros(relax.ShapeExpr([ids.ty.shape.values[0]]), "int32"))
    return bb.normalize(op.astype(op.sum(mask, axis=[1]), "int32"))


OPS = {"SkipLayerNormalization": SkipLayerNormalization,
       "EmbedLayerNormalization": EmbedLayerNormalization}  # fmt: skip
