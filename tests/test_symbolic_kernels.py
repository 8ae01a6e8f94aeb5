"""Kernels over a symbolic sequence length, scheduled as fast as their static counterparts: the
fallback's element-wise nests divide by symbolic extents once per row, not once per lane, and
attention's Q @ K^T (columns = the length) keeps the Matmul rule with vector loads of B."""

import re

import numpy as np
import pytest
from onnx import TensorProto, helper
from tvm import te, tirx

import tvmopt
from tvmopt._tvm import tvm
from tvmopt.backends import resolve_target
from tvmopt.backends.llvm.rule_fallback import Fallback
from tvmopt.backends.llvm.rule_matmul import Matmul

from .helpers import assert_matches_ort, make_model

RNG = np.random.default_rng(0)
HIDDEN, HEADS = 64, 4
HEAD = HIDDEN // HEADS


def attention_model():
    """Pre-norm self-attention over (batch, seq, 64): layer norm, Q/K/V, heads transposed,
    scaled scores, softmax, weighted values, heads merged back."""
    node = helper.make_node
    nodes = [node("LayerNormalization", ["x", "gamma", "beta"], ["n"], axis=-1)]
    for name, perm in (("q", [0, 2, 1, 3]), ("k", [0, 2, 3, 1]), ("v", [0, 2, 1, 3])):
        nodes += [
            node("MatMul", ["n", f"w{name}"], [f"{name}2"]),
            node("Reshape", [f"{name}2", "heads"], [f"{name}4"]),
            node("Transpose", [f"{name}4"], [name], perm=perm),
        ]
    nodes += [
        node("MatMul", ["q", "k"], ["s"]),
        node("Div", ["s", "scale"], ["scaled"]),
        node("Softmax", ["scaled"], ["p"], axis=-1),
        node("MatMul", ["p", "v"], ["o4"]),
        node("Transpose", ["o4"], ["o"], perm=[0, 2, 1, 3]),
        node("Reshape", ["o", "merged"], ["y"]),
    ]
    weights = {f"w{n}": RNG.standard_normal((HIDDEN, HIDDEN)).astype(np.float32) / 8 for n in "qkv"}
    return make_model(
        nodes,
        [("x", TensorProto.FLOAT, ["batch", "seq", HIDDEN])],
        [("y", TensorProto.FLOAT, ["batch", "seq", HIDDEN])],
        initializers={
            **weights,
            "gamma": RNG.standard_normal(HIDDEN).astype(np.float32),
            "beta": RNG.standard_normal(HIDDEN).astype(np.float32),
            "heads": np.array([0, 0, HEADS, HEAD], np.int64),
            "merged": np.array([0, 0, HIDDEN], np.int64),
            "scale": np.array(np.sqrt(HEAD), np.float32),
        },
    )


@pytest.fixture(scope="module")
def attention():
    model = attention_model()
    return model, tvmopt.compile(model, dims={"batch": (1, 2), "seq": (1, 128)})


@pytest.mark.parametrize("batch, seq", [(1, 1), (1, 7), (2, 33), (1, 128)])
def test_one_attention_library_matches_onnxruntime_at_every_length(attention, batch, seq):
    model, compiled = attention
    x = RNG.standard_normal((batch, seq, HIDDEN)).astype(np.float32)
    assert_matches_ort(model, compiled, {"x": x})


def test_every_symbolic_matmul_keeps_the_matmul_rule(attention):
    # Q/K/V, Q @ K^T (rows and columns symbolic) and P @ V (reduction symbolic)
    kernels = attention[1].metadata.extra["kernels"]
    rules = {name: str(k["rule"]) for name, k in kernels.items() if "matmul" in name}
    assert len(rules) >= 3 and set(rules.values()) == {"Matmul"}, rules


def lane_divisions_by(script: str, var: str) -> list[str]:
    """The block bindings in `script` that divide a vectorized loop's index by an extent
    involving `var`: 64-bit divisions for every lane, which LLVM cannot vectorize."""
    vectors = re.findall(r"for (\w+) in T\.vectorized", script)
    division = re.compile(rf"(//|%) \(?[^,]*\b{var}\b")
    return [line.strip() for line in script.splitlines() if "T.axis" in line
            and any(v in line for v in vectors) and division.search(line)]  # fmt: skip


