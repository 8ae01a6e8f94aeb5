"""bsr_token_matmul (kernel_sparse.py), BSR vectorized over x's rows: against numpy on shapes
that take every tiling's edge (one vector of rows, groups of block columns, K not a whole
cache line), and whole models against ONNX Runtime on the host ISA and the AVX2 build."""

from __future__ import annotations

import pytest

import tvmopt
from tests.helpers import assert_matches_ort
from tests.test_sparse import AVX2, _check_kernel, layer_model, pruned
from tvmopt.backends.kernel_record import KERNELS_RECORD
from tvmopt.backends.llvm import kernel_sparse


@pytest.mark.parametrize(("k", "n", "width", "tiling"), [
    (40, 48, 8, (16, 2, 2)),  # AVX-512's 1x8: two vectors of rows, two block columns a group
    (72, 48, 4, (8, 1, 2)),  # K = 72: _panels reads 12 columns at a time
    (24, 32, 16, (8, 2, 1)),
])  # fmt: skip
def test_token_kernel_matches_numpy(k, n, width, tiling):
    weight = pruned((k, n), 0.8, width, seed=5)
    packed = kernel_sparse.pack_bsr(weight, width)
    kernel = kernel_sparse.bsr_token_matmul(32, k, n, width, len(packed[1]), tiling)
    _check_kernel(kernel, weight, packed, rows=32)


def test_token_tiling_follows_the_registers():
    assert kernel_sparse.token_tiling(128, 768, 8, 16, 32) == (16, 2, 2)  # AVX-512
    assert kernel_sparse.token_tiling(128, 768, 8, 8, 16) == (8, 1, 1)  # AVX2
    assert kernel_sparse.token_tiling(128, 768, 16, 8, 16) is None  # 16 accumulators: no room
    assert kernel_sparse.token_tiling(20, 768, 8, 16, 32) is None  # rows not whole vectors


@pytest.mark.parametrize("target", ["llvm", AVX2], ids=["host", "avx2"])
def test_token_kernel_matches_onnxruntime(target):
    # 37 rows (padded to whole vectors), K = 72, N = 40 (5 block columns: groups of 1)
    model = layer_model(pruned((72, 40), 0.75, 8, seed=6), rows=37)
    compiled = tvmopt.compile(model, target=target, sparse="force")
    assert any(name.startswith("sparse_bsr_token_matmul")
               for name in compiled.metadata.extra[KERNELS_RECORD])  # fmt: skip
    assert_matches_ort(model, compiled)
