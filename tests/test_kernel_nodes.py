"""Which ONNX nodes each kernel covers: the importer names every Relax call after its node (its
span), our passes carry the names through their rewrites (passes/spans.py), and the kernel
record maps them onto the kernels FuseOps and FuseTIR make (backends/kernel_nodes.py)."""

from __future__ import annotations

import contextlib
import re

import numpy as np
import pytest
from onnx import TensorProto, helper

import tvmopt
from tvmopt._tvm import tvm
from tvmopt.frontend import onnx as onnx_frontend
from tvmopt.passes.spans import node_names
from tvmopt.passes.uses import bindings

from .helpers import make_model


def _imported(model):
    return onnx_frontend.import_model(onnx_frontend.prepare(model))


def test_import_names_each_call_after_its_node_and_changes_nothing_else(demo_model, monkeypatch):
    spanned = _imported(demo_model)
    monkeypatch.setattr("tvmopt.frontend.node_spans.spanning_nodes", contextlib.nullcontext)
    plain = _imported(demo_model)
    tvm.ir.assert_structural_equal(spanned, plain)  # spans aside
    assert not any(node_names(value.span) for value in bindings(plain["main"]).values())
    calls = [value for value in bindings(spanned["main"]).values()
             if isinstance(value, tvm.relax.Call)]  # fmt: skip
    names = {node.name for node in demo_model.graph.node}
    assert calls and all(len(node_names(call.span)) == 1 for call in calls)
    assert {name for call in calls for name in node_names(call.span)} == names


def test_each_demo_kernel_names_the_nodes_it_computes(compiled_demo, demo_model):
    kernels = compiled_demo.metadata.extra["kernels"]
    by_rule = {record["rule"]: set(record["nodes"]) for record in kernels.values()}
    # the batch norm is folded into the first conv's weights; each relu into its conv
    assert by_rule["Conv2dNHWC"] == {"conv1", "bn1", "relu1"}
    assert by_rule["Conv2dWinograd"] == {"conv2", "relu2"}
    assert by_rule["Matmul"] == {"fc"}
    named = {name for record in kernels.values() for name in record["nodes"]}
    assert named == {node.name for node in demo_model.graph.node}


def test_int8_kernels_name_their_nodes(demo_model):
    rng = np.random.default_rng(0)
    calib = [{"image": rng.standard_normal((1, 3, 64, 64)).astype(np.float32)} for _ in range(2)]
    compiled = tvmopt.compile(demo_model, quantize="int8", calib=calib)
    int8 = [record for record in compiled.metadata.extra["kernels"].values()
            if record["rule"] == "Int8Gemm"]  # fmt: skip
    assert {"conv1", "conv2", "fc"} <= {name for record in int8 for name in record["nodes"]}


def _blocks(count: int = 3):
    """`count` identical residual blocks (matmul, bias, SiLU, residual add): FuseOps merges
    their fused element-wise groups into one function, called once per block."""
    rng, nodes, weights, x = np.random.default_rng(0), [], {}, "x"
    for i in range(count):
        weights[f"w{i}"] = (rng.standard_normal((64, 64)) * 0.1).astype(np.float32)
        weights[f"b{i}"] = rng.standard_normal(64).astype(np.float32)
        nodes += [
            helper.make_node("MatMul", [x, f"w{i}"], [f"m{i}"], name=f"block{i}/matmul"),
            helper.make_node("Add", [f"m{i}", f"b{i}"], [f"a{i}"], name=f"block{i}/bias"),
            helper.make_node("Sigmoid", [f"a{i}"], [f"s{i}"], name=f"block{i}/sigmoid"),
            helper.make_node("Mul", [f"a{i}", f"s{i}"], [f"silu{i}"], name=f"block{i}/silu"),
            helper.make_node("Add", [f"silu{i}", x], [f"r{i}"], name=f"block{i}/residual"),
        ]
        x = f"r{i}"
    shape = (8, 64)
    return make_model(nodes, [("x", TensorProto.FLOAT, shape)], [(x, TensorProto.FLOAT, shape)],
                      weights)  # fmt: skip


def test_a_kernel_identical_blocks_share_names_every_block():
    kernels = tvmopt.compile(_blocks()).metadata.extra["kernels"]
    for name, record in kernels.items():
        blocks = {}
        for node in record["nodes"]:
            block, op = re.fullmatch(r"block(\d)/(\w+)", node).groups()
            blocks.setdefault(block, set()).add(op)
        assert set(blocks) == {"0", "1", "2"}, name  # every block's call of the kernel
        assert blocks["0"] == blocks["1"] == blocks["2"], name  # the same nodes in each
    named = {node for record in kernels.values() for node in record["nodes"]}
    assert len(named) == 15


@pytest.mark.parametrize("opt_level", [0, 1, 2])
def test_every_opt_level_names_the_nodes(demo_model, opt_level):
    kernels = tvmopt.compile(demo_model, opt_level=opt_level).metadata.extra["kernels"]
    named = {name for record in kernels.values() for name in record["nodes"]}
    assert {"conv1", "conv2", "fc", "softmax"} <= named
