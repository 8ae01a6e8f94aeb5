"""PackMatmulWeights: constant [K, N] weights become contiguous [N/P, K, P] panels of P = two
vectors of the target's float32 (32 on AVX-512, 16 on AVX2)."""

import numpy as np
import tvm
from onnx import TensorProto, helper
from tvm import relax

import tvmopt
from tvmopt.backends.llvm.pack_matmul_weights import VECTORS, padded_rows
from tvmopt.backends.llvm.pack_matmul_weights import PackMatmulWeights as pack_pass
from tvmopt.passes.consts import static_shape

from .helpers import assert_matches_ort, make_model
from .passes_helpers import const, f32, module, run_relax

RNG = np.random.default_rng(0)
LANES = 16  # AVX-512's float32 vector
PANEL = VECTORS * LANES
W = RNG.standard_normal((8, 2 * PANEL)).astype(np.float32)
PackMatmulWeights = pack_pass(LANES)


def test_weight_is_packed_into_panels():
    before = module({"x": f32(1, 3, 8)}, lambda bb, x: relax.op.matmul(x, const(W)))
    packed = W.reshape(8, 2, PANEL).transpose(1, 0, 2)

    def expected(bb, x):
        rows = bb.emit(relax.op.reshape(x, (3, 8)))
        panels = bb.emit(relax.op.matmul(rows, const(packed)))
        columns = bb.emit(
            relax.op.reshape(bb.emit(relax.op.permute_dims(panels, [1, 0, 2])), (3, 64))
        )
        return relax.op.reshape(columns, (1, 3, 64))

    tvm.ir.assert_structural_equal(PackMatmulWeights(before), module({"x": f32(1, 3, 8)}, expected))
    x = RNG.standard_normal((1, 3, 8)).astype(np.float32)
    np.testing.assert_allclose(run_relax(PackMatmulWeights(before), x), x @ W, rtol=1e-5, atol=1e-5)


def test_panels_are_two_vectors_of_the_target():
    before = module({"x": f32(1, 3, 8)}, lambda bb, x: relax.op.matmul(x, const(W)))
    panels = [b.value for b in pack_pass(8)(before)["main"].body.blocks[0].bindings
              if isinstance(b.value, relax.Call) and b.value.op.name == "relax.matmul"]  # fmt: skip
    assert [p.args[1].value.numpy().shape for p in panels] == [(4, 8, 16)]  # AVX2: 16 columns


def test_does_not_fire_on_one_panel_batched_or_variable_weights():
    narrow = RNG.standard_normal((8, PANEL)).astype(np.float32)  # one panel: nothing to pack
    per_batch = RNG.standard_normal((2, 8, 64)).astype(np.float32)  # one W per batch

    def body(bb, x, batched, w):
        a = bb.emit(relax.op.matmul(x, const(narrow)))
        b = bb.emit(relax.op.matmul(batched, const(per_batch)))
        c = bb.emit(relax.op.matmul(x, w))  # not a constant
        return relax.Tuple([a, b, c])

    params = {"x": f32(3, 8), "batched": f32(2, 3, 8), "w": f32(8, 64)}
    mod = module(params, body)
    tvm.ir.assert_structural_equal(PackMatmulWeights(mod), mod)


def test_odd_widths_and_rows_are_padded_to_whole_blocks_and_cut_back():
    """1000 columns and 169 rows (SqueezeNet's last conv as a matmul, AVX2): whole panels of 16
    and register blocks of 6 rows, the padding cut off the result."""
    weight = RNG.standard_normal((24, 1000)).astype(np.float32)
    mod = module({"x": f32(1, 169, 24)}, lambda bb, x: relax.op.matmul(x, const(weight)))
    packed = pack_pass(8, row_block=6)(mod)
    panels = [b for b in packed["main"].body.blocks[0].bindings
              if isinstance(b.value, relax.Call) and b.value.op.name == "relax.matmul"]  # fmt: skip
    assert [p.value.args[1].value.numpy().shape for p in panels] == [(63, 24, 16)]  # 1008 columns
    assert static_shape(panels[0].var) == (63, 174, 16)  # 29 blocks of 6 rows
    x = RNG.standard_normal((1, 169, 24)).astype(np.float32)
    np.testing.assert_allclose(run_relax(packed, x), x @ weight, rtol=1e-5, atol=1e-4)
    assert padded_rows(128, 6) == 128 and padded_rows(49, 7) == 49  # 4 of 6 is near; 7x7
    assert padded_rows(49, 6) == 54  # on AVX2, a 7x7 map would get one row per block
    assert padded_rows(1, 6) == 1 and padded_rows(7, 6) == 7  # batch 1; 5 rows of padding


