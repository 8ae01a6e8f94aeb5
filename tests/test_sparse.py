"""Sparse constant weights (backends/llvm/sparse_weights.py): magnitude-pruned matmul weights
compile to the BSR or CSR kernel (kernel_sparse.py), the choice recorded per layer, and every
model matches ONNX Runtime; --sparse off keeps the dense path, a weight without zeros stays
dense, and the library holds the packed weight."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper

import tvmopt
from tests.helpers import assert_matches_ort, make_model
from tvmopt._tvm import tvm
from tvmopt.backends.kernel_record import KERNELS_RECORD
from tvmopt.backends.llvm import kernel_sparse
from tvmopt.backends.llvm.cpu import cpu_of
from tvmopt.backends.llvm.sparse_choice import choose, structure
from tvmopt.backends.llvm.sparse_weights import SPARSE_RECORD, SparseWeights
from tvmopt.backends.llvm.target import host_target
from tvmopt.errors import OptionError
from tvmopt.frontend.onnx import import_model
from tvmopt.passes.consts import value
from tvmopt.passes.uses import bindings, op_name

AVX2 = {"kind": "llvm", "mcpu": "x86-64-v3"}


def pruned(shape, sparsity: float, width: int = 1, seed: int = 0) -> np.ndarray:
    """A random weight [K, N] with the `sparsity` share of its 1 x `width` blocks of least L1
    norm zeroed (width 1: unstructured magnitude pruning)."""
    k, n = shape
    weight = np.random.default_rng(seed).standard_normal((k, n)).astype("float32") / np.sqrt(k)
    blocks = weight.reshape(k, n // width, width)
    norms = np.abs(blocks).sum(axis=2)
    keep = norms > np.quantile(norms, sparsity)
    return (blocks * keep[..., None]).reshape(k, n).astype("float32")


def layer_model(weight: np.ndarray, rows: int = 32, bias: bool = True):
    """x [1, rows, K] @ W (+ bias, then ReLU): a transformer's dense layer and its epilogue."""
    k, n = weight.shape
    nodes = [helper.make_node("MatMul", ["x", "w"], ["mm"], name="dense")]
    initializers = {"w": weight}
    if bias:
        nodes.append(helper.make_node("Add", ["mm", "b"], ["biased"], name="bias"))
        initializers["b"] = np.linspace(-1, 1, n, dtype="float32")
    nodes.append(helper.make_node("Relu", [nodes[-1].output[0]], ["y"], name="relu"))
    return make_model(nodes, [("x", TensorProto.FLOAT, (1, rows, k))],
                      [("y", TensorProto.FLOAT, (1, rows, n))], initializers)  # fmt: skip


def kernel_rules(compiled) -> set[str]:
    return {str(kernel["rule"]) for kernel in compiled.metadata.extra[KERNELS_RECORD].values()}


def layers(compiled) -> list[dict]:
    return compiled.metadata.extra.get(SPARSE_RECORD, [])


@pytest.mark.parametrize(("width", "rule"), [(1, "SparseCSR"), (8, "SparseBSR")])
def test_pruned_weights_run_sparse_kernels(width, rule):
    model = layer_model(pruned((128, 256), 0.95, width))
    compiled = tvmopt.compile(model, sparse="auto")
    (layer,) = layers(compiled)
    assert layer["kernel"] == rule[len("Sparse") :].lower()
    assert rule in kernel_rules(compiled)
    assert layer["density"] == pytest.approx(0.05, abs=0.01)
    (kernel,) = [k for k in compiled.metadata.extra[KERNELS_RECORD].values() if k["rule"] == rule]
    assert "dense" in kernel["nodes"]  # the ONNX node, for `tvmopt run --profile`
    assert 0 < kernel["flops"] <= 2 * 32 * 128 * 256 * 0.1  # stored blocks' work, not dense's
    assert_matches_ort(model, compiled)


@pytest.mark.parametrize(("width", "rows"), [(1, 24), (8, 197)])
def test_avx2_target_runs_sparse_kernels(width, rows):
    # 24 rows: CSR pads to 32; 197 (prime): BSR pads to whole tiles of 8
    model = layer_model(pruned((64, 128), 0.9, width), rows=rows)
    compiled = tvmopt.compile(model, target=AVX2, sparse="force")
    assert layers(compiled)[0]["kernel"] != "dense"
    assert_matches_ort(model, compiled)


def test_off_keeps_the_dense_kernel():
    model = layer_model(pruned((128, 256), 0.95))
    compiled = tvmopt.compile(model, sparse="off")
    assert not layers(compiled)
    assert not {"SparseBSR", "SparseCSR"} & kernel_rules(compiled)
    assert_matches_ort(model, compiled)


def test_weight_without_zeros_stays_dense_in_auto():
    model = layer_model(pruned((128, 256), 0.0) + 1e-3, bias=False)
    compiled = tvmopt.compile(model, sparse="auto")
    (layer,) = layers(compiled)
    assert (layer["kernel"], layer["why"], layer["density"]) == ("dense", "no zeros", 1.0)
    assert not {"SparseBSR", "SparseCSR"} & kernel_rules(compiled)


