"""SafeIndexing: run-time gather indices clamp instead of reading out of bounds."""

import numpy as np
import pytest
import tvm
from onnx import TensorProto, helper
from tvm import relax

import tvmopt
from tvmopt.passes import OPT_LEVELS
from tvmopt.passes.safe_indexing import SafeIndexing

from .helpers import assert_matches_ort, make_model
from .passes_helpers import const, f32, module

TABLE = np.arange(20, dtype=np.float32).reshape(10, 2)


def test_runtime_indices_clip_and_constant_ones_stay_fast():
    ids = relax.Var("ids", relax.TensorType((3,), "int64"))

    def body(bb, table, ids):
        looked_up = bb.emit(relax.op.take(table, ids, axis=0))
        fixed = bb.emit(relax.op.take(table, const([1, 2], "int64"), axis=0))
        return relax.Tuple([looked_up, fixed])

    def expected(bb, table, ids):
        looked_up = bb.emit(relax.op.take(table, ids, axis=0, mode="clip"))
        fixed = bb.emit(relax.op.take(table, const([1, 2], "int64"), axis=0))
        return relax.Tuple([looked_up, fixed])

    params = {"table": f32(10, 2), "ids": ids.ty}
    tvm.ir.assert_structural_equal(SafeIndexing(module(params, body)), module(params, expected))


def embedding_model():
    return make_model(
        [helper.make_node("Gather", ["table", "ids"], ["y"], axis=0)],
        [("ids", TensorProto.INT64, [4])],
        [("y", TensorProto.FLOAT, [4, 2])],
        initializers={"table": TABLE},
    )


@pytest.mark.parametrize("opt_level", OPT_LEVELS)
def test_out_of_range_token_ids_are_clamped_at_every_level(opt_level):
    compiled = tvmopt.compile(embedding_model(), opt_level=opt_level)
    out = compiled.run({"ids": np.array([0, 9, 10_000_000, 3], np.int64)})["y"]
    np.testing.assert_array_equal(out, TABLE[[0, 9, 9, 3]])


def test_in_range_lookups_match_onnxruntime():
    model = embedding_model()
    assert_matches_ort(model, tvmopt.compile(model), {"ids": np.array([1, -1, 5, 0], np.int64)})
