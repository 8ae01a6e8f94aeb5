"""The Python API: compile from every source, run, benchmark, export, load."""

import ctypes
import json
import subprocess
import textwrap

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import tvmopt
from tvmopt.demo import INPUT_NAME, INPUT_SHAPE
from tvmopt.frontend.onnx import opset_of, upgrade_opset

from .helpers import assert_matches_ort, make_model


def demo_feeds(seed=0):
    return {INPUT_NAME: np.random.default_rng(seed).standard_normal(INPUT_SHAPE).astype(np.float32)}


def test_compiled_demo_matches_onnxruntime(demo_model, compiled_demo):
    assert_matches_ort(demo_model, compiled_demo, demo_feeds())


@pytest.mark.parametrize("source", ["path", "bytes"])
def test_compile_from_path_and_bytes(source, demo_model, demo_path, compiled_demo):
    model = demo_path if source == "path" else demo_model.SerializeToString()
    compiled = tvmopt.compile(model)
    np.testing.assert_array_equal(
        compiled.run(demo_feeds())["probs"], compiled_demo.run(demo_feeds())["probs"]
    )


def test_run_takes_inputs_in_signature_order(compiled_demo):
    feeds = demo_feeds()
    by_name = compiled_demo.run(feeds)["probs"]
    np.testing.assert_array_equal(compiled_demo.run([feeds[INPUT_NAME]])["probs"], by_name)


def test_benchmark_reports_each_run(compiled_demo):
    latency = compiled_demo.benchmark(repeat=5)
    assert len(latency.samples_ms) == 5
    assert 0 < latency.min_ms <= latency.median_ms <= latency.max_ms


def test_export_then_load_runs_identically(compiled_demo, demo_library):
    loaded = tvmopt.load(demo_library)
    feeds = demo_feeds(3)
    np.testing.assert_array_equal(loaded.run(feeds)["probs"], compiled_demo.run(feeds)["probs"])


def test_metadata_names_signature_target_and_versions(demo_library):
    metadata = tvmopt.load(demo_library).metadata
    assert [(s.name, s.shape, s.dtype) for s in metadata.inputs] == [
        (INPUT_NAME, INPUT_SHAPE, "float32")
    ]
    assert [(s.name, s.shape, s.dtype) for s in metadata.outputs] == [("probs", (1, 10), "float32")]
    assert metadata.target["kind"] == "llvm" and metadata.target["mcpu"] != "generic"
    assert metadata.tvmopt_version == tvmopt.__version__
    assert metadata.tvm_version.startswith("0.27")
    assert (metadata.backend, metadata.precision, metadata.quantization) == ("llvm", "fp32", "none")


@pytest.mark.parametrize(
    "target, backend",
    [({"kind": "llvm", "keys": ["cpu"]}, "llvm"), ({"kind": "llvm", "keys": ["vta", "cpu"]}, "vta"),
     ({"kind": "cuda", "arch": "sm_90"}, "cuda")],
)  # fmt: skip
def test_records_written_before_the_backend_field_still_read(target, backend):
    from tvmopt.artifact import Metadata

    record = {"format": "tvmopt-artifact/1", "inputs": [], "outputs": [], "target": target,
              "tvmopt_version": "0.1.0", "tvm_version": "0.27.0.post1"}  # fmt: skip
    metadata = Metadata.from_json(json.dumps(record))
    assert metadata.backend == backend
    assert (metadata.precision, metadata.quantization) == ("fp32", "none")
    assert json.loads(metadata.to_json())["backend"] == backend