def test_leading_dims_fold_into_rows():
    mod = module({"x": f32(2, 3, 8)}, lambda bb, x: relax.op.matmul(x, const(W)))
    x = RNG.standard_normal((2, 3, 8)).astype(np.float32)
    np.testing.assert_allclose(run_relax(PackMatmulWeights(mod), x), x @ W, rtol=1e-5, atol=1e-5)


def test_dense_layer_matches_onnxruntime():
    model = make_model(
        [helper.make_node("Gemm", ["x", "w", "b"], ["g"], transB=1),
         helper.make_node("Relu", ["g"], ["y"])],
        [("x", TensorProto.FLOAT, [2, 48])],
        [("y", TensorProto.FLOAT, [2, 96])],
        initializers={
            "w": RNG.standard_normal((96, 48)).astype(np.float32),
            "b": RNG.standard_normal(96).astype(np.float32),
        },
    )  # fmt: skip
    assert_matches_ort(model, tvmopt.compile(model))


def test_symbolic_rows_are_packed_too():
    """A decoder's rows (batch x seq) are symbolic: its weights are packed all the same (a
    width of partial panels, as GPT-2's LM head of 50257 columns, cut back), and one panel is
    left alone."""
    n = tvm.tirx.Var("n", "int64")
    partial = RNG.standard_normal((8, PANEL + 7)).astype(np.float32)
    narrow = RNG.standard_normal((8, PANEL)).astype(np.float32)

    def body(bb, x):
        whole = bb.emit(relax.op.matmul(x, const(W)))
        one = bb.emit(relax.op.matmul(x, const(narrow)))
        return relax.Tuple([whole, relax.op.matmul(x, const(partial)), one])

    packed = PackMatmulWeights(module({"x": f32(1, n, 8)}, body))
    calls = [b.value for b in packed["main"].body.blocks[0].bindings
             if isinstance(b.value, relax.Call)]  # fmt: skip
    weights = [c.args[1].value.numpy().shape for c in calls if c.op.name == "relax.matmul"]
    assert weights == [(2, 8, PANEL), (8, PANEL), (2, 8, PANEL)]
    executable = tvm.compile(packed, "llvm")
    for rows in (1, 5):
        x = RNG.standard_normal((1, rows, 8)).astype(np.float32)
        got = relax.VirtualMachine(executable, tvm.cpu())["main"](tvm.runtime.tensor(x))
        for out, weight in zip(got, (W, partial, narrow), strict=True):
            np.testing.assert_allclose(out.numpy(), x @ weight, rtol=1e-5, atol=1e-5)


def test_one_panel_the_rule_would_pad_at_every_run_is_padded_once():
    """10 columns (an MLP's last layer): on AVX2 a vector and a part, which the matmul rule
    pads to 16 by copying the weight at every run: padded here instead; on AVX-512 less than a
    vector, which the rule takes as it is: not packed."""
    weight = RNG.standard_normal((24, 10)).astype(np.float32)
    mod = module({"x": f32(1, 24)}, lambda bb, x: relax.op.matmul(x, const(weight)))
    packed = pack_pass(8)(mod)
    panels = [b.value for b in packed["main"].body.blocks[0].bindings
              if isinstance(b.value, relax.Call) and b.value.op.name == "relax.matmul"]  # fmt: skip
    assert [p.args[1].value.numpy().shape for p in panels] == [(1, 24, 16)]
    x = RNG.standard_normal((1, 24)).astype(np.float32)
    np.testing.assert_allclose(run_relax(packed, x), x @ weight, rtol=1e-5, atol=1e-5)
    tvm.ir.assert_structural_equal(pack_pass(16)(mod), mod)
