"""C++ deployment: tvmopt-run built with CMake, `tvmopt package`, `tvmopt config`, headers.

Every C++ result is compared with the Python run of the same library (bit for bit) and with ONNX
Runtime (within tolerance)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import tvmopt
from tvmopt.demo import INPUT_NAME, INPUT_SHAPE, build_demo_model
from tvmopt.deploy import config
from tvmopt.reference import FP32_TOLERANCE, max_relative_error

from .helpers import (
    flipped,
    gpu_present,
    make_model,
    ort_outputs,
    read_outputs,
    save_inputs,
)

pytestmark = pytest.mark.skipif(
    shutil.which("cmake") is None or shutil.which("c++") is None, reason="needs cmake and c++"
)

CPP_SOURCES = Path(__file__).resolve().parents[1] / "deploy" / "cpp"
TVMOPT = [sys.executable, "-m", "tvmopt"]


def mixed_model(input_name="image/0"):
    """Three inputs of three dtypes, two outputs of two dtypes, names that are not file names."""
    table = np.arange(15, dtype=np.float32).reshape(5, 3) / 7
    return make_model(
        [
            helper.make_node("Gather", ["table", "ids:0"], ["rows"]),
            helper.make_node("Add", [input_name, "rows"], ["sum"]),
            helper.make_node("Where", ["mask", "sum", input_name], ["picked"]),
            helper.make_node("Relu", ["picked"], ["scores"]),
            helper.make_node("ArgMax", ["picked"], ["best"], axis=1, keepdims=0),
        ],
        [(input_name, TensorProto.FLOAT, (2, 3)), ("ids:0", TensorProto.INT64, (2,)),
         ("mask", TensorProto.BOOL, (2, 3))],
        [("scores", TensorProto.FLOAT, (2, 3)), ("best", TensorProto.INT64, (2,))],
        initializers={"table": table},
    )  # fmt: skip


def mixed_feeds(seed=0, input_name="image/0"):
    rng = np.random.default_rng(seed)
    return {
        input_name: rng.standard_normal((2, 3)).astype(np.float32),
        "ids:0": np.array([4, 1], dtype=np.int64),
        "mask": rng.integers(0, 2, (2, 3)).astype(bool),
    }


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("deploy")


@pytest.fixture(scope="module")
def library(workdir):
    """The mixed model, compiled, exported and loaded back (what Python users run)."""
    path = workdir / "mixed.so"
    tvmopt.compile(mixed_model()).export(path)
    return path


@pytest.fixture(scope="module")
def runner(workdir):
    """tvmopt-run, configured and built with CMake against `tvmopt config --cmake-dir`."""
    build = workdir / "build"
    cmake_dir = subprocess.run(
        [*TVMOPT, "config", "--cmake-dir"], capture_output=True, text=True, check=True
    ).stdout.strip()
    subprocess.run(["cmake", "-S", CPP_SOURCES, "-B", build, f"-Dtvmopt_DIR={cmake_dir}"],
                   check=True, capture_output=True)  # fmt: skip
    subprocess.run(["cmake", "--build", build], check=True, capture_output=True)
    return build / "tvmopt-run"


def run(*command, cwd=None, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in command], capture_output=True, text=True, cwd=cwd,
                          env=env)  # fmt: skip


def assert_same_as_python_and_ort(library: Path, feeds: dict, outputs: dict):
    python = tvmopt.load(library).run(feeds)
    assert list(outputs) == list(python)
    for name, expected in python.items():
        assert outputs[name].dtype == expected.dtype and outputs[name].shape == expected.shape
        assert np.array_equal(outputs[name], expected), f"{name} differs from the Python run"
    for name, reference in ort_outputs(mixed_model(), feeds).items():
        assert max_relative_error(outputs[name], reference) <= FP32_TOLERANCE, name


def test_cmake_runner_matches_python_bit_for_bit_and_onnx_runtime(library, runner, tmp_path):
    feeds = mixed_feeds()
    inputs = save_inputs(tmp_path / "in", feeds)
    result = run(runner, library, "--inputs", inputs, "--output", tmp_path / "out", "--repeat", 3)
    assert result.returncode == 0, result.stderr
    assert "input ids:0 (int64[2])" in result.stdout
    assert "latency: median" in result.stdout and "(3 runs)" in result.stdout
    outputs = read_outputs(tmp_path / "out", ["scores", "best"])
    assert_same_as_python_and_ort(library, feeds, outputs)


def test_runner_generates_inputs_when_none_are_given(library, runner, tmp_path):
    result = run(runner, library, "--output", tmp_path / "out", "--repeat", 1, "--warmup", 0)
    assert result.returncode == 0, result.stderr
    assert "input image/0 (float32[2,3]): generated" in result.stdout
    best = np.load(tmp_path / "out" / "best.npy")
    assert best.dtype == np.int64 and best.shape == (2,) and set(best) <= {0, 1, 2}


def bad_inputs(tmp_path: Path, case: str) -> Path:
    feeds = mixed_feeds()
    if case == "shape":
        feeds["image/0"] = feeds["image/0"][:1]
    elif case == "dtype":
        feeds["ids:0"] = feeds["ids:0"].astype(np.int32)
    directory = save_inputs(tmp_path / "in", feeds)
    if case == "missing file":
        (directory / "mask.npy").unlink()
    elif case == "unknown file":
        (directory / "mask.npy").rename(directory / "mask_.npy")
    elif case == "corrupt file":
        (directory / "mask.npy").write_bytes(b"\x93NUMPY\x01\x00garbage")
    elif case == "fortran order":
        np.save(directory / "image_0.npy", np.asfortranarray(feeds["image/0"]))
    return directory


@pytest.mark.parametrize(
    "case, fragment",
    [
        ("shape", "input 'image/0' must have shape (2, 3), got (1, 3)"),
        ("dtype", "input 'ids:0' must have dtype int64, got int32"),
        ("missing file", "missing input 'mask': no file"),
        ("unknown file", "unknown input file"),
        ("corrupt file", "mask.npy: truncated .npy header"),
        ("fortran order", "Fortran-ordered arrays are not supported"),
    ],
)
def test_runner_rejects_bad_inputs_in_one_line(library, runner, tmp_path, case, fragment):
    inputs = bad_inputs(tmp_path, case)
    result = run(runner, library, "--inputs", inputs, "--output", tmp_path / "out")
    assert_one_line_error(result, fragment)
    assert not (tmp_path / "out").exists(), "outputs written for a failed run"


def assert_one_line_error(result, fragment):
    assert result.returncode == 2, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tvmopt-run: error: "), result.stderr
    assert fragment in lines[0], lines[0]


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["missing.so"], "model not found: missing.so"),
        (["{onnx}"], "model.onnx is not a tvmopt artifact: not a 64-bit ELF library"),
        (["{truncated}"], "truncated.so is truncated: 20000 bytes, where its section table ends"),
        (["{flipped}"], "flipped.so is corrupt: its bytes changed after tvmopt wrote it"),
        (["{libm}"], "is not a tvmopt artifact: it has no tvmopt_metadata record"),
        (["{library}", "--repeat", "0"], "--repeat takes an integer >= 1, got '0'"),
        (["{library}", "--inputs"], "--inputs needs a value"),
        (["{library}", "--inputs", "nowhere"], "inputs directory not found: nowhere"),
        ([], "no model given; usage: tvmopt-run MODEL.so"),
    ],
)
def test_runner_rejects_bad_arguments_in_one_line(library, runner, tmp_path, args, fragment):
    onnx_file = tmp_path / "model.onnx"
    onnx_file.write_bytes(mixed_model().SerializeToString())
    libm = next(Path("/lib/x86_64-linux-gnu").glob("libm.so.6"), None) or Path("/lib64/libm.so.6")
    (tmp_path / "truncated.so").write_bytes(Path(library).read_bytes()[:20000])
    (tmp_path / "flipped.so").write_bytes(flipped(Path(library).read_bytes()))
    paths = {"{onnx}": onnx_file, "{libm}": libm, "{library}": library,
             "{truncated}": Path("truncated.so"), "{flipped}": Path("flipped.so")}  # fmt: skip
    result = run(runner, *(paths.get(arg, arg) for arg in args), cwd=tmp_path)
    assert_one_line_error(result, fragment)


@pytest.fixture(scope="module")
def packaged(library, workdir):
    """`tvmopt package`, with a fresh build cache, copied elsewhere as a user would."""
    env = {**os.environ, "XDG_CACHE_HOME": str(workdir / "cache")}
    result = run(*TVMOPT, "package", library, "-o", workdir / "pkg", env=env)
    assert result.returncode == 0, result.stderr
    assert "bin/tvmopt-run" in result.stdout
    moved = workdir / "elsewhere" / "mixed-deploy"
    shutil.copytree(workdir / "pkg", moved, symlinks=False)
    return moved


def test_packaged_folder_runs_with_a_clean_environment(packaged, library, tmp_path):
    expected = {"mixed.so", "README.md", "bin/tvmopt-run", "lib/libtvm_ffi.so",
                "lib/libtvm_runtime.so"}  # fmt: skip
    assert expected <= {str(p.relative_to(packaged)) for p in packaged.rglob("*") if p.is_file()}
    dynamic = run("readelf", "-d", packaged / "bin" / "tvmopt-run").stdout
    assert "[$ORIGIN/../lib]" in dynamic and sys.prefix not in dynamic  # no path to this venv
    feeds = mixed_feeds(seed=3)
    inputs = save_inputs(tmp_path / "in", feeds)
    cwd = tmp_path / "somewhere"
    cwd.mkdir()
    result = run(packaged / "bin" / "tvmopt-run", packaged / "mixed.so", "--inputs", inputs,
                 "--output", "out", cwd=cwd, env={})  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert_same_as_python_and_ort(library, feeds, read_outputs(cwd / "out", ["scores", "best"]))


def test_packaged_readme_names_inputs_and_requirements(packaged):
    readme = (packaged / "README.md").read_text()
    assert "`ids:0`: int64[2] (`ids_0.npy`)" in readme
    assert "bin/tvmopt-run mixed.so" in readme and "glibc" in readme


def test_package_replaces_its_own_folder_and_refuses_others(library, tmp_path, packaged):
    target = tmp_path / "pkg"
    for _ in range(2):
        assert run(*TVMOPT, "package", library, "-o", target).returncode == 0
    other = tmp_path / "other"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    result = run(*TVMOPT, "package", library, "-o", other)
    assert result.returncode == 2 and "is not a tvmopt package" in result.stderr
    assert (other / "keep.txt").read_text() == "mine"
    result = run(*TVMOPT, "package", tmp_path / "missing.so", "-o", tmp_path / "x")
    assert result.returncode == 2 and "model not found" in result.stderr
    assert not (tmp_path / "x").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other", "pkg"], "staging left behind"


def demo_variant(tmp_path: Path, input_name: str = "image") -> tuple[Path, Path]:
    """The demo CNN (input renamed when asked), compiled with its header into tmp_path/include."""
    model = build_demo_model()
    for value in [*model.graph.input, *model.graph.node]:
        if hasattr(value, "input"):
            value.input[:] = [input_name if n == INPUT_NAME else n for n in value.input]
        elif value.name == INPUT_NAME:
            value.name = input_name
    onnx_path = tmp_path / f"{input_name}.onnx"
    onnx_path.write_bytes(model.SerializeToString())
    (tmp_path / "include").mkdir(exist_ok=True)
    library = tmp_path / f"{input_name}.so"
    result = run(*TVMOPT, "compile", onnx_path, "-o", library, "--emit-header",
                 tmp_path / "include" / "model.h")  # fmt: skip
    assert result.returncode == 0, result.stderr
    return library, onnx_path


def top_class(model_or_library, image) -> int:
    if isinstance(model_or_library, Path) and model_or_library.suffix == ".so":
        return int(tvmopt.load(model_or_library).run({INPUT_NAME: image})["probs"].argmax())
    return int(ort_outputs(onnx.load(model_or_library), {INPUT_NAME: image})["probs"].argmax())


def test_classify_example_builds_with_find_package_and_its_header(tmp_path):
    """deploy/cpp/examples/classify: find_package(tvmopt) plus the generated header."""
    library, onnx_path = demo_variant(tmp_path)
    build = tmp_path / "build"
    configure = run("cmake", "-S", CPP_SOURCES / "examples" / "classify", "-B", build,
                    f"-Dtvmopt_DIR={config.cmake_dir()}",
                    f"-DMODEL_INCLUDE_DIR={tmp_path / 'include'}")  # fmt: skip
    assert configure.returncode == 0, configure.stdout + configure.stderr
    built = run("cmake", "--build", build)
    assert built.returncode == 0, built.stdout
    image = np.random.default_rng(5).standard_normal(INPUT_SHAPE).astype(np.float32)
    np.save(tmp_path / "image.npy", image)
    result = run(build / "classify", library, tmp_path / "image.npy")
    assert result.returncode == 0, result.stderr
    predicted = int(result.stdout.split()[1])
    assert predicted == top_class(library, image) == top_class(onnx_path, image)
    # a library whose signature differs from the header's is refused at run time
    (tmp_path / "other").mkdir()
    other, _ = demo_variant(tmp_path / "other", "pixels")
    result = run(build / "classify", other)
    assert result.returncode == 2
    assert "changed since its header was generated" in result.stderr


def test_header_of_a_changed_model_stops_the_app_compiling(tmp_path):
    """`tvmopt config --cflags --libs` builds the example; after the model's input is renamed,
    the regenerated header makes the same source fail to compile, naming the input."""
    source = CPP_SOURCES / "examples" / "classify" / "classify.cc"
    flags = run(*TVMOPT, "config", "--cflags", "--libs").stdout.split()
    library, _ = demo_variant(tmp_path)
    include = f"-I{tmp_path / 'include'}"
    build = run("c++", source, "-o", tmp_path / "classify", include, *flags)
    assert build.returncode == 0, build.stderr
    assert run(tmp_path / "classify", library).stdout.startswith("class ")
    demo_variant(tmp_path, "pixels")
    build = run("c++", "-fsyntax-only", source, include, *flags, env={**os.environ, "LC_ALL": "C"})
    assert build.returncode != 0 and "'image' in namespace 'model::inputs'" in build.stderr


def weird_names_metadata(names):
    from tvmopt.artifact import Metadata
    from tvmopt.frontend.signature import TensorSpec

    specs = tuple(TensorSpec(name, ("batch", 2), "bool") for name in names)
    return Metadata(specs, specs[:1], {"kind": "llvm"}, "0", "0")


def test_header_escapes_names_and_marks_symbolic_dims(tmp_path):
    from tvmopt.deploy.header import header_source

    names = ["class", "3d", 'say "hi"\\', "naïve"]
    header = header_source(weird_names_metadata(names), "net")
    assert "struct class_ {" in header and "struct _3d {" in header
    assert "{-1, 2}" in header and "symbolic dims are -1 in shape: batch" in header
    (tmp_path / "net.h").write_text(header)
    (tmp_path / "check.cc").write_text(
        '#include "net.h"\n'
        'static_assert(net::inputs::say__hi__::name == std::string_view("say \\"hi\\"\\\\"));\n'
        'static_assert(net::inputs::na_ve::name == std::string_view("na\\xc3\\xafve"));\n'
        "static_assert(net::inputs::_3d::index == 1 && net::kNumInputs == 4);\n"
    )
    result = run("c++", "-std=c++17", "-fsyntax-only", tmp_path / "check.cc")
    assert result.returncode == 0, result.stderr


def test_header_refuses_names_that_collide_in_cpp():
    from tvmopt.deploy.header import header_source
    from tvmopt.errors import ArtifactError

    with pytest.raises(ArtifactError, match="two inputs map to the C\\+\\+ name 'a_b'"):
        header_source(weird_names_metadata(["a/b", "a:b"]), "net")


def test_emit_header_into_a_missing_directory_writes_nothing(tmp_path):
    onnx_path = tmp_path / "model.onnx"
    onnx_path.write_bytes(mixed_model().SerializeToString())
    result = run(*TVMOPT, "compile", onnx_path, "-o", tmp_path / "m.so", "--emit-header",
                 tmp_path / "no" / "m.h")  # fmt: skip
    assert result.returncode == 2 and "output directory does not exist" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx"]


def test_config_prints_both_flag_sets_by_default():
    result = run(*TVMOPT, "config")
    assert result.returncode == 0
    assert "-std=c++17" in result.stdout and "-ltvm_runtime" in result.stdout
    assert "--no-as-needed" in result.stdout


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="needs the CUDA toolkit")
def test_cuda_package_carries_the_cuda_runtime(tmp_path):
    """A CUDA library's folder holds TVM's CUDA runtime and libcudart; the driver comes with the
    GPU, and where there is none, tvmopt-run says so in one line."""
    from tvmopt.backends.cuda.toolchain import driver_present

    library = tmp_path / "demo_cuda.so"
    tvmopt.compile(build_demo_model(), target={"kind": "cuda", "arch": "sm_90"}).export(library)
    result = run(*TVMOPT, "package", library, "-o", tmp_path / "pkg")
    assert result.returncode == 0, result.stderr
    libs = {p.name for p in (tmp_path / "pkg" / "lib").iterdir()}
    assert {"libtvm_runtime_cuda.so", "libcudart.so.13", "libtvm_runtime.so"} <= libs
    assert "NVIDIA GPU of architecture sm_90" in (tmp_path / "pkg" / "README.md").read_text()
    if not driver_present():
        result = run(tmp_path / "pkg" / "bin" / "tvmopt-run", library, env={})
        assert_one_line_error(
            result, "the model runs on an NVIDIA GPU, and there is no NVIDIA driver"
        )


@pytest.mark.cuda
@pytest.mark.skipif(not gpu_present(), reason="needs an NVIDIA GPU")
def test_runner_on_the_gpu_matches_python_bit_for_bit(runner, tmp_path):
    library = tmp_path / "mixed_cuda.so"
    tvmopt.compile(mixed_model(), target="cuda").export(library)
    feeds = mixed_feeds(seed=4)
    inputs = save_inputs(tmp_path / "in", feeds)
    result = run(runner, library, "--inputs", inputs, "--output", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    assert_same_as_python_and_ort(
        library, feeds, read_outputs(tmp_path / "out", ["scores", "best"])
    )


def test_runner_refuses_vta_libraries_in_one_line(runner, tmp_path):
    """VTA's simulator is Python: the C++ runner says so instead of failing inside the VM."""
    rng = np.random.default_rng(0)
    calib = [{INPUT_NAME: rng.standard_normal(INPUT_SHAPE).astype(np.float32)} for _ in range(2)]
    library = tmp_path / "vta.so"
    tvmopt.compile(build_demo_model(), target="vta", quantize="int8", calib=calib).export(library)
    assert_one_line_error(run(runner, library), "offloads layers to VTA, whose simulator runs in")


