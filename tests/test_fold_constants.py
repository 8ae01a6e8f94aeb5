"""fold_constants: what folds and what must not, and the TVM importer failures folding avoids."""

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper, shape_inference
from onnx.reference import ReferenceEvaluator

import tvmopt
from tvmopt.frontend import fold_constants as fold_constants_module
from tvmopt.frontend.fold_constants import GROWTH_LIMIT_BYTES, fold_constants

from .helpers import assert_matches_ort, make_model

F, I64 = TensorProto.FLOAT, TensorProto.INT64


def op_types(model: onnx.ModelProto) -> list[str]:
    return [node.op_type for node in model.graph.node]


def initializer(model: onnx.ModelProto, name: str) -> np.ndarray:
    return next(numpy_helper.to_array(t) for t in model.graph.initializer if t.name == name)


def constant_of_shape(shape_input: str, output: str, value: float = 2.0) -> onnx.NodeProto:
    fill = numpy_helper.from_array(np.array([value], np.float32))
    return helper.make_node("ConstantOfShape", [shape_input], [output], value=fill)


# --- structure: what folds, and what must not -------------------------------------------------


def test_shape_of_a_static_input_folds_to_a_constant():
    model = make_model(
        [helper.make_node("Shape", ["x"], ["s"]), helper.make_node("Reshape", ["x", "s"], ["y"])],
        [("x", F, [2, 3])],
        [("y", F, [2, 3])],
    )
    folded = fold_constants(model)
    assert op_types(folded) == ["Reshape"]
    np.testing.assert_array_equal(initializer(folded, "s"), [2, 3])


def test_shape_of_a_dynamic_dim_does_not_fold():
    model = make_model(
        [helper.make_node("Shape", ["x"], ["s"]), helper.make_node("Reshape", ["x", "s"], ["y"])],
        [("x", F, ["batch", 3])],
        [("y", F, ["batch", 3])],
    )
    folded = fold_constants(model)
    assert op_types(folded) == ["Shape", "Reshape"]
    assert not folded.graph.initializer


def test_random_ops_do_not_fold():
    # no inputs, so "all inputs constant" holds; folding would freeze one sample forever
    model = make_model(
        [
            helper.make_node("RandomNormal", [], ["r"], shape=[2, 3], seed=1.0),
            helper.make_node("Add", ["x", "r"], ["y"]),
        ],
        [("x", F, [2, 3])],
        [("y", F, [2, 3])],
    )
    assert op_types(fold_constants(model)) == ["RandomNormal", "Add"]


def generator_model(elements: int) -> onnx.ModelProto:
    return make_model(
        [constant_of_shape("s", "c"), helper.make_node("Add", ["x", "c"], ["y"])],
        [("x", F, [elements])],
        [("y", F, [elements])],
        initializers={"s": np.array([elements], np.int64)},
    )


def _if_2d() -> onnx.NodeProto:
    """If is_2d then y = x + 1 else y = x * 2; the branches read x from the outer graph."""
    one = numpy_helper.from_array(np.array(1.0, np.float32), "one")
    then = helper.make_graph([helper.make_node("Add", ["x", "one"], ["t"])], "then", [],
                             [helper.make_tensor_value_info("t", F, [2])], [one])  # fmt: skip
    two = numpy_helper.from_array(np.array(2.0, np.float32), "two")
    other = helper.make_graph([helper.make_node("Mul", ["x", "two"], ["e"])], "else", [],
                              [helper.make_tensor_value_info("e", F, [2])], [two])  # fmt: skip
    return helper.make_node("If", ["is_2d"], ["y"], then_branch=then, else_branch=other)


@pytest.mark.parametrize("rank, expected", [(2, [2.0, 3.0]), (3, [2.0, 4.0])])
def test_an_if_on_a_constant_condition_becomes_the_branch_taken(rank, expected):
    nodes = [
        helper.make_node("Size", ["s"], ["n"]),
        helper.make_node("Constant", [], ["k"], value_int=2),
        helper.make_node("Equal", ["n", "k"], ["is_2d"]),
        _if_2d(),
    ]
    model = make_model(nodes, [("x", F, [2]), ("s", I64, [rank])], [("y", F, [2])])
    folded = fold_constants(model)
    assert "If" not in op_types(folded)
    x = np.array([1.0, 2.0], np.float32)
    got = ReferenceEvaluator(folded).run(None, {"x": x})[0]
    np.testing.assert_array_equal(got, expected)


def test_an_if_on_a_computed_condition_stays():
    nodes = [helper.make_node("Greater", ["x0", "x0"], ["is_2d"]), _if_2d()]
    model = make_model(nodes, [("x", F, [2]), ("x0", F, []), ("s", I64, [2])], [("y", F, [2])])
    assert "If" in op_types(fold_constants(model))