def test_symbolic_transpose_vectorizes_a_constant_tail():
    n = tirx.Var("n", "int64")
    x = te.placeholder((n, 3, 12, 32), name="x")
    y = te.compute((3, n, 12, 32), lambda a, b, c, d: x[b, a, c, d], name="y")
    func = te.create_prim_func([x, y])
    script = Fallback().apply(func, resolve_target("llvm"), False).mod["main"].script()
    assert "T.vectorized" in script
    # before: one fused loop, each lane's indices divided out by n * 384 and n * 32
    assert lane_divisions_by(script, "n") == []


def test_head_split_runs_its_symbolic_rows_serially_inside_the_heads():
    # [n, 3 x 12 heads, 32] -> [3, 12, n, 32] (the QKV split): parallel over the 36 heads of
    # constant count, the n rows serial inside, so that no row's index is divided out of a
    # fused one by n (MiniLM's QKV bias + split at 384 tokens took twice the static time)
    n = tirx.Var("n", "int64")
    x = te.placeholder((n, 36, 32), name="x")
    y = te.compute((3, 12, n, 32), lambda a, h, s, d: x[s, a * 12 + h, d] + 1.0, name="y")
    target = resolve_target("llvm")
    func = Fallback().apply(te.create_prim_func([x, y]), target, False).mod["main"]
    script = func.script()
    assert re.search(r"T\.parallel\((T\.int64\()?36\b", script), script
    assert "T.vectorized" in script
    library = tvm.compile(func.with_attr("global_symbol", "main"), target=target)
    for length in (1, 17, 384):
        a = RNG.standard_normal((length, 36, 32)).astype(np.float32)
        out = tvm.runtime.tensor(np.zeros((3, 12, length, 32), np.float32))
        library(tvm.runtime.tensor(a), out)
        expected = a.reshape(length, 3, 12, 32).transpose(1, 2, 0, 3) + 1
        np.testing.assert_array_equal(out.numpy(), expected)


def test_scores_matmul_copies_padded_keys_once_and_scales_apart():
    n = tirx.Var("n", "int64")
    q = te.placeholder((1, HEADS, n, HEAD), name="q")
    k = te.placeholder((1, HEADS, HEAD, n), name="k")
    r = te.reduce_axis((0, HEAD), name="r")
    s = te.compute((1, HEADS, n, n), lambda b, h, i, j: te.sum(q[b, h, i, r] * k[b, h, r, j],
                   axis=r), name="matmul")  # fmt: skip
    y = te.compute(s.shape, lambda *i: s(*i) / 4.0, name="T_divide")
    func = te.create_prim_func([q, k, y])
    sch = Matmul().apply(func, resolve_target("llvm"), False)
    assert sch is not None, "the Matmul rule declined Q @ K^T with symbolic columns"
    update = sch.get(sch.get_sblock("matmul_update"))
    read = {r.source.name for r in update.reads}
    assert "k" not in read and "k_pad" in read, read  # B read from its padded copy
    # the scale runs over the padded product after the tiles, in whole vectors: at the tile, its
    # predicate on the column scalarized it; here the last, predicated vector is peeled off
    # (the hint asks LoopPartition to)
    script = sch.mod["main"].script()
    scale_nest = script[: script.index('T.sblock("T_divide")')].rsplit("T.parallel", 1)[1]
    assert "pragma_loop_partition_hint" in scale_nest and "T.vectorized" in scale_nest


def test_a_single_symbolic_loop_stays_parallel_and_computes_every_length():
    n = tirx.Var("n", "int64")
    x = te.placeholder((n,), name="x")
    y = te.compute((n,), lambda i: x[i] * 2.0, name="y")
    target = resolve_target("llvm")
    func = Fallback().apply(te.create_prim_func([x, y]), target, False).mod["main"]
    assert "T.parallel" in func.script() and "T.vectorized" in func.script()
    library = tvm.compile(func.with_attr("global_symbol", "main"), target=target)
    for length in (1, 7, 33):
        a = RNG.standard_normal(length).astype(np.float32)
        out = tvm.runtime.tensor(np.zeros(length, np.float32))
        library(tvm.runtime.tensor(a), out)
        np.testing.assert_array_equal(out.numpy(), a * 2)
