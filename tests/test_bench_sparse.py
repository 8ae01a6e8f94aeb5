"""The `sparse` bench suite (benchmark/sparse_suite.py) and its contenders: pruned models
exported through the suite's cache, tvmopt dense beside tvmopt sparse, and DeepSparse in a Python
of its own, whose worker protocol is exercised here with a stand-in `deepsparse` module."""

import sys
import textwrap

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from tvmopt.benchmark.case import case_from_onnx
from tvmopt.benchmark.contenders import CONTENDERS, OnnxRuntime
from tvmopt.benchmark.deepsparse_peer import PYTHON_VARIABLE, DeepSparse, unavailable
from tvmopt.benchmark.harness import bench_case
from tvmopt.benchmark.models import SUITE, SUITES, SuiteModel, export
from tvmopt.benchmark.sparse_suite import magnitude_pruned

from .helpers import make_model

RNG = np.random.default_rng(0)


def matmul_model(k=64, n=64):
    weight = RNG.standard_normal((k, n)).astype(np.float32)
    return make_model([helper.make_node("MatMul", ["x", "w"], ["y"])],
                      [("x", TensorProto.FLOAT, [4, k])], [("y", TensorProto.FLOAT, [4, n])],
                      {"w": weight})  # fmt: skip


def weight_of(model) -> np.ndarray:
    return numpy_helper.to_array(model.graph.initializer[0])


def test_the_sparse_suite_holds_both_patterns_every_sparsity_and_the_dense_models():
    names = SUITES["sparse"]
    assert names[:2] == ["bert_base", "resnet50"]
    for pattern in ("unstructured", "1x8"):
        assert [f"bert_base_{pattern}_{s}" in names for s in (50, 80, 90, 95)] == [True] * 4
    assert {"resnet50_channels_30", "resnet50_channels_50"} <= set(names)
    assert all(name in SUITE for name in names)


def test_a_block_pruned_model_has_its_zeros_in_whole_1x8_blocks():
    weight = weight_of(magnitude_pruned(0.9, "1x8")(matmul_model()))
    blocks = weight.reshape(64, 8, 8)
    zero_blocks = (blocks == 0).all(axis=2)
    assert zero_blocks.mean() == pytest.approx(0.9, abs=0.02)
    assert ((blocks != 0).all(axis=2) | zero_blocks).all()  # no block half zero


def test_export_applies_the_transform_before_caching(tmp_path):
    def build():
        import torch

        torch.manual_seed(0)
        return torch.nn.Linear(32, 16), (torch.randn(2, 32),)

    model = SuiteModel("linear_80", build, "a pruned Linear", magnitude_pruned(0.8, None))
    weight = numpy_helper.to_array(
        next(t for t in onnx.load(export(model, tmp_path)).graph.initializer if t.dims == [16, 32])
    )
    assert (weight == 0).mean() == pytest.approx(0.8, abs=0.01)


def test_tvmopt_dense_and_sparse_both_match_onnx_runtime_on_a_pruned_model(tmp_path):
    path = tmp_path / "pruned.onnx"
    onnx.save(magnitude_pruned(0.9, None)(matmul_model(256, 256)), path)
    case = case_from_onnx("pruned", path)
    contenders = [OnnxRuntime(), CONTENDERS["llvm"](), CONTENDERS["llvm-dense"]()]
    results = bench_case(case, contenders, 1, 2, 0, log=lambda _: None)
    assert {r.contender: r.status for r in results} == dict.fromkeys(
        ["onnxruntime", "llvm", "llvm-dense"], "ok"
    )


def test_deepsparse_is_skipped_with_the_reason(monkeypatch):
    monkeypatch.delenv(PYTHON_VARIABLE, raising=False)
    assert PYTHON_VARIABLE in unavailable()
    monkeypatch.setenv(PYTHON_VARIABLE, sys.executable)  # tvmopt's Python: no deepsparse
    assert "import deepsparse` failed" in CONTENDERS["deepsparse"]().unavailable(None)


STAND_IN = """
    import numpy as np

    def compile_model(path, batch_size, num_cores):
        import onnx
        weight = onnx.numpy_helper.to_array(onnx.load(path).graph.initializer[0])
        return lambda inputs: [inputs[0] @ weight, inputs[0].sum(axis=1)]
"""


def test_the_worker_compiles_runs_and_times_in_its_own_process(tmp_path, monkeypatch):
    (tmp_path / "deepsparse.py").write_text(textwrap.dedent(STAND_IN))
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    monkeypatch.setenv(PYTHON_VARIABLE, sys.executable)
    assert unavailable() is None
    model = matmul_model(16, 8)
    engine = DeepSparse(model, batch=4, cores=1)
    x = RNG.standard_normal((4, 16)).astype(np.float32)
    try:
        product, sums = engine.run({"x": x})
        np.testing.assert_allclose(product, x @ weight_of(model), rtol=1e-6)
        np.testing.assert_allclose(sums, x.sum(axis=1), rtol=1e-6)
        assert engine.time_ms({"x": x}) > 0
    finally:
        engine.close()
