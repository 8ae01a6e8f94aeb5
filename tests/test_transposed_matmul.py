"""Attention's K^T read in place (backends/llvm/transposed_matmul.py, transposed_b.py): the
transpose before Q K^T becomes part of the matmul's kernel, which the Matmul rule schedules,
for BERT's [batch, seq, heads, dim] keys and a decoder's [batch, heads, past, dim] cache, static
and symbolic; the outputs match ONNX Runtime's."""

import numpy as np
import pytest
from onnx import TensorProto, helper
from tvm.script import ir as I
from tvm.script import relax as R

import tvmopt
from tvmopt.backends.llvm.transposed_matmul import KERNEL, transpose_into_matmul

from .helpers import assert_matches_ort, make_model

FLOAT = TensorProto.FLOAT
HEADS, DIM = 4, 16


def attention_scores(seq, heads_first: bool):
    """scores = Q K^T / 4 from [1, seq, heads, dim] inputs (BERT: K's perm [0, 2, 3, 1]), or
    from K already [1, heads, seq, dim] (a cache: perm [0, 1, 3, 2])."""
    key_shape = [1, HEADS, seq, DIM] if heads_first else [1, seq, HEADS, DIM]
    key_perm = [0, 1, 3, 2] if heads_first else [0, 2, 3, 1]
    nodes = [
        helper.make_node("Transpose", ["q"], ["qt"], perm=[0, 2, 1, 3], name="q_transpose"),
        helper.make_node("Transpose", ["k"], ["kt"], perm=key_perm, name="k_transpose"),
        helper.make_node("MatMul", ["qt", "kt"], ["s"]),
        helper.make_node("Div", ["s", "four"], ["scores"]),
    ]
    inputs = [("q", FLOAT, [1, seq, HEADS, DIM]), ("k", FLOAT, key_shape)]
    out_seq = seq if isinstance(seq, int) else "seq"
    outputs = [("scores", FLOAT, [1, HEADS, out_seq, out_seq])]
    return make_model(nodes, inputs, outputs, {"four": np.float32(4.0)})


@pytest.mark.parametrize("heads_first", [False, True])
@pytest.mark.parametrize("seq", [37, 64])  # 37: columns padded to whole tiles
def test_static_scores_match_onnxruntime_without_a_transpose_kernel(seq, heads_first):
    model = attention_scores(seq, heads_first)
    compiled = tvmopt.compile(model)
    assert_matches_ort(model, compiled)
    kernels = compiled.metadata.extra["kernels"]
    anchor = [name for name in kernels if KERNEL in name]
    assert len(anchor) == 1 and kernels[anchor[0]]["rule"] == "Matmul", kernels
    transposing_k = [name for name, kernel in kernels.items() if "k_transpose" in kernel["nodes"]]
    assert transposing_k in ([], anchor), kernels


def test_symbolic_scores_match_onnxruntime_at_several_lengths():
    model = attention_scores("seq", heads_first=True)
    compiled = tvmopt.compile(model, dims={"seq": (1, 80)})
    for seq in (1, 7, 33, 80):
        rng = np.random.default_rng(seq)
        feeds = {"q": rng.standard_normal((1, seq, HEADS, DIM), np.float32),
                 "k": rng.standard_normal((1, HEADS, seq, DIM), np.float32)}  # fmt: skip
        assert_matches_ort(model, compiled, feeds)


def decoder_scores(seq, past, dim=DIM):
    """A decoder step's Q K^T over its cache: [1, heads, seq, dim] x [1, heads, past, dim]^T."""
    nodes = [helper.make_node("Transpose", ["k"], ["kt"], perm=[0, 1, 3, 2], name="k_transpose"),
             helper.make_node("MatMul", ["q", "kt"], ["scores"])]  # fmt: skip
    inputs = [("q", FLOAT, [1, HEADS, seq, dim]), ("k", FLOAT, [1, HEADS, past, dim])]
    return make_model(nodes, inputs, [("scores", FLOAT, [1, HEADS, seq, past])])


# dim 24: no whole number of vectors, so the per-tile copy instead of dot products
CASES = [(1, 45, DIM), ("seq", "past", DIM), ("seq", "past", 24)]


@pytest.mark.parametrize("seq, past, dim", CASES)
def test_decoder_step_scores_match_onnxruntime(seq, past, dim):
    model = decoder_scores(seq, past, dim)
    dims = {"seq": (1, 8), "past": (1, 200)} if seq == "seq" else None
    compiled = tvmopt.compile(model, dims=dims)
    kernels = compiled.metadata.extra["kernels"]
    assert [kernel["rule"] for kernel in kernels.values()] == ["Matmul"], kernels
    for rows, columns in ((1, 45),) if seq == 1 else ((1, 1), (1, 200), (3, 77), (8, 16)):
        rng = np.random.default_rng(columns)
        feeds = {"q": rng.standard_normal((1, HEADS, rows, dim), np.float32),
                 "k": rng.standard_normal((1, HEADS, columns, dim), np.float32)}  # fmt: skip
        assert_matches_ort(model, compiled, feeds)


@I.ir_module
class Cache:
    @R.function
    def main(q: R.Tensor((1, 4, "s", 16), "float32"), k: R.Tensor((1, 4, "p", 16), "float32")):
        with R.dataflow():
            kt = R.permute_dims(k, axes=[0, 1, 3, 2])
            o = R.matmul(q, kt)
            R.output(o)
        return o


@I.ir_module
class KeepsColumnsContiguous:  # B's columns are k's last axis already: nothing to fold
    @R.function
    def main(q: R.Tensor((1, 4, 8, 16), "float32"), v: R.Tensor((4, 1, 16, 8), "float32")):
        with R.dataflow():
            vt = R.permute_dims(v, axes=[1, 0, 2, 3])
            o = R.matmul(q, vt)
            R.output(o)
        return o


def test_pass_folds_the_transpose_into_one_kernel():
    after = transpose_into_matmul(Cache)
    calls = [b.value for b in after["main"].body.blocks[0].bindings]
    assert len(calls) == 1 and calls[0].args[0].name_hint == KERNEL
    assert calls[0].args[1].fields[1].same_as(after["main"].params[1])  # K itself, untransposed


def test_pass_leaves_a_transpose_that_keeps_columns_contiguous():
    after = transpose_into_matmul(KeepsColumnsContiguous)
    ops = [b.value.op.name for b in after["main"].body.blocks[0].bindings]
    assert ops == ["relax.permute_dims", "relax.matmul"]
