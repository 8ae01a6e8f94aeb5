"""Symbolic reshapes marked injective (passes/injective_reshape.py), so that FuseOps fuses a
packed matmul's output transpose, its reshapes and the bias add into one kernel, as it does
for static shapes; anything else TVM calls opaque stays so."""

import re
from pathlib import Path

import numpy as np
from onnx import TensorProto, helper
from tvm import relax
from tvm.script import relax as R

import tvmopt
from tvmopt._tvm import tvm
from tvmopt.passes.injective_reshape import INJECTIVE, OPAQUE, injective_reshape

from .helpers import assert_matches_ort, make_model


def _patterns(mod) -> dict:
    """Each kernel's op_pattern as TVM annotated it, and after the pass."""
    after = injective_reshape(mod)
    kernels = [gvar for gvar, func in mod.functions_items() if not isinstance(func, relax.Function)]
    return {gvar.name_hint: (_pattern(mod[gvar]), _pattern(after[gvar])) for gvar in kernels}


def _pattern(func) -> int:
    return int(func.attrs["op_pattern"])


def _reshape_patterns(dump, pass_name: str) -> dict:
    """{reshape kernel: op_pattern} in the IR dumped after `pass_name`."""
    (path,) = Path(dump).glob(f"*_*{pass_name}.py")
    found = re.findall(r"def (reshape\d*)\(.*\n.*\"op_pattern\": (\d+)", path.read_text())
    return {name: int(pattern) for name, pattern in found}


def _annotated(main) -> tvm.IRModule:
    mod = relax.transform.LegalizeOps()(tvm.IRModule({"main": main}))
    return relax.transform.AnnotateTIROpPattern()(mod)


def _dense_model():
    rng = np.random.default_rng(0)
    return make_model(
        [helper.make_node("MatMul", ["x", "w"], ["h"]), helper.make_node("Add", ["h", "b"], ["y"])],
        [("x", TensorProto.FLOAT, ["batch", "seq", 64])],
        [("y", TensorProto.FLOAT, ["batch", "seq", 96])],
        [("w", rng.standard_normal((64, 96)).astype(np.float32)),
         ("b", rng.standard_normal(96).astype(np.float32))],
    )  # fmt: skip


def test_symbolic_reshapes_become_injective_and_a_gather_stays_opaque(tmp_path):
    """The packed dense layer's reshapes over batch x seq rows, as TVM annotated them in the
    compile (the IR dumped after each pass), and after this pass."""
    tvmopt.compile(_dense_model(), dims={"batch": (1, 2), "seq": (1, 64)}, dump_ir=tmp_path)
    annotated = _reshape_patterns(tmp_path, "AnnotateTIROpPattern")
    after = _reshape_patterns(tmp_path, "InjectiveReshape")
    assert OPAQUE in annotated.values(), annotated
    assert set(after.values()) == {INJECTIVE} and after.keys() == annotated.keys(), after

    @R.function
    def gather(x: R.Tensor((8, 4), "float32"), i: R.Tensor(("n",), "int64")):
        return R.take(x, i, axis=0)

    assert _patterns(_annotated(gather))["take"] == (OPAQUE, OPAQUE)  # left as TVM read it


def test_static_reshape_is_left_alone():
    @R.function
    def main(x: R.Tensor((2, 4, 8), "float32")):
        return R.reshape(x, R.shape([8, 8]))

    assert _patterns(_annotated(main))["reshape"] == (INJECTIVE, INJECTIVE)


def test_symbolic_dense_layer_fuses_its_transpose_and_bias():
    rng = np.random.default_rng(0)
    model = _dense_model()
    compiled = tvmopt.compile(model, dims={"batch": (1, 2), "seq": (1, 64)})
    names = list(compiled.metadata.extra["kernels"])
    assert any("transpose" in name and "add" in name for name in names), names
    for shape in [(1, 5, 64), (2, 64, 64)]:
        assert_matches_ort(model, compiled, {"x": rng.standard_normal(shape).astype(np.float32)})
