"""Buckets: static variants inside a symbolic library, taken by runs of exactly their sizes;
every other size in the ranges runs the symbolic code, and both match ONNX Runtime."""

import numpy as np
import onnx
import pytest

import tvmopt
from tvmopt.buckets import Bucket, parse_bucket
from tvmopt.errors import OptionError

from .helpers import assert_matches_ort, relu_model
from .test_cli import assert_fails_cleanly, cli
from .test_symbolic_dims import feeds

torch = pytest.importorskip("torch")  # the exports under test come from torch.onnx

from .models_torch import export_dynamic, masked_bert  # noqa: E402

DIMS = {"batch": (1, 2), "seq": (1, 64)}
BUCKETS = {"seq": [8, 16]}


@pytest.fixture(scope="module")
def exported():
    module, args = masked_bert()
    return export_dynamic(module, args, dynamo=False)


@pytest.fixture(scope="module")
def bucketed(exported):
    return tvmopt.compile(exported, dims=DIMS, buckets=BUCKETS)


def test_buckets_recorded_with_batch_pinned_to_its_lower_end(bucketed):
    assert bucketed.metadata.extra["buckets"] == [
        {"function": "main__batch1_seq8", "dims": {"batch": 1, "seq": 8}},
        {"function": "main__batch1_seq16", "dims": {"batch": 1, "seq": 16}},
    ]


@pytest.mark.parametrize(
    "batch, seq, function",
    [(1, 8, "main__batch1_seq8"), (1, 16, "main__batch1_seq16"), (2, 16, "main"), (1, 9, "main")],
)
def test_runs_take_their_bucket_or_main_and_match_onnxruntime(exported, bucketed, batch, seq,
                                                             function):  # fmt: skip
    assert bucketed.function_for([(batch, seq)] * 2) == function
    assert_matches_ort(exported, bucketed, feeds(batch, seq))


def test_bucket_runs_its_own_kernels(bucketed):
    """The bucket's function calls kernels scheduled for its shape, not main's."""
    in_bucket = {k.name for k in bucketed.profile(feeds(1, 16), repeat=1).kernels}
    symbolic = {k.name for k in bucketed.profile(feeds(1, 15), repeat=1).kernels}
    assert in_bucket - symbolic, "the bucket ran main's kernels"


def test_exported_library_keeps_buckets_and_shares_weights(exported, bucketed, tmp_path):
    bucketed.export(tmp_path / "bucketed.so")
    tvmopt.compile(exported, dims=DIMS).export(tmp_path / "symbolic.so")
    loaded = tvmopt.load(tmp_path / "bucketed.so")
    assert loaded.metadata.extra["buckets"] == bucketed.metadata.extra["buckets"]
    assert loaded.function_for([(1, 8)] * 2) == "main__batch1_seq8"
    for batch, seq in [(1, 8), (2, 5)]:
        assert_matches_ort(exported, loaded, feeds(batch, seq))
    # the weights once, not once per bucket: only the kernels add
    sizes = [(tmp_path / name).stat().st_size for name in ("bucketed.so", "symbolic.so")]
    assert sizes[0] < 1.5 * sizes[1], sizes


@pytest.mark.parametrize(
    "buckets, fragment",
    [
        ({"seq": [65]}, "bucket seq=65 is outside seq's range 1..64"),
        ({"nosuch": [4]}, "a bucket names 'nosuch', which no input has"),
    ],
)
def test_bad_buckets_are_refused(buckets, fragment):
    model = relu_model(shape=("seq", 3))
    with pytest.raises(OptionError, match=fragment):
        tvmopt.compile(model, dims={"seq": (1, 64)}, buckets=buckets)


def test_buckets_with_quantize_are_refused():
    with pytest.raises(OptionError, match="buckets are built for float models"):
        tvmopt.compile(relu_model(shape=("seq", 3)), buckets={"seq": [4]},
                       quantize="int8-weights")  # fmt: skip


def test_bucket_pins_every_input_to_its_sizes():
    bucket = Bucket((("batch", 2), ("seq", 8)))
    model = relu_model(shape=("batch", "seq"))
    inputs, _ = tvmopt.frontend.onnx.signature(model)
    assert bucket.input_shapes(inputs) == {inputs[0].name: (2, 8)}
    assert bucket.function == "main__batch2_seq8"


@pytest.mark.parametrize("text", ["seq", "seq=", "seq=a,b", "=4"])
def test_bad_bucket_spec(text):
    with pytest.raises(OptionError, match="a bucket is NAME=SIZE,SIZE"):
        parse_bucket(text)


def test_cli_bucket_compiled_and_inspected(capsys, tmp_path):
    onnx.save(relu_model(shape=("batch", 3)), tmp_path / "relu.onnx")
    out = tmp_path / "relu.so"
    status, _, err = cli(capsys, "compile", tmp_path / "relu.onnx", "-o", out, "--dim",
                         "batch=1..8", "--bucket", "batch=2,4")  # fmt: skip
    assert status == 0, err
    status, text, _ = cli(capsys, "inspect", out)
    assert status == 0 and "bucket batch=2: static kernels (main__batch2)\n" in text
    x = np.arange(12, dtype=np.float32).reshape(4, 3) - 6
    assert np.array_equal(tvmopt.load(out).run({"x": x})["y"], np.maximum(x, 0))


def test_cli_bucket_outside_the_range_exits_2(capsys, tmp_path):
    onnx.save(relu_model(shape=("batch", 3)), tmp_path / "relu.onnx")
    out = tmp_path / "relu.so"
    status, _, err = cli(capsys, "compile", tmp_path / "relu.onnx", "-o", out, "--dim",
                         "batch=1..8", "--bucket", "batch=9")  # fmt: skip
    assert_fails_cleanly(status, err, "bucket batch=9 is outside batch's range 1..8", out)