def test_force_takes_a_sparse_kernel_at_any_zero():
    weight = pruned((64, 128), 0.0)
    weight[0, 0] = 0.0
    model = layer_model(weight, rows=16)
    assert choose(structure(weight), 16, "auto", 16).kernel == "dense"
    compiled = tvmopt.compile(model, sparse="force")
    assert layers(compiled)[0]["kernel"] in ("bsr", "csr")
    assert_matches_ort(model, compiled)


def test_packed_library_is_smaller_than_dense(tmp_path):
    model = layer_model(pruned((512, 1024), 0.9, 8), rows=8)
    sizes = {}
    for mode in ("off", "force"):
        tvmopt.compile(model, sparse=mode).export(tmp_path / f"{mode}.so")
        sizes[mode] = (tmp_path / f"{mode}.so").stat().st_size
    assert sizes["force"] < 0.5 * sizes["off"], sizes  # 2 MiB of weight against ~0.2 packed


def test_structure_measures_blocks():
    weight = pruned((64, 128), 0.75, 8)
    measured = structure(weight)
    assert measured.stored[8] == pytest.approx(0.25, abs=0.02)
    assert measured.stored[4] == pytest.approx(measured.stored[8], abs=0.02)  # halves of blocks
    assert measured.stored[16] > measured.stored[8]


@pytest.mark.parametrize("width", [4, 8, 16])
def test_bsr_kernel_matches_numpy(width):
    weight = pruned((40, 64), 0.8, width, seed=1)
    data, indices, indptr = kernel_sparse.pack_bsr(weight, width)
    kernel = kernel_sparse.bsr_matmul(12, 40, 64, width, len(indices), rows=4)
    _check_kernel(kernel, weight, (data, indices, indptr), rows=12)


def test_csr_kernel_matches_numpy_and_empty_weight():
    # 10 columns: y is written from its transpose in blocks of 5
    for weight in (pruned((40, 64), 0.9, seed=2), np.zeros((40, 64), "float32"),
                   pruned((40, 10), 0.5, seed=4)):  # fmt: skip
        packed = kernel_sparse.pack_csr(weight)
        columns = weight.shape[1]
        kernel = kernel_sparse.csr_matmul(16, 40, columns, len(packed[1]), lanes=8, vectors=2)
        _check_kernel(kernel, weight, packed, rows=16)


def _check_kernel(kernel, weight, packed, rows: int):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((rows, weight.shape[0])).astype("float32")
    bias = rng.standard_normal(weight.shape[1]).astype("float32")
    built = tvm.compile(tvm.IRModule({"main": kernel.with_attr("global_symbol", "main")}),
                        target="llvm")  # fmt: skip
    args = [tvm.runtime.tensor(a) for a in (x, *packed, bias)]
    out = tvm.runtime.tensor(np.zeros((rows, weight.shape[1]), "float32"))
    built["main"](*args, out)
    np.testing.assert_allclose(out.numpy(), x @ weight + bias, rtol=1e-5, atol=1e-5)


def test_bad_sparse_mode_is_refused():
    with pytest.raises(OptionError, match="sparse must be"):
        tvmopt.compile(layer_model(pruned((16, 16), 0.5)), sparse="yes")


def test_cli_reports_each_layer(tmp_path, capsys):
    from tvmopt.cli import main

    path = tmp_path / "layer.onnx"
    path.write_bytes(layer_model(pruned((64, 128), 0.9, 8), rows=16).SerializeToString())
    assert main(["compile", str(path), "-o", str(tmp_path / "layer.so"), "--sparse", "force"]) == 0
    out = capsys.readouterr().out
    assert "sparse: dense 64x128: density 10." in out and "1x8 10%" in out
    assert main(["inspect", str(tmp_path / "layer.so")]) == 0
    assert "sparse: 1 constant weights" in capsys.readouterr().out


def _imported(weight: np.ndarray):
    return import_model(layer_model(weight, rows=16, bias=False))


def _calls(mod) -> list:
    return list(bindings(mod["main"]).values())


def test_pass_rewrites_a_sparse_matmul_into_the_kernel_call():
    record = []
    sparse_pass = SparseWeights("auto", cpu_of(host_target()), record)
    weight = pruned((64, 128), 0.9, 8)
    before = _imported(weight)
    after = sparse_pass(before)
    assert "relax.matmul" in map(op_name, _calls(before))
    assert "relax.matmul" not in map(op_name, _calls(after)) and record[0]["kernel"] == "bsr"
    (kernel_call,) = [call for call in _calls(after) if op_name(call) == "relax.call_tir"]
    # the packed weight is a constant of the call: data [blocks, 8], indices, indptr
    data = value(kernel_call.args[1][1])
    stored = np.any(weight.reshape(64, 16, 8) != 0, axis=2).sum()
    assert data.shape == (stored, 8) and stored < 0.11 * 64 * 16
    dense = _imported(pruned((64, 128), 0.0) + 1e-3)
    tvm.ir.assert_structural_equal(sparse_pass(dense), dense)  # no zeros: untouched


def test_cli_refuses_an_unknown_mode_in_one_line(tmp_path, capsys):
    from tvmopt.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["compile", str(tmp_path / "any.onnx"), "--sparse", "maybe"])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.strip()
    assert "invalid choice: 'maybe'" in error and len(error.splitlines()) == 1
