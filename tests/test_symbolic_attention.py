"""Attention over a symbolic sequence length with the static kernels' schedules: softmax's max
and sum in vector-wide partials plus an n % lanes tail (symbolic_softmax.py), Q @ K^T's scale
at the tile with the last column tile peeled (rule_matmul.py). Each compiled for the host
(AVX-512) and the AVX2 build, checked against ONNX Runtime at lengths that are and are not
multiples of either vector width."""

import re

import numpy as np
import pytest
import tvm
from onnx import TensorProto, helper
from tvm import te, tirx
from tvm.s_tir.pipeline import default_s_tir_pipeline

import tvmopt
from tvmopt.backends import resolve_target
from tvmopt.backends.llvm.rule_fallback import Fallback
from tvmopt.backends.llvm.rule_matmul import Matmul
from tvmopt.backends.llvm.rule_row_reduce import RowReduction
from tvmopt.backends.llvm.symbolic_softmax import symbolic_softmax_te
from tvmopt.backends.llvm.tir_pipeline import cpu_tir_pipeline
from tvmopt.backends.llvm.transposed_matmul import nt_matmul

from .helpers import assert_matches_ort, make_model

RNG = np.random.default_rng(0)
HEADS, HEAD = 4, 16
AVX2 = {"kind": "llvm", "mcpu": "x86-64-v3"}
TARGETS = {"host": None, "avx2": AVX2}
LENGTHS = (1, 8, 16, 17, 130)  # one vector of AVX2 and of AVX-512; neither; several + a tail


def int64(value: int):
    """A constant dim as the ONNX importer gives them (mixing int32 with n's int64 fails)."""
    return tirx.IntImm("int64", value)


def masked_softmax_model():
    node = helper.make_node
    nodes = [node("Add", ["scores", "mask"], ["masked"]),
             node("Softmax", ["masked"], ["p"], axis=-1)]  # fmt: skip
    return make_model(
        nodes,
        [("scores", TensorProto.FLOAT, [1, HEADS, "n", "n"]),
         ("mask", TensorProto.FLOAT, [1, 1, 1, "n"])],
        [("p", TensorProto.FLOAT, [1, HEADS, "n", "n"])],
    )  # fmt: skip


def scaled_scores_model():
    node = helper.make_node
    nodes = [node("Transpose", ["k"], ["kt"], perm=[0, 1, 3, 2]),
             node("MatMul", ["q", "kt"], ["s"]), node("Div", ["s", "scale"], ["y"])]  # fmt: skip
    shape = ["batch", HEADS, "n", HEAD]
    return make_model(
        nodes,
        [("q", TensorProto.FLOAT, shape), ("k", TensorProto.FLOAT, shape)],
        [("y", TensorProto.FLOAT, ["batch", HEADS, "n", "n"])],
        initializers={"scale": np.array(np.sqrt(HEAD), np.float32)},
    )


def bias_gelu_model():
    """An FFN's first layer as torch exports it: x @ W + b, then GELU's erf form."""
    node = helper.make_node
    nodes = [node("MatMul", ["x", "w"], ["m"]), node("Add", ["m", "b"], ["h"]),
             node("Div", ["h", "root2"], ["d"]), node("Erf", ["d"], ["e"]),
             node("Add", ["e", "one"], ["e1"]), node("Mul", ["h", "e1"], ["g"]),
             node("Mul", ["g", "half"], ["y"])]  # fmt: skip
    constants = {"root2": np.sqrt(2), "one": 1.0, "half": 0.5}
    return make_model(
        nodes,
        [("x", TensorProto.FLOAT, [1, "n", 32])],
        [("y", TensorProto.FLOAT, [1, "n", 96])],
        initializers={
            "w": RNG.standard_normal((32, 96)).astype(np.float32) / 4,
            "b": RNG.standard_normal(96).astype(np.float32),
            **{name: np.array(value, np.float32) for name, value in constants.items()},
        },
    )


@pytest.fixture(scope="module", params=list(TARGETS))
def softmax_library(request):
    model = masked_softmax_model()
    return model, tvmopt.compile(model, target=TARGETS[request.param], dims={"n": (1, 256)})


@pytest.fixture(scope="module", params=list(TARGETS))
def scores_library(request):
    model = scaled_scores_model()
    dims = {"batch": (1, 2), "n": (1, 256)}
    return model, tvmopt.compile(model, target=TARGETS[request.param], dims=dims)


@pytest.mark.parametrize("n", LENGTHS)
def test_symbolic_masked_softmax_matches_onnxruntime(softmax_library, n):
    model, compiled = softmax_library
    scores = RNG.standard_normal((1, HEADS, n, n)).astype(np.float32) * 4
    mask = np.where(RNG.random((1, 1, 1, n)) < 0.3, -1e4, 0).astype(np.float32)
    mask[..., 0] = 0  # one key left per row
    assert_matches_ort(model, compiled, {"scores": scores, "mask": mask})
    assert compiled.metadata.extra["kernels"]  # compiled with our rules, not TVM's defaults