def test_oversized_generator_does_not_fold():
    elements = GROWTH_LIMIT_BYTES // 4 + 4  # float32: past the limit plus the 8-byte shape input
    assert op_types(fold_constants(generator_model(elements))) == ["ConstantOfShape", "Add"]


def test_generator_within_the_limit_folds():
    folded = fold_constants(generator_model(1024))
    assert op_types(folded) == ["Add"]
    np.testing.assert_array_equal(initializer(folded, "c"), np.full(1024, 2.0, np.float32))


def test_huge_generator_is_refused_before_it_is_evaluated(monkeypatch):
    # 40 GB if it were ever materialized: the size shape inference proves must refuse it first
    model = make_model(
        [constant_of_shape("s", "c"), helper.make_node("Shape", ["c"], ["y"])],
        [("x", F, [1])],
        [("y", I64, [2])],
        initializers={"s": np.array([100_000, 100_000], np.int64)},
    )
    evaluated = []

    def recording_evaluator(node, **kwargs):
        evaluated.append(node.op_type)
        raise RuntimeError("not evaluated in this test")

    monkeypatch.setattr(fold_constants_module, "ReferenceEvaluator", recording_evaluator)
    folded = fold_constants(shape_inference.infer_shapes(model, data_prop=True))
    # the Shape folds from inferred shapes alone (into a Constant node: y is a graph output),
    # which leaves the generator dead; it is never evaluated
    assert op_types(folded) == ["Constant"]
    assert evaluated == []


# --- exporter patterns TVM 0.27 fails to import unless they are folded -------------------------


def cos_with_empty_shape() -> onnx.ModelProto:
    """ConstantOfShape(shape=[]) makes a scalar; torch writes it for `torch.ones(())`."""
    return make_model(
        [constant_of_shape("s", "c"), helper.make_node("Add", ["x", "c"], ["y"])],
        [("x", F, [2, 3])],
        [("y", F, [2, 3])],
        initializers={"s": np.zeros([0], np.int64)},
    )


def cos_with_shape_of_a_scalar() -> onnx.ModelProto:
    """The same, with the empty shape computed at run time, as exporters write it."""
    return make_model(
        [
            helper.make_node("ReduceSum", ["x"], ["total"], keepdims=0),
            helper.make_node("Shape", ["total"], ["s"]),
            constant_of_shape("s", "c"),
            helper.make_node("Add", ["x", "c"], ["y"]),
        ],
        [("x", F, [2, 3])],
        [("y", F, [2, 3])],
    )


def reshape_of_a_shape_scalar() -> onnx.ModelProto:
    """Dynamo's `view(batch * 3, -1)`: Shape -> Squeeze -> Mul -> Reshape([1]) -> Concat."""
    nodes = [
        helper.make_node("Shape", ["x"], ["batch"], start=0, end=1),
        helper.make_node("Squeeze", ["batch"], ["b"]),
        helper.make_node("Mul", ["b", "three"], ["rows"]),
        helper.make_node("Reshape", ["rows", "one"], ["rows1"]),
        helper.make_node("Concat", ["rows1", "minus_one"], ["shape"], axis=0),
        helper.make_node("Reshape", ["x", "shape"], ["y"]),
    ]
    constants = {"three": np.array(3, np.int64), "one": np.array([1]), "minus_one": np.array([-1])}
    return make_model(nodes, [("x", F, [2, 6])], [("y", F, [6, 2])], initializers=constants)


def constant_with_value_ints() -> onnx.ModelProto:
    """Constant nodes written with value_ints rather than value, as onnxscript emits them."""
    return make_model(
        [
            helper.make_node("Constant", [], ["s"], value_ints=[3, 2]),
            helper.make_node("Reshape", ["x", "s"], ["y"]),
        ],
        [("x", F, [2, 3])],
        [("y", F, [3, 2])],
    )


# each case, and what TVM 0.27's importer raises on it without our folding
TVM_FAILURES = {
    "cos_with_empty_shape": (cos_with_empty_shape, "broadcast_to expects the input shape"),
    "cos_with_shape_of_a_scalar": (cos_with_shape_of_a_scalar, "broadcast_to expects"),
    "reshape_of_a_shape_scalar": (reshape_of_a_shape_scalar, "Reshape requires the input data"),
    "constant_with_value_ints": (constant_with_value_ints, "no value in Constant"),
}


@pytest.mark.parametrize("case", TVM_FAILURES)
def test_tvm_alone_fails_on_the_pattern(case):
    from tvm.relax.frontend.onnx import from_onnx

    build, message = TVM_FAILURES[case]
    with pytest.raises(Exception, match=message):
        from_onnx(build())
    # if this starts failing, TVM imports the pattern itself and the case documents history only


@pytest.mark.parametrize("case", TVM_FAILURES)
def test_tvmopt_folds_the_pattern_and_matches_onnxruntime(case):
    model = TVM_FAILURES[case][0]()
    assert_matches_ort(model, tvmopt.compile(model))
