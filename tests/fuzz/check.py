"""Differential testing: a model compiled by tvmopt at -O0 and -O3 (and int8 where it has conv or
matmul layers) against ONNX Runtime on the same inputs. A failure is a crash (anything but a
TvmoptError), a refusal (a TvmoptError on a valid graph), or a mismatch; `reduce` cuts a failing
graph down to the smallest part of it that fails the same way."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
from onnx import helper, shape_inference

import tvmopt
from tvmopt.passes.quantize.report import cosine

from ..helpers import ort_outputs
from .graphs import GEMM_OPS, feeds

# float32: max |tvmopt - ORT| within this share of the output's largest magnitude (at least 1);
# reassociated sums and -O3's fast transcendental functions differ in the last bits only
FP32_TOLERANCE = 2e-3
INT8_MIN_COSINE = 0.95  # int8 against float32 ONNX Runtime: calibrated on 8 samples
INT8_SAMPLES = 8


@dataclass(frozen=True)
class Failure:
    kind: str  # crash | refused | mismatch
    variant: str  # O0 | O3 | int8
    detail: str

    def same_as(self, other: Failure | None) -> bool:
        return other is not None and (self.kind, self.variant) == (other.kind, other.variant)


def reference(model: onnx.ModelProto, inputs: dict) -> dict[str, np.ndarray]:
    """ONNX Runtime's outputs (a name of its own, so a test can swap the reference out)."""
    return ort_outputs(model, inputs)


def check(model: onnx.ModelProto, int8: bool = True) -> Failure | None:
    """The first way tvmopt fails on `model`, or None."""
    inputs = feeds(model)
    expected = reference(model, inputs)
    variants = {"O0": {"opt_level": 0}, "O3": {"opt_level": 3}}
    if int8 and GEMM_OPS & {node.op_type for node in model.graph.node}:
        samples = [feeds(model, seed) for seed in range(1, INT8_SAMPLES + 1)]
        variants["int8"] = {"quantize": "int8", "calib": samples}
    for variant, options in variants.items():
        failure = _check_variant(model, inputs, expected, variant, options)
        if failure is not None:
            return failure
    return None


def _check_variant(model, inputs, expected, variant: str, options: dict) -> Failure | None:
    try:
        actual = tvmopt.compile(model, **options).run(inputs)
    except tvmopt.TvmoptError as err:
        return Failure("refused", variant, f"{type(err).__name__}: {err}")
    except Exception as err:  # noqa: BLE001 - anything else is a crash, the thing looked for
        return Failure("crash", variant, f"{type(err).__name__}: {str(err).splitlines()[0][:300]}")
    for name, reference_value in expected.items():
        problem = _compare(variant, actual[name], reference_value)
        if problem:
            return Failure("mismatch", variant, f"output {name}: {problem}")
    return None


def _compare(variant: str, actual: np.ndarray, expected: np.ndarray) -> str | None:
    if actual.shape != expected.shape:
        return f"shape {actual.shape}, ONNX Runtime {expected.shape}"
    if variant == "int8":
        similarity = cosine(actual, expected)
        return None if similarity >= INT8_MIN_COSINE else f"int8 cosine {similarity:.4f}"
    scale = max(1.0, float(np.abs(expected).max(initial=0.0)))
    error = float(np.abs(actual - expected).max(initial=0.0))
    if error <= FP32_TOLERANCE * scale:
        return None
    return f"max error {error:.3g} at scale {scale:.3g}"


def reduce(model: onnx.ModelProto, failure: Failure) -> onnx.ModelProto:
    """The smallest graph cut from `model` that fails the same way: each node's output alone as
    the graph output, over the nodes it needs, fewest nodes first."""
    inferred = shape_inference.infer_shapes(model)
    types = {v.name: v for v in [*inferred.graph.value_info, *inferred.graph.output]}
    candidates = sorted((_cut(model, output, types) for node in model.graph.node
                         for output in node.output), key=lambda m: len(m.graph.node))  # fmt: skip
    for candidate in candidates:
        if failure.same_as(check(candidate, int8=failure.variant == "int8")):
            return candidate
    return model


def _cut(model: onnx.ModelProto, output: str, types: dict) -> onnx.ModelProto:
    producers = {out: node for node in model.graph.node for out in node.output}
    needed, frontier = set(), [output]
    while frontier:
        name = frontier.pop()
        node = producers.get(name)
        if node is not None and id(node) not in needed:
            needed.add(id(node))
            frontier.extend(node.input)
    nodes = [n for n in model.graph.node if id(n) in needed]
    used = {name for n in nodes for name in n.input}
    graph = helper.make_graph(
        nodes, model.graph.name, [i for i in model.graph.input if i.name in used], [types[output]],
        [t for t in model.graph.initializer if t.name in used],
    )  # fmt: skip
    return helper.make_model(graph, opset_imports=model.opset_import, ir_version=model.ir_version)