def test_runner_refuses_a_library_for_another_cpu_before_loading_it(runner, tmp_path):
    """Built for Sapphire Rapids (AMX, AVX-512 FP16): none of our machines has those, so the
    runner names them and a target that runs here, where loading would die with SIGILL."""
    from tvmopt.backends.cpu_features import host_features

    if "amx_int8" in (host_features() or ()):
        pytest.skip("this CPU runs Sapphire Rapids code")
    library = tmp_path / "spr.so"
    spr = {"kind": "llvm", "mtriple": "x86_64-linux-gnu", "mcpu": "sapphirerapids"}
    tvmopt.compile(build_demo_model(), target=spr).export(library)
    result = run(runner, library)
    assert_one_line_error(result, "needs CPU features this CPU lacks: amx_bf16, amx_int8")
    assert "compile it with --target llvm (this CPU)" in result.stderr


def symbolic_model() -> onnx.ModelProto:
    """x + y, both (batch, seq): the runner checks seq against its compiled range and that
    both inputs agree on it."""
    spec = ["batch", "seq"]
    inputs = [(name, TensorProto.FLOAT, spec) for name in ("x", "y")]
    nodes = [helper.make_node("Add", ["x", "y"], ["sum"])]
    return make_model(nodes, inputs, [("sum", TensorProto.FLOAT, spec)])