@pytest.mark.parametrize("batch, n", [(1, 1), (2, 17), (1, 32), (1, 130)])
def test_symbolic_scaled_scores_match_onnxruntime(scores_library, batch, n):
    model, compiled = scores_library
    q, k = (RNG.standard_normal((batch, HEADS, n, HEAD)).astype(np.float32) for _ in "qk")
    assert_matches_ort(model, compiled, {"q": q, "k": k})
    rules = {str(k["rule"]) for name, k in compiled.metadata.extra["kernels"].items()
             if "NT_matmul" in name}  # fmt: skip
    assert rules == {"Matmul"}, rules


@pytest.mark.parametrize("isa", list(TARGETS))
def test_symbolic_bias_gelu_matches_onnxruntime(isa):
    model = bias_gelu_model()
    compiled = tvmopt.compile(model, target=TARGETS[isa], dims={"n": (1, 256)})
    for n in LENGTHS:
        x = RNG.standard_normal((1, n, 32)).astype(np.float32)
        assert_matches_ort(model, compiled, {"x": x})


@pytest.mark.parametrize("isa", list(TARGETS))
def test_symbolic_rows_of_whole_vectors_run_as_one_vector_loop(isa):
    # rows of a symbolic count over a constant width of whole vectors (the packed FFN output's
    # bias + GELU): one loop over every vector, as a static nest; per row, it ran 5x slower
    target = resolve_target(TARGETS[isa] or "llvm")
    lanes = 16 if isa == "host" else 8
    n = tirx.Var("n", "int64")
    x = te.placeholder((n, int64(48)), name="x")
    y = te.compute(x.shape, lambda i, j: x[i, j] * 2.0, name="y")
    script = Fallback().apply(te.create_prim_func([x, y]), target, False).mod["main"].script()
    assert script.count("for ") == 2 and "T.parallel(n * T.int64(" in script, script
    assert re.search(rf"T\.vectorized\((T\.int64\()?{lanes}\b", script), script
    assert "T.where" not in script  # 48 * n splits into whole vectors exactly


@pytest.mark.parametrize("isa", list(TARGETS))
def test_softmax_reductions_run_in_vector_partials_of_the_targets_width(isa):
    target = resolve_target(TARGETS[isa] or "llvm")
    lanes = 16 if isa == "host" else 8
    n = tirx.Var("n", "int64")
    x = te.placeholder((int64(HEADS), n, n), name="x")
    func = te.create_prim_func([x, symbolic_softmax_te(x, lanes)])
    script = RowReduction().apply(func, target, False).mod["main"].script()
    for name in ("lanemax", "lanesum"):  # whole vectors of the row: a vector loop, no predicate
        body = script[script.index(f'T.sblock("T_softmax_{name}_update")') - 200 :]
        assert re.search(rf"T\.vectorized\((T\.int64\()?{lanes}\b", body.split("T.sblock")[0])
        assert "T.where" not in body.split("T.writes")[0]
    # the tails (n % lanes elements, none where n is a multiple) start from their init, which
    # would otherwise be skipped with the loop and leave the tail unset
    assert 'T.sblock("T_softmax_tail_max_init")' in script
    assert 'T.sblock("T_softmax_tail_sum_init")' in script


def test_scores_with_symbolic_columns_scale_at_the_tile_and_peel_the_last():
    n = tirx.Var("n", "int64")
    q, k = (te.placeholder((int64(2), int64(HEADS), n, int64(HEAD)), name=name) for name in "qk")
    s = nt_matmul(q, k, [0, 1, 3, 2])
    y = te.compute(s.shape, lambda *i: s(*i) * 0.25, name="T_multiply")
    sch = Matmul().apply(te.create_prim_func([q, k, y]), resolve_target("llvm"), False)
    assert sch is not None, "the Matmul rule declined Q @ K^T with symbolic rows and columns"
    script = sch.mod["main"].script()
    # one nest: the scale is written from the register tile, not in a pass of its own
    assert script.count("T.parallel") == 1, script
    assert "pragma_loop_partition_hint" in script


def test_whole_tiles_of_the_scores_write_in_vectors_after_loop_partition():
    # both dims symbolic: LoopPartition leaves the whole tiles' write under Or(True, lane == 0),
    # which VectorizeLoop scalarized; our TIR pipeline simplifies it first (tir_pipeline.py),
    # so only the last column tile (ragged by nature) writes element by element
    n = tirx.Var("n", "int64")
    q, k = (te.placeholder((int64(2), int64(HEADS), n, int64(HEAD)), name=name) for name in "qk")
    s = nt_matmul(q, k, [0, 1, 3, 2])
    y = te.compute(s.shape, lambda *i: s(*i) * 0.25, name="T_multiply")
    target = resolve_target("llvm")
    func = te.create_prim_func([q, k, y]).with_attr("global_symbol", "main")
    scheduled = Matmul().apply(func, target, False).mod
    scheduled = tvm.tirx.transform.BindTarget(target.with_host(target))(scheduled)

    def scalar_writes(pipeline) -> int:
        with tvm.transform.PassContext(opt_level=3):
            script = pipeline()[0](scheduled).script()
        return len(re.findall(r"for ax2, ax3_s in", script))

    assert scalar_writes(cpu_tir_pipeline) == 1
    assert scalar_writes(default_s_tir_pipeline) > 1  # TVM's own: the whole tiles' too
