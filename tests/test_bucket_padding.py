"""Bucket padding: a run between buckets pads up to the next one (within 1.25x its elements)
and its outputs are cut back, matching ONNX Runtime on the unpadded inputs; a model that does
not mask the padded positions is refused at compile, and so are bad requests."""

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import tvmopt
from tvmopt.bucket_padding import PaddedRun, choose, pad, unpad
from tvmopt.errors import OptionError
from tvmopt.frontend.signature import TensorSpec

from .helpers import assert_matches_ort
from .test_buckets import BUCKETS, DIMS
from .test_cli import assert_fails_cleanly, cli
from .test_symbolic_dims import feeds

torch = pytest.importorskip("torch")

from .models_torch import export_dynamic, masked_bert  # noqa: E402


@pytest.fixture(scope="module")
def exported():
    module, args = masked_bert()
    return export_dynamic(module, args, dynamo=False)


@pytest.fixture(scope="module")
def padded(exported):
    return tvmopt.compile(exported, dims=DIMS, buckets=BUCKETS, bucket_padding="attention_mask")


@pytest.mark.parametrize(
    "batch, seq, function",
    [(1, 7, "main__batch1_seq8"), (1, 15, "main__batch1_seq16"), (1, 13, "main__batch1_seq16"),
     (1, 12, "main"), (2, 7, "main"), (1, 8, "main__batch1_seq8"), (1, 17, "main")],
)  # fmt: skip
def test_runs_between_buckets_pad_up_and_match_onnxruntime(exported, padded, batch, seq,
                                                           function):  # fmt: skip
    assert padded.function_for([(batch, seq)] * 2) == function
    assert_matches_ort(exported, padded, feeds(batch, seq))


def test_outputs_are_cut_back_to_the_run(padded):
    outputs = padded.run(feeds(1, 7))
    assert next(iter(outputs.values())).shape == (1, 7, 64)


def _mean_over_sequence() -> onnx.ModelProto:
    """Ignores its mask: the mean over the sequence changes when zeros are padded on."""
    graph = helper.make_graph(
        [helper.make_node("ReduceMean", ["x"], ["y"], axes=[1], keepdims=0),
         helper.make_node("Cast", ["mask"], ["mask_out"], to=TensorProto.FLOAT)],
        "mean", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "seq", 4]),
                 helper.make_tensor_value_info("mask", TensorProto.INT64, ["batch", "seq"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4]),
         helper.make_tensor_value_info("mask_out", TensorProto.FLOAT, ["batch", "seq"])],
    )  # fmt: skip
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_a_model_that_does_not_mask_is_refused():
    with pytest.raises(OptionError, match="does not mask the padded positions through 'mask'"):
        tvmopt.compile(_mean_over_sequence(), dims={"seq": (1, 32)}, buckets={"seq": [8]},
                       bucket_padding="mask")  # fmt: skip


@pytest.mark.parametrize(
    "options, fragment",
    [
        ({"bucket_padding": "mask"}, "give buckets too"),
        ({"buckets": {"seq": [8]}, "bucket_padding": "attention"},
         "names the mask input 'attention', which the model does not have; its inputs: x, mask"),
    ],
)  # fmt: skip
def test_bad_padding_requests(options, fragment):
    with pytest.raises(OptionError, match=None) as error:
        tvmopt.compile(_mean_over_sequence(), dims={"seq": (1, 32)}, **options)
    assert fragment in str(error.value)


RECORDS = [{"function": "f8", "dims": {"batch": 1, "seq": 8}},
           {"function": "f16", "dims": {"batch": 1, "seq": 16}}]  # fmt: skip


@pytest.mark.parametrize(
    "dims, function",
    [({"batch": 1, "seq": 7}, "f8"), ({"batch": 1, "seq": 9}, None), ({"batch": 1, "seq": 13},
     "f16"), ({"batch": 2, "seq": 7}, None), ({"batch": 1, "seq": 20}, None)],
)  # fmt: skip
def test_the_smallest_bucket_within_the_limit_is_chosen(dims, function):
    chosen = choose(RECORDS, dims, 1.25)
    assert (chosen and chosen.function) == function


def test_pad_and_unpad_touch_only_the_enlarged_dims():
    run = PaddedRun("f8", {"batch": (1, 1), "seq": (5, 8)})
    specs = [TensorSpec("ids", ("batch", "seq"), "int64"), TensorSpec("w", (3,), "float32")]
    padded = pad([np.ones((1, 5), np.int64), np.ones(3, np.float32)], specs, run)
    assert padded[0].tolist() == [[1, 1, 1, 1, 1, 0, 0, 0]] and padded[1].shape == (3,)
    out_specs = [TensorSpec("y", ("batch", "seq", 2), "float32")]
    assert unpad([np.zeros((1, 8, 2))], out_specs, run)[0].shape == (1, 5, 2)


def test_cli_bucket_padding_inspected_and_a_bad_mask_exits_2(capsys, tmp_path):
    onnx.save(_mean_over_sequence(), tmp_path / "mean.onnx")
    out = tmp_path / "mean.so"
    common = ["compile", tmp_path / "mean.onnx", "-o", out, "--dim", "seq=1..32", "--bucket",
              "seq=8", "--bucket-padding"]  # fmt: skip
    status, _, err = cli(capsys, *common, "nomask")
    assert_fails_cleanly(status, err, "names the mask input 'nomask'", out)
    status, _, err = cli(capsys, *common, "mask")
    assert_fails_cleanly(status, err, "does not mask the padded positions", out)