@pytest.fixture(scope="module")
def symbolic_library(workdir):
    path = workdir / "symbolic.so"
    tvmopt.compile(symbolic_model(), dims={"seq": "1..8"}).export(path)
    return path


def test_runner_runs_symbolic_dims_inside_their_range(symbolic_library, runner, tmp_path):
    rng = np.random.default_rng(0)
    feeds = {n: rng.standard_normal((3, 8)).astype(np.float32) for n in ("x", "y")}
    result = run(runner, symbolic_library, "--inputs", save_inputs(tmp_path / "in", feeds),
                 "--output", tmp_path / "out", "--repeat", 1)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert np.array_equal(np.load(tmp_path / "out" / "sum.npy"), feeds["x"] + feeds["y"])


def test_runner_takes_a_bucket_or_main_as_python_does(runner, workdir, tmp_path):
    """A bucketed library (buckets.py): the runner loads every bucket's function and runs a
    bucket's shape and any other shape in range alike."""
    library = workdir / "bucketed.so"
    tvmopt.compile(symbolic_model(), dims={"seq": "1..8"}, buckets={"seq": [4]}).export(library)
    rng = np.random.default_rng(0)
    for shape in [(1, 4), (3, 4), (1, 7)]:
        feeds = {n: rng.standard_normal(shape).astype(np.float32) for n in ("x", "y")}
        result = run(runner, library, "--inputs", save_inputs(tmp_path / "in", feeds),
                     "--output", tmp_path / "out", "--repeat", 1)  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert np.array_equal(np.load(tmp_path / "out" / "sum.npy"), feeds["x"] + feeds["y"])


