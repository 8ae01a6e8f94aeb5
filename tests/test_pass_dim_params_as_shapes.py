"""passes/dim_params_as_shapes.py: positions = arange(seq) + past, GPT-2's position ids with a
cache, fuse into one function whose `past` parameter FuseTIR would define twice. After the pass
the dim is a shape parameter, FuseTIR succeeds, and the model matches ONNX Runtime."""

import numpy as np
import pytest
from onnx import TensorProto, helper
from tvm import relax

import tvmopt
from tvmopt._tvm import tvm
from tvmopt.frontend.onnx import import_model, prepare
from tvmopt.passes.dim_params_as_shapes import dim_params_as_shapes
from tvmopt.passes.rewrite import is_primitive

from .helpers import assert_matches_ort, make_model


def positions_model(offset_by_past: bool = True):
    """Range(0, seq) + Shape(past)[0]: the positions after a past of `past` tokens."""
    node, scalar = helper.make_node, helper.make_tensor
    nodes = [
        node("Constant", [], ["zero"], value=scalar("zero", TensorProto.INT64, [], [0])),
        node("Constant", [], ["one"], value=scalar("one", TensorProto.INT64, [], [1])),
        node("Shape", ["ids"], ["ids_shape"]),
        node("Gather", ["ids_shape", "zero"], ["seq"]),
        node("Range", ["zero", "seq", "one"], ["steps"]),
        node("Shape", ["past"], ["past_shape"]),
        node("Gather", ["past_shape", "zero"], ["past_length"]),
        node("Add", ["steps", "past_length" if offset_by_past else "one"], ["positions"]),
    ]  # fmt: skip
    return make_model(nodes, [("ids", TensorProto.INT64, ["seq"]),
                              ("past", TensorProto.FLOAT, ["p", 4])],
                      [("positions", TensorProto.INT64, ["seq"])])  # fmt: skip


def fused(model):
    """The imported model, legalized and fused as the CPU pipeline does it."""
    mod = import_model(prepare(model))
    passes = [relax.transform.LegalizeOps(), relax.transform.AnnotateTIROpPattern(),
              relax.transform.FuseOps()]  # fmt: skip
    return tvm.transform.Sequential(passes)(mod)


def dim_params(mod) -> list:
    return [param for func in mod.functions.values()
            if isinstance(func, relax.Function) and is_primitive(func)
            for param in func.params if tvm.ir.is_prim_var(param)]  # fmt: skip


def test_the_dim_becomes_a_shape_parameter_and_fuse_tir_succeeds():
    mod = fused(positions_model())
    assert dim_params(mod), "the fused function no longer takes the dim: is the pass needed?"
    with pytest.raises(Exception, match="VarRemapGet"):  # TVM 0.27's failure the pass avoids
        relax.transform.FuseTIR()(mod)
    rewritten = dim_params_as_shapes(mod)
    assert not dim_params(rewritten)
    relax.transform.FuseTIR()(rewritten)


def test_a_module_without_dim_parameters_is_left_alone():
    mod = fused(positions_model(offset_by_past=False))
    assert not dim_params(mod)
    tvm.ir.assert_structural_equal(dim_params_as_shapes(mod), mod)


def test_positions_after_a_past_match_onnxruntime():
    model = positions_model()
    compiled = tvmopt.compile(model, dims={"seq": "1..16", "p": "0..16"})
    for seq, past in [(1, 0), (5, 3), (16, 16)]:
        feeds = {"ids": np.zeros(seq, np.int64), "past": np.zeros((past, 4), np.float32)}
        assert_matches_ort(model, compiled, feeds)
