"""ONNX names are any string; the names that reach generated code are identifiers
(frontend/identifiers.py), and the user keeps the model's own names. A compiler failure shows
its first diagnostic, not the count nvcc ends with."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from onnx import TensorProto, helper

import tvmopt
from tvmopt.errors import first_diagnostic
from tvmopt.frontend.identifiers import identifier, unique_identifiers

from .helpers import assert_matches_ort, make_model

# the model zoo's (gpu_0/data_0), TensorFlow's (in:0), a leading digit, a dot, unicode, and two
# names that are the same identifier once '/' and ':' are replaced
NAMES = ["gpu_0/data_0", "in:0", "1st.input", "größe", "a/b", "a:b"]


def weird_names_model():
    nodes = [helper.make_node("Add", [NAMES[0], NAMES[1]], ["s0"], name="add/0"),
             helper.make_node("Mul", ["s0", NAMES[2]], ["s1"], name="1:mul"),
             helper.make_node("Sub", ["s1", NAMES[3]], ["s2"], name="sub.x"),
             helper.make_node("Add", ["s2", NAMES[4]], ["s3"], name=""),
             helper.make_node("Relu", ["s3"], ["out/relu:0"], name="relu/relu")]  # fmt: skip
    nodes.append(helper.make_node("Add", ["out/relu:0", NAMES[5]], ["9/out"], name="ä"))
    inputs = [(name, TensorProto.FLOAT, [2, 8]) for name in NAMES]
    return make_model(nodes, inputs, [("9/out", TensorProto.FLOAT, [2, 8])])


def test_identifiers_are_c_identifiers_and_unique():
    assert identifier("gpu_0/data_0") == "gpu_0_data_0"
    assert identifier("1st.input") == "v_1st_input"
    assert identifier("größe") == "gr__e"
    assert identifier("") == "v_"
    assert unique_identifiers(["a/b", "a:b", "a_b"]) == ["a_b", "a_b_1", "a_b_2"]


def test_weird_names_compile_for_the_cpu_and_keep_the_models_names():
    model = weird_names_model()
    compiled = tvmopt.compile(model)
    assert [spec.name for spec in compiled.inputs] == NAMES
    assert [spec.name for spec in compiled.outputs] == ["9/out"]
    rng = np.random.default_rng(0)
    feeds = {name: rng.standard_normal((2, 8)).astype(np.float32) for name in NAMES}
    assert_matches_ort(model, compiled, feeds)


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="needs the CUDA toolkit")
def test_weird_names_compile_to_cuda_source_nvcc_accepts(tmp_path):
    """nvcc failed on the kernel parameter `gpu_0/data_0_ptr` of the zoo's ResNet-50."""
    compiled = tvmopt.compile(weird_names_model(), target={"kind": "cuda", "arch": "sm_90"})
    compiled.export(tmp_path / "names.so")
    assert (tmp_path / "names.so").stat().st_size > 0


def test_first_diagnostic_is_the_compilers_first_error():
    nvcc = ('extern "C" __global__ void k(float* gpu_0/data_0_ptr) {\n}\nCompilation error:\n'
            "/tmp/x/tvm_kernels.cu(12): error: expected a \")\"\n"
            '/tmp/x/tvm_kernels.cu(13): error: identifier "data_0_ptr" is undefined\n'
            '15 errors detected in the compilation of "/tmp/x/tvm_kernels.cu".')  # fmt: skip
    assert first_diagnostic(nvcc) == '/tmp/x/tvm_kernels.cu(12): error: expected a ")"'
    assert first_diagnostic("x.c:3:5: fatal error: a.h: No such file") == (
        "x.c:3:5: fatal error: a.h: No such file"
    )
    traceback = "Traceback\n  frame\nValueError: the reason"
    assert first_diagnostic(traceback) == "ValueError: the reason"