def test_runner_runs_the_isa_variant_python_loads(runner, workdir, tmp_path):
    """A library with x86-64-v3 code and this CPU's (isa_variants.py): the runner takes this
    CPU's, or the baseline under TVMOPT_MAX_CPU_ISA=x86-64-v2, as tvmopt.load does; a cap
    that is no level is one line."""
    from tvmopt.backends.cpu_features import host_features

    if "avx2" not in (host_features() or ()):
        pytest.skip("the baseline is x86-64-v3 code")
    library = workdir / "fat.so"
    tvmopt.compile(build_demo_model(), target="x86-64-v3", isa_variants=["llvm"]).export(library)
    feeds = {INPUT_NAME: np.random.default_rng(2).random(INPUT_SHAPE, dtype=np.float32)}
    inputs = save_inputs(tmp_path / "in", feeds)
    for cap in ("", "x86-64-v2"):
        env = {**os.environ, "TVMOPT_MAX_CPU_ISA": cap}
        result = run(runner, library, "--inputs", inputs, "--output", tmp_path / "out",
                     "--repeat", 1, env=env)  # fmt: skip
        assert result.returncode == 0, result.stderr
        os.environ["TVMOPT_MAX_CPU_ISA"] = cap
        try:
            loaded = tvmopt.load(library)
            python = loaded.run(feeds)
        finally:
            del os.environ["TVMOPT_MAX_CPU_ISA"]
        cpu = loaded.metadata.extra["cpu"]
        assert f"code for {cpu['mcpu']} ({cpu['isa']})" in result.stdout, result.stdout
        assert (cpu["mcpu"] == "x86-64-v3") == (cap != "")
        for name, output in read_outputs(tmp_path / "out", python).items():
            assert np.array_equal(output, python[name]), name
    env = {**os.environ, "TVMOPT_MAX_CPU_ISA": "avx9"}
    assert_one_line_error(run(runner, library, env=env), "TVMOPT_MAX_CPU_ISA=avx9 is not one of")