def test_metadata_is_readable_from_c_without_python(tmp_path, demo_library):
    source = tmp_path / "read_metadata.c"
    source.write_text(
        textwrap.dedent("""
        #include <dlfcn.h>
        #include <stdio.h>
        int main(int argc, char** argv) {
          void* lib = dlopen(argv[1], RTLD_LAZY | RTLD_LOCAL);
          if (!lib) { fprintf(stderr, "%s\\n", dlerror()); return 1; }
          const char* (*get)(void) = (const char* (*)(void))dlsym(lib, "tvmopt_metadata");
          if (!get) return 2;
          puts(get());
          return 0;
        }
    """)
    )
    binary = tmp_path / "read_metadata"
    subprocess.run(["cc", str(source), "-o", str(binary), "-ldl"], check=True)
    # The library needs TVM's runtime libraries; the C program finds them through the loader.
    from tvm_ffi import libinfo

    env = {"LD_LIBRARY_PATH": ":".join(_runtime_dirs(libinfo))}
    out = subprocess.run([str(binary), demo_library], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["inputs"][0]["name"] == INPUT_NAME


def _runtime_dirs(libinfo):
    import os

    import tvm

    return [os.path.dirname(libinfo.find_libtvm_ffi()), os.path.dirname(tvm.__file__)]


def test_input_shapes_pin_symbolic_dims():
    model = make_model(
        [helper.make_node("Relu", ["x"], ["y"])],
        [("x", TensorProto.FLOAT, ["batch", 4])],
        [("y", TensorProto.FLOAT, ["batch", 4])],
    )
    compiled = tvmopt.compile(model, input_shapes={"x": (3, 4)})
    assert compiled.inputs[0].shape == (3, 4)
    assert compiled.outputs[0].shape == (3, 4)
    assert_matches_ort(model, compiled)


def test_old_opsets_are_upgraded_and_still_match():
    model = make_model(
        [
            helper.make_node("Unsqueeze", ["x"], ["u"], axes=[0]),
            helper.make_node("Relu", ["u"], ["y"]),
        ],
        [("x", TensorProto.FLOAT, [2, 3])],
        [("y", TensorProto.FLOAT, [1, 2, 3])],
        opset=9,
    )
    assert opset_of(upgrade_opset(model)) >= 13
    assert_matches_ort(model, tvmopt.compile(model))


def test_export_is_atomic_when_linking_fails(tmp_path, compiled_demo, monkeypatch):
    def broken_export(path, **kwargs):
        with open(path, "wb") as half_written:
            half_written.write(b"\x7fELF partial")
        raise RuntimeError("linker crashed")

    monkeypatch.setattr(compiled_demo._module, "export_library", broken_export, raising=False)
    target = tmp_path / "model.so"
    with pytest.raises(RuntimeError, match="linker crashed"):
        compiled_demo.export(target)
    assert list(tmp_path.iterdir()) == []


def test_cross_compiled_model_builds_for_aarch64(tmp_path):
    from tvmopt.backends.llvm.target import host_triple

    if host_triple().startswith("aarch64"):
        pytest.skip("this test cross-compiles from another architecture")
    model = make_model(
        [helper.make_node("Relu", ["x"], ["y"])],
        [("x", TensorProto.FLOAT, [4])],
        [("y", TensorProto.FLOAT, [4])],
    )
    compiled = tvmopt.compile(model, target={"kind": "llvm", "mtriple": "aarch64-linux-gnu"})
    assert compiled.metadata.target["mtriple"] == "aarch64-linux-gnu"
    assert compiled.metadata.target["mcpu"] == "generic"
    import shutil

    if shutil.which("aarch64-linux-gnu-g++") is None:
        with pytest.raises(tvmopt.TargetError, match="aarch64-linux-gnu-g\\+\\+"):
            compiled.export(tmp_path / "arm.so")
        assert not (tmp_path / "arm.so").exists()
    else:
        compiled.export(tmp_path / "arm.so")
        assert (tmp_path / "arm.so").read_bytes()[18] == 183  # e_machine EM_AARCH64


def test_c_loads_library_with_ctypes_after_tvm(demo_library):
    lib = ctypes.CDLL(demo_library)
    lib.tvmopt_metadata.restype = ctypes.c_char_p
    assert json.loads(lib.tvmopt_metadata())["format"] == "tvmopt-artifact/1"


def test_models_with_several_outputs_and_int_inputs():
    model = make_model(
        [
            helper.make_node("Cast", ["ids"], ["f"], to=TensorProto.FLOAT),
            helper.make_node("Relu", ["f"], ["relu"]),
            helper.make_node("ReduceSum", ["ids"], ["total"], keepdims=0),
        ],
        [("ids", TensorProto.INT64, [2, 5])],
        [("relu", TensorProto.FLOAT, [2, 5]), ("total", TensorProto.INT64, [])],
    )
    compiled = tvmopt.compile(model)
    assert [s.dtype for s in compiled.outputs] == ["float32", "int64"]
    out = assert_matches_ort(model, compiled)
    assert out["total"].shape == ()


def test_onnx_model_roundtrip_keeps_names(tmp_path, demo_model):
    path = tmp_path / "m.onnx"
    onnx.save(demo_model, path)
    assert tvmopt.compile(str(path)).inputs[0].name == INPUT_NAME


def test_non_ascii_names_survive_the_metadata_record(tmp_path):
    model = make_model(
        [helper.make_node("Relu", ["größe"], ["résultat"])],
        [("größe", TensorProto.FLOAT, [2])],
        [("résultat", TensorProto.FLOAT, [2])],
    )
    tvmopt.compile(model).export(tmp_path / "m.so")
    loaded = tvmopt.load(tmp_path / "m.so")
    assert [s.name for s in loaded.inputs] == ["größe"]
    out = loaded.run({"größe": np.array([-1.0, 2.0], np.float32)})
    np.testing.assert_array_equal(out["résultat"], [0.0, 2.0])


def test_outputs_declared_without_shape_are_accepted_like_onnxruntime_does():
    model = make_model(
        [helper.make_node("Relu", ["x"], ["y"])],
        [("x", TensorProto.FLOAT, [2, 3])],
        [("y", TensorProto.FLOAT, [2, 3])],
    )
    model.graph.output[0].type.tensor_type.ClearField("shape")
    compiled = tvmopt.compile(model)
    assert compiled.outputs[0].shape == (2, 3)
    assert_matches_ort(model, compiled)


def test_scalar_inputs_stay_scalars():
    model = make_model(
        [helper.make_node("Mul", ["x", "s"], ["y"])],
        [("x", TensorProto.FLOAT, [3]), ("s", TensorProto.FLOAT, [])],
        [("y", TensorProto.FLOAT, [3])],
    )
    compiled = tvmopt.compile(model)
    assert compiled.inputs[1].shape == ()
    assert_matches_ort(
        model, compiled, {"x": np.ones(3, np.float32), "s": np.array(2.5, np.float32)}
    )


def test_shape_as_a_graph_output():
    model = make_model(
        [helper.make_node("Shape", ["x"], ["shape"]), helper.make_node("Relu", ["x"], ["y"])],
        [("x", TensorProto.FLOAT, [2, 5])],
        [("shape", TensorProto.INT64, [2]), ("y", TensorProto.FLOAT, [2, 5])],
    )
    compiled = tvmopt.compile(model)
    assert [(s.shape, s.dtype) for s in compiled.outputs] == [((2,), "int64"), ((2, 5), "float32")]
    assert_matches_ort(model, compiled)


def test_outputs_outlive_the_next_run_and_inputs_may_be_strided():
    model = make_model(
        [helper.make_node("Identity", ["x"], ["same"]), helper.make_node("Relu", ["x"], ["y"])],
        [("x", TensorProto.FLOAT, [3, 4])],
        [("same", TensorProto.FLOAT, [3, 4]), ("y", TensorProto.FLOAT, [3, 4])],
    )
    compiled = tvmopt.compile(model)
    first_input = np.arange(-6, 6, dtype=np.float32).reshape(3, 4)
    first = compiled.run({"x": first_input})
    compiled.run({"x": np.full((3, 4), 7, np.float32)})  # into the same staging buffers
    np.testing.assert_array_equal(first["same"], first_input)  # outputs are copies
    np.testing.assert_array_equal(first["y"], np.maximum(first_input, 0))
    strided = np.arange(24, dtype=np.float32).reshape(3, 8)[:, ::2]
    assert_matches_ort(model, compiled, {"x": strided})
    assert_matches_ort(model, compiled, {"x": np.asfortranarray(first_input)})


def test_a_bfloat16_output_reads_back_as_an_ml_dtypes_array():
    """numpy's DLPack has no bfloat16 (nor float8): such outputs take TVM's own copy."""
    import ml_dtypes

    model = make_model(
        [helper.make_node("Cast", ["x"], ["y"], to=TensorProto.BFLOAT16)],
        [("x", TensorProto.FLOAT, (4,))],
        [("y", TensorProto.BFLOAT16, (4,))],
    )
    x = np.array([1.0, -2.5, 3.140625, 1e-3], dtype=np.float32)
    y = tvmopt.compile(model).run({"x": x})["y"]
    assert y.dtype == ml_dtypes.bfloat16
    np.testing.assert_array_equal(y, x.astype(ml_dtypes.bfloat16))