def test_runner_pads_up_to_a_bucket_as_python_does(runner, workdir, tmp_path):
    """--bucket-padding: a run between buckets takes the bucket's static function, its inputs
    padded in the middle dim and its outputs cut back, the function Python picks; a run too far
    below any bucket (4 / 3 > 1.25), or with a batch no bucket has, takes main."""
    spec = ["batch", "seq", 3]
    inputs = [(name, TensorProto.FLOAT, spec) for name in ("x", "y")]
    model = make_model([helper.make_node("Add", ["x", "y"], ["sum"])], inputs,
                       [("sum", TensorProto.FLOAT, spec)])  # fmt: skip
    library = workdir / "padded.so"
    compiled = tvmopt.compile(model, dims={"seq": "1..8"}, buckets={"seq": [4, 8]},
                              bucket_padding="y")  # fmt: skip
    compiled.export(library)
    rng = np.random.default_rng(1)
    for shape in [(1, 7, 3), (1, 3, 3), (2, 7, 3), (1, 4, 3)]:
        feeds = {n: rng.standard_normal(shape).astype(np.float32) for n in ("x", "y")}
        result = run(runner, library, "--inputs", save_inputs(tmp_path / "in", feeds),
                     "--output", tmp_path / "out", "--repeat", 1)  # fmt: skip
        assert result.returncode == 0, result.stderr
        function = compiled.function_for([shape, shape])
        assert f"function {function}\n" in result.stdout, result.stdout
        assert np.array_equal(np.load(tmp_path / "out" / "sum.npy"), feeds["x"] + feeds["y"])
    assert compiled.function_for([(1, 7, 3)] * 2) == "main__batch1_seq8"


@pytest.mark.parametrize(
    "shapes, fragment",
    [
        ({"x": (1, 9), "y": (1, 9)}, "input 'x' axis 1 (seq) is 9, outside the range 1..8 it"),
        ({"x": (2, 4), "y": (2, 5)}, "input 'y' axis 1 (seq) is 5, but input 'x' has seq = 4"),
        ({"x": (2, 4), "y": (3, 4)}, "input 'y' axis 0 (batch) is 3, but input 'x' has batch"),
    ],
)
def test_runner_refuses_symbolic_dims_as_python_does(symbolic_library, runner, tmp_path, shapes,
                                                     fragment):  # fmt: skip
    """Past the compiled range the kernels would read out of bounds (TVM's InternalError in
    the VM); the runner stops first, with the Python API's words."""
    feeds = {n: np.zeros(shape, np.float32) for n, shape in shapes.items()}
    result = run(runner, symbolic_library, "--inputs", save_inputs(tmp_path / "in", feeds),
                 "--output", tmp_path / "out")  # fmt: skip
    assert_one_line_error(result, fragment)
    with pytest.raises(tvmopt.errors.InputError, match=re.escape(fragment.split(" it")[0])):
        tvmopt.load(symbolic_library).run(feeds)
