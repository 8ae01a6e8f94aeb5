"""Structured pruning (tvmopt.pruning.structured): FFN neurons, attention heads and conv channel
groups are removed, the tensors shrink by the requested fraction, the model stays valid ONNX that
ONNX Runtime runs, and units whose weights are already zero go without changing the output."""

from __future__ import annotations

import io
import math
import warnings
from functools import cache

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper
from torch import nn

import tvmopt
from tvmopt.benchmark.models import SUITE, to_onnx_bytes
from tvmopt.benchmark.nets.bert import BertEncoder
from tvmopt.benchmark.nets.resnet import Block
from tvmopt.errors import InputError
from tvmopt.pruning.structured import prune_structured

from .helpers import assert_matches_ort, inverted_residual_cnn, make_model, ort_outputs

HIDDEN, HEADS, FFN, SEQ = 64, 4, 128, 16
HEAD_DIM = HIDDEN // HEADS


@cache
def bert(zero=None) -> onnx.ModelProto:
    """A 2-layer BertEncoder; `zero(module)` edits its weights before export."""
    torch.manual_seed(0)
    module = BertEncoder(vocab=100, hidden=HIDDEN, layers=2, heads=HEADS, ffn=FFN, max_len=32)
    if zero is not None:
        with torch.no_grad():
            zero(module)
    return onnx.load_from_string(to_onnx_bytes(module.eval(), (token_ids(),)))


def token_ids():
    ids = torch.randint(1, 100, (1, SEQ), generator=torch.Generator().manual_seed(1))
    ids[:, -3:] = 0  # padding exercises the mask
    return ids


class SplitAttention(nn.Module):
    """Hugging Face BERT's attention layout: separate Q, K, V projections, each reshaped to
    (batch, seq, heads, head_dim) with sizes read at run time, then an FFN with Relu."""

    def __init__(self):
        super().__init__()
        self.q, self.k, self.v = (nn.Linear(HIDDEN, HIDDEN) for _ in range(3))
        self.out = nn.Linear(HIDDEN, HIDDEN)
        self.ffn = nn.Sequential(nn.Linear(HIDDEN, FFN), nn.ReLU(), nn.Linear(FFN, HIDDEN))

    def forward(self, x):
        def split(t):
            return t.view(t.size()[:-1] + (HEADS, HEAD_DIM)).permute(0, 2, 1, 3)

        q = split(self.q(x) / math.sqrt(HEAD_DIM))  # scaled before the split, as in BART
        k, v = split(self.k(x)), split(self.v(x))
        scores = torch.softmax(q @ k.transpose(-1, -2), dim=-1)
        context = (scores @ v).permute(0, 2, 1, 3).contiguous()
        x = x + self.out(context.view(context.size()[:-2] + (HIDDEN,)))
        return x + self.ffn(x)


def export_dynamic(module, example, name: str) -> onnx.ModelProto:
    """`module` exported with dynamic batch and sequence axes on its one input, `name`."""
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module.eval(), (example,), buffer, input_names=[name],
                          dynamo=False, opset_version=17,
                          dynamic_axes={name: {0: "batch", 1: "sequence"}})  # fmt: skip
    return onnx.load_from_string(buffer.getvalue())


def assert_same_at_two_sizes(model, pruned, name, make_input):
    for batch, seq in [(1, SEQ), (3, 7)]:
        feeds = {name: make_input(batch, seq)}
        expected, actual = (ort_outputs(m, feeds) for m in (model, pruned))
        np.testing.assert_allclose(*actual.values(), *expected.values(), atol=2e-5)


def tiny_resnet(bottleneck: bool, zero=None) -> onnx.ModelProto:
    torch.manual_seed(0)
    blocks = [Block(8, 8, 1, bottleneck)]
    blocks += [Block(blocks[-1].out_channels, 8, 1, bottleneck)]
    blocks += [Block(blocks[-1].out_channels, 16, 2, bottleneck)]
    stem = [nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU()]
    head = [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(blocks[-1].out_channels, 5)]
    module = nn.Sequential(*stem, nn.MaxPool2d(2), *blocks, *head)
    with torch.no_grad():
        for layer in module.modules():
            if isinstance(layer, nn.BatchNorm2d):  # fresh statistics make every BN the same
                layer.running_mean.uniform_(-0.1, 0.1)
                layer.running_var.uniform_(0.5, 1.5)
                layer.bias.uniform_(-0.1, 0.1)
        if zero is not None:
            zero(module)
    image = torch.randn(1, 3, 16, 16, generator=torch.Generator().manual_seed(2))
    return onnx.load_from_string(to_onnx_bytes(module.eval(), (image,)))


def outputs(model: onnx.ModelProto) -> np.ndarray:
    feeds = {}
    for value in model.graph.input:
        shape = [d.dim_value for d in value.type.tensor_type.shape.dim]
        if value.type.tensor_type.elem_type == TensorProto.INT64:
            feeds[value.name] = token_ids().numpy()
        else:
            feeds[value.name] = np.random.default_rng(3).standard_normal(shape).astype(np.float32)
    return next(iter(ort_outputs(model, feeds).values()))


def weight(model: onnx.ModelProto, node_name: str, index: int = 1) -> np.ndarray:
    """A node's constant input, looked through the Identity the exporter shares weights with."""
    nodes = {out: node for node in model.graph.node for out in node.output}
    inits = {init.name: init for init in model.graph.initializer}
    name = next(node for node in model.graph.node if node.name == node_name).input[index]
    while name not in inits:
        name = nodes[name].input[0]
    return numpy_helper.to_array(inits[name])


def checked(result) -> onnx.ModelProto:
    onnx.checker.check_model(result.model, full_check=True)
    return result.model


# ---- transformers ----


def test_ffn_and_heads_shrink_by_the_fraction_and_still_run():
    model = bert()
    result = prune_structured(model, ffn=0.5, heads=0.5)
    pruned = checked(result)
    kinds = sorted((row["kind"], row["before"], row["after"]) for row in result.rows)
    assert kinds == [("ffn", FFN, FFN // 2)] * 2 + [("heads", HEADS, HEADS // 2)] * 2
    for layer in range(2):
        prefix = f"/layers.{layer}"
        assert weight(pruned, f"{prefix}/ffn/ffn.0/MatMul").shape == (HIDDEN, FFN // 2)
        assert weight(pruned, f"{prefix}/ffn/ffn.2/MatMul").shape == (FFN // 2, HIDDEN)
        assert weight(pruned, f"{prefix}/attention/qkv/MatMul").shape == (HIDDEN, 3 * HIDDEN // 2)
        assert weight(pruned, f"{prefix}/attention/qkv/Add", 0).shape == (3 * HIDDEN // 2,)
        assert weight(pruned, f"{prefix}/attention/out/MatMul").shape == (HIDDEN // 2, HIDDEN)
        assert list(weight(pruned, f"{prefix}/attention/Reshape")) == [1, SEQ, 3, 2, HEAD_DIM]
    assert outputs(pruned).shape == outputs(model).shape
    assert "total" in result.describe() and "/layers.1/ffn/ffn.0/MatMul" in result.describe()


def test_the_model_given_is_left_as_it_was():
    model = bert()
    before = model.SerializeToString()
    prune_structured(model, ffn=0.5, heads=0.5)
    assert model.SerializeToString() == before


def test_describe_has_a_row_per_group_and_totals_per_kind():
    table = prune_structured(bert(), ffn=0.5, heads=0.25).describe().splitlines()
    assert table[0].split() == ["group", "kind", "before", "after"]
    assert len(table) == 1 + 4 + 2
    assert table[-2].split() == ["total", "ffn", str(2 * FFN), str(FFN)]
    assert table[-1].split() == ["total", "heads", str(2 * HEADS), str(2 * (HEADS - 1))]


def test_fraction_zero_changes_nothing():
    model = bert()
    result = prune_structured(model, ffn=0.0, heads=0.0)
    assert result.rows == []
    np.testing.assert_array_equal(outputs(checked(result)), outputs(model))


DEAD_NEURONS = np.arange(0, FFN, 2)  # every other neuron
DEAD_HEADS = [1, 2]


def _kill_neurons_and_heads(module):
    for layer in module.layers:
        first, second = layer.ffn[0], layer.ffn[2]
        first.weight[DEAD_NEURONS] = 0
        first.bias[DEAD_NEURONS] = 0
        second.weight[:, DEAD_NEURONS] = 0
        for head in DEAD_HEADS:  # a head whose output-projection rows are zero adds nothing
            layer.attention.out.weight[:, head * HEAD_DIM : (head + 1) * HEAD_DIM] = 0


def test_zero_neurons_and_heads_are_the_ones_removed_and_the_output_holds():
    model = bert(_kill_neurons_and_heads)
    pruned = checked(prune_structured(model, ffn=0.5, heads=0.5))
    dead_rows = [h * HEAD_DIM + i for h in DEAD_HEADS for i in range(HEAD_DIM)]
    for layer in range(2):
        prefix = f"/layers.{layer}"
        w1 = weight(model, f"{prefix}/ffn/ffn.0/MatMul")
        np.testing.assert_array_equal(
            weight(pruned, f"{prefix}/ffn/ffn.0/MatMul"), np.delete(w1, DEAD_NEURONS, axis=1)
        )
        w_o = weight(model, f"{prefix}/attention/out/MatMul")
        np.testing.assert_array_equal(
            weight(pruned, f"{prefix}/attention/out/MatMul"), np.delete(w_o, dead_rows, axis=0)
        )
    np.testing.assert_allclose(outputs(pruned), outputs(model), atol=2e-5)


def test_live_units_removed_do_change_the_output():
    """The check above can fail: pruning units that are not zero moves the output."""
    model = bert()
    pruned = prune_structured(model, ffn=0.5, heads=0.5).model
    assert np.abs(outputs(pruned) - outputs(model)).max() > 1e-3


def test_separate_q_k_v_projections_and_a_relu_ffn():
    torch.manual_seed(0)
    module = SplitAttention().eval()
    with torch.no_grad():
        module.out.weight[:, :HEAD_DIM] = 0  # head 0 is dead
        module.ffn[0].weight[:32] = 0
        module.ffn[0].bias[:32] = 0
    model = export_dynamic(module, torch.randn(1, SEQ, HIDDEN), "x")
    assert "Shape" in {node.op_type for node in model.graph.node}
    result = prune_structured(model, ffn=0.25, heads=0.25)
    pruned = checked(result)
    assert sorted((r["kind"], r["after"]) for r in result.rows) == [("ffn", 96), ("heads", 3)]
    for name in ("/q/MatMul", "/k/MatMul", "/v/MatMul"):
        expected = np.delete(weight(model, name), np.arange(HEAD_DIM), axis=1)
        np.testing.assert_array_equal(weight(pruned, name), expected)

    def hidden_states(batch, seq):
        return np.random.default_rng(seq).standard_normal((batch, seq, HIDDEN), np.float32)

    assert_same_at_two_sizes(model, pruned, "x", hidden_states)


def test_three_tokens_are_not_a_fused_qkv_axis():
    """(1, 3, heads, head_dim) splits one projection: the 3 is the sequence, not Q, K, V."""
    torch.manual_seed(0)
    module = SplitAttention().eval()
    model = onnx.load_from_string(to_onnx_bytes(module, (torch.randn(1, 3, HIDDEN),)))
    result = prune_structured(model, heads=0.5)
    assert [row["after"] for row in result.rows] == [HEADS // 2]
    assert weight(checked(result), "/q/MatMul").shape == (HIDDEN, HIDDEN // 2)


def test_dynamic_axes_shapes_built_at_run_time():
    """Exported with dynamic batch and sequence, the Reshapes' shapes are Concats of run-time
    sizes and constants; the merge's width comes from the input's shape at run time."""
    torch.manual_seed(0)
    module = BertEncoder(vocab=100, hidden=HIDDEN, layers=1, heads=HEADS, ffn=FFN, max_len=32)
    with torch.no_grad():
        _kill_neurons_and_heads(module)
    model = export_dynamic(module, token_ids(), "ids")
    result = prune_structured(model, ffn=0.5, heads=0.5)
    assert sorted(row["after"] for row in result.rows) == [HEADS // 2, FFN // 2]
    pruned = checked(result)

    def ids(batch, seq):
        return np.random.default_rng(seq).integers(1, 100, (batch, seq))

    assert_same_at_two_sizes(model, pruned, "ids", ids)


@pytest.mark.parametrize("activation", ["Relu", "Gelu", "FastGelu"])
def test_ffn_activations(activation):
    rng = np.random.default_rng(0)
    w1, w2 = rng.standard_normal((8, 16), np.float32), rng.standard_normal((16, 8), np.float32)
    w1[:, :4], w2[:4] = 0, 0
    bias = {"b1": rng.standard_normal(16).astype(np.float32)}
    bias["b1"][:4] = 0
    domain = "" if activation == "Relu" else "com.microsoft"
    act_inputs = ["h", "b1"] if activation == "FastGelu" else ["hb"]
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["h"], name="fc1")]
    if activation != "FastGelu":
        nodes.append(helper.make_node("Add", ["h", "b1"], ["hb"], name="bias1"))
    nodes += [
        helper.make_node(activation, act_inputs, ["a"], name="act", domain=domain),
        helper.make_node("MatMul", ["a", "w2"], ["y"], name="fc2"),
    ]
    extra = {"com.microsoft": 1} if domain else None
    io = [("x", TensorProto.FLOAT, [2, 8])], [("y", TensorProto.FLOAT, [2, 8])]
    model = make_model(nodes, *io, {"w1": w1, "w2": w2, **bias}, extra_opsets=extra)
    pruned = prune_structured(model, ffn=0.25).model
    assert weight(pruned, "fc1").shape == (8, 12) and weight(pruned, "fc2").shape == (12, 8)
    np.testing.assert_allclose(outputs(pruned), outputs(model), atol=1e-5)


@pytest.mark.parametrize("trans_b", [0, 1])
def test_gemm_ffn(trans_b):
    rng = np.random.default_rng(0)
    w1, w2 = rng.standard_normal((8, 16), np.float32), rng.standard_normal((16, 4), np.float32)
    w1[:, 3], w2[3], b1 = 0, 0, rng.standard_normal(16).astype(np.float32)
    b1[3] = 0
    weights = {"w1": w1.T.copy() if trans_b else w1, "w2": w2.T.copy() if trans_b else w2, "b1": b1}
    nodes = [
        helper.make_node("Gemm", ["x", "w1", "b1"], ["h"], name="fc1", transB=trans_b),
        helper.make_node("Relu", ["h"], ["a"], name="act"),
        helper.make_node("Gemm", ["a", "w2"], ["y"], name="fc2", transB=trans_b),
    ]
    io = [("x", TensorProto.FLOAT, [2, 8])], [("y", TensorProto.FLOAT, [2, 4])]
    model = make_model(nodes, *io, weights)
    pruned = checked(prune_structured(model, ffn=1 / 16))
    expected = np.delete(weights["w1"], 3, axis=0 if trans_b else 1)
    np.testing.assert_array_equal(weight(pruned, "fc1"), expected)
    np.testing.assert_allclose(outputs(pruned), outputs(model), atol=1e-5)


# ---- CNNs ----


@pytest.mark.parametrize("bottleneck", [False, True])
def test_resnet_channel_groups_shrink_by_the_fraction(bottleneck):
    model = tiny_resnet(bottleneck)
    result = prune_structured(model, channels=0.5)
    pruned = checked(result)
    assert result.rows and all(row["after"] == row["before"] // 2 for row in result.rows)
    convs = [node for node in model.graph.node if node.op_type == "Conv"]
    before = sum(weight(model, node.name).size for node in convs)
    after = sum(weight(pruned, node.name).size for node in convs)
    assert after < 0.3 * before  # most convs lose half their inputs and half their outputs
    assert weight(pruned, convs[0].name).shape[1] == 3  # the image keeps its channels
    assert outputs(pruned).shape == outputs(model).shape


def test_residual_group_is_pruned_together():
    result = prune_structured(tiny_resnet(False), channels=0.5)
    pruned = result.model
    stage = ["/0/Conv", "/4/body/body.3/Conv", "/5/body/body.3/Conv"]  # tied by residual Adds
    assert {weight(pruned, name).shape[0] for name in stage} == {4}
    assert weight(pruned, "/5/body/body.0/Conv").shape[1] == 4
    assert "/4/body/body.3/Conv" not in [row["group"] for row in result.rows]  # one row for all


DEAD_CHANNELS = [0, 3, 5, 6]
OTHER_GROUPS = ["/4/body/body.0/Conv", "/5/body/body.0/Conv", "/6/*"]


def _kill_stage_one_channels(module):
    """Channels of the first stage's residual group: every conv writing it gets zero filters
    and a zero BN (which the exporter folds into the conv)."""
    blocks = [m for m in module if isinstance(m, Block)]
    for conv, norm in [(module[0], module[1])] + [(b.body[3], b.body[4]) for b in blocks[:2]]:
        conv.weight[DEAD_CHANNELS] = 0
        norm.weight[DEAD_CHANNELS] = 0
        norm.bias[DEAD_CHANNELS] = 0


def test_zero_channels_are_the_ones_removed_and_the_output_holds():
    model = tiny_resnet(False, _kill_stage_one_channels)
    result = prune_structured(model, channels=0.5, exclude=OTHER_GROUPS)
    pruned = checked(result)
    assert [row["group"] for row in result.rows] == ["/0/Conv"]
    for name in ["/0/Conv", "/4/body/body.3/Conv", "/5/body/body.3/Conv"]:
        expected = np.delete(weight(model, name), DEAD_CHANNELS, axis=0)
        np.testing.assert_array_equal(weight(pruned, name), expected)
    for name in ["/4/body/body.0/Conv", "/6/body/body.0/Conv", "/6/shortcut/shortcut.0/Conv"]:
        expected = np.delete(weight(model, name), DEAD_CHANNELS, axis=1)
        np.testing.assert_array_equal(weight(pruned, name), expected)
    np.testing.assert_allclose(outputs(pruned), outputs(model), atol=1e-5)


@pytest.mark.parametrize("name", ["resnet18", "resnet50"])
def test_full_size_resnets(name):
    module, inputs = SUITE[name].build()
    model = onnx.load_from_string(to_onnx_bytes(module, inputs))
    result = prune_structured(model, channels=0.5)
    pruned = checked(result)
    assert all(row["after"] == row["before"] // 2 for row in result.rows)
    assert outputs(pruned).shape == outputs(model).shape


def test_depthwise_convs_follow_their_input_channels():
    model = inverted_residual_cnn()
    result = prune_structured(model, channels=0.5)
    pruned = checked(result)
    depthwise = next(n for n in pruned.graph.node if n.name == "depthwise_a")
    assert weight(pruned, "depthwise_a").shape == (16, 1, 3, 3)
    assert (
        helper.get_attribute_value(next(a for a in depthwise.attribute if a.name == "group")) == 16
    )
    assert weight(pruned, "project_a").shape == (4, 16, 1, 1)  # its group is tied to the stem's
    assert outputs(pruned).shape == outputs(model).shape


def test_concat_offsets_channels():
    rng = np.random.default_rng(0)
    nodes = [
        helper.make_node("Conv", ["x", "wa"], ["a"], name="a", pads=[1, 1, 1, 1]),
        helper.make_node("Conv", ["x", "wb"], ["b"], name="b"),
        helper.make_node("Concat", ["a", "b"], ["c"], axis=1, name="concat"),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("Conv", ["r", "wc"], ["y"], name="c"),
    ]
    weights = {"wa": rng.standard_normal((4, 3, 3, 3), np.float32),
               "wb": rng.standard_normal((6, 3, 1, 1), np.float32),
               "wc": rng.standard_normal((5, 10, 1, 1), np.float32)}  # fmt: skip
    weights["wa"][[1, 2]] = 0
    weights["wb"][[0, 4, 5]] = 0
    model = make_model(nodes, [("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                       [("y", TensorProto.FLOAT, [1, 5, 8, 8])], weights)  # fmt: skip
    pruned = checked(prune_structured(model, channels=0.5))
    expected = np.delete(weights["wc"], [1, 2, 4, 8, 9], axis=1)
    np.testing.assert_array_equal(weight(pruned, "c"), expected)
    np.testing.assert_allclose(outputs(pruned), outputs(model), atol=1e-5)


def test_pad_resize_and_slice_pass_channels_through():
    """An FPN-style path: conv -> Pad -> Resize (scales) -> Slice of the maps -> conv."""
    rng = np.random.default_rng(0)
    nodes = [
        helper.make_node("Conv", ["x", "wa"], ["a"], name="a"),
        helper.make_node("Pad", ["a", "pads"], ["p"], name="pad"),
        helper.make_node("Resize", ["p", "", "scales"], ["r"], name="resize", mode="nearest"),
        helper.make_node("Slice", ["r", "starts", "ends", "axes"], ["s"], name="slice"),
        helper.make_node("Conv", ["s", "wb"], ["y"], name="b"),
    ]
    weights = {"wa": rng.standard_normal((6, 3, 1, 1), np.float32),
               "wb": rng.standard_normal((2, 6, 1, 1), np.float32),
               "pads": np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64),
               "scales": np.array([1, 1, 2, 2], np.float32),
               "starts": np.array([1], np.int64), "ends": np.array([9], np.int64),
               "axes": np.array([2], np.int64)}  # fmt: skip
    weights["wa"][[2, 4, 5]] = 0
    io = [("x", TensorProto.FLOAT, [1, 3, 4, 4])], [("y", TensorProto.FLOAT, [1, 2, 8, 12])]
    model = make_model(nodes, *io, weights)
    pruned = checked(prune_structured(model, channels=0.5))
    np.testing.assert_array_equal(weight(pruned, "b"), np.delete(weights["wb"], [2, 4, 5], axis=1))
    np.testing.assert_allclose(outputs(pruned), outputs(model), atol=1e-5)


def test_matmul_on_maps_is_not_a_dense_layer():
    """MatMul contracts the maps' width, not their channels, even when the sizes agree: the
    conv's channels must stay."""
    rng = np.random.default_rng(0)
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], name="conv"),
        helper.make_node("MatMul", ["c", "m"], ["y"], name="matmul"),
    ]
    weights = {"w": rng.standard_normal((4, 3, 1, 1), np.float32),
               "m": rng.standard_normal((4, 5), np.float32)}  # fmt: skip
    io = [("x", TensorProto.FLOAT, [1, 3, 4, 4])], [("y", TensorProto.FLOAT, [1, 4, 4, 5])]
    with pytest.raises(InputError, match="channels: found no prunable conv channels"):
        prune_structured(make_model(nodes, *io, weights), channels=0.5)


# ---- options and bad inputs ----


def test_exclude_leaves_matching_groups_alone():
    result = prune_structured(bert(), ffn=0.5, heads=0.5, exclude=["/layers.0/*"])
    assert {row["group"].split("/")[1] for row in result.rows} == {"layers.1"}
    assert weight(result.model, "/layers.0/ffn/ffn.0/MatMul").shape == (HIDDEN, FFN)


def test_l1_criterion_also_finds_the_dead_neurons():
    model = bert(_kill_neurons_and_heads)
    pruned = prune_structured(model, ffn=0.5, criterion="l1").model
    np.testing.assert_allclose(outputs(pruned), outputs(model), atol=2e-5)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"ffn": 1.0}, "ffn must be a fraction in [0, 1), got 1.0"),
        ({"heads": -0.1}, "heads must be a fraction in [0, 1), got -0.1"),
        ({"channels": "half"}, "channels must be a fraction in [0, 1), got 'half'"),
        ({"channels": 0.5}, "channels: found no prunable conv channels"),
        ({"ffn": 0.5, "exclude": ["nothing*"]}, "exclude pattern 'nothing*' matches no node"),
        ({"ffn": 0.5, "criterion": "l3"},
         "criterion must be one of l1, l2, activation, obs, got 'l3'"),
    ],
)
def test_bad_inputs_get_one_line(options, message):
    with pytest.raises(InputError) as error:
        prune_structured(bert(), **options)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_heads_on_a_cnn_is_an_error():
    with pytest.raises(InputError, match="heads: found no attention"):
        prune_structured(inverted_residual_cnn(), heads=0.5)


def test_not_a_model_is_an_error():
    with pytest.raises(InputError, match="onnx.ModelProto"):
        prune_structured(b"bytes", ffn=0.5)


# ---- compiled ----


def test_tvmopt_compiles_a_pruned_encoder_like_onnxruntime():
    pruned = prune_structured(bert(), ffn=0.5, heads=0.5).model
    assert_matches_ort(pruned, tvmopt.compile(pruned), {"input": token_ids().numpy()})


def test_tvmopt_compiles_a_pruned_resnet_like_onnxruntime():
    pruned = prune_structured(tiny_resnet(bottleneck=True), channels=0.5).model
    assert_matches_ort(pruned, tvmopt.compile(pruned))


def test_cli_structured_writes_the_smaller_model(tmp_path, capfd):
    from tvmopt.cli import main

    source, output = tmp_path / "bert.onnx", tmp_path / "small.onnx"
    onnx.save(bert(), source)
    assert main(["prune", str(source), "-o", str(output), "--ffn", "0.5", "--heads", "0.25"]) == 0
    assert f"wrote {output}" in capfd.readouterr().out
    expected = prune_structured(bert(), ffn=0.5, heads=0.25).model
    pruned = onnx.load(output)
    assert pruned.graph.initializer == expected.graph.initializer
    assert sum(numpy_helper.to_array(t).size for t in pruned.graph.initializer) < sum(
        numpy_helper.to_array(t).size for t in bert().graph.initializer
    )


def test_cli_drop_layers_writes_the_shallower_model(tmp_path, capfd):
    from tvmopt.cli import main
    from tvmopt.pruning.structured import drop_layers

    source, output = tmp_path / "bert.onnx", tmp_path / "shallow.onnx"
    onnx.save(bert(), source)
    assert main(["prune", str(source), "-o", str(output), "--drop-layers", "0"]) == 0
    assert "dropped layers 0 of 0, 1" in capfd.readouterr().out
    assert onnx.load(output).graph.initializer == drop_layers(bert(), [0]).graph.initializer


@pytest.mark.parametrize("round_to", [4, 16])
def test_kept_channels_round_up_to_whole_vectors(round_to):
    model = tiny_resnet(True)
    plain = prune_structured(model, channels=0.3)
    rounded = prune_structured(model, channels=0.3, round_to=round_to)
    pruned = checked(rounded)
    for row, unrounded in zip(rounded.rows, plain.rows, strict=True):
        assert row["after"] % round_to == 0 or row["after"] == row["before"], row
        assert unrounded["after"] <= row["after"] < unrounded["after"] + round_to
    assert any(a["after"] != b["after"] for a, b in zip(rounded.rows, plain.rows, strict=True))
    assert outputs(pruned).shape == outputs(model).shape
    assert_matches_ort(pruned, tvmopt.compile(pruned))


@pytest.mark.parametrize("round_to", [0, -16, 2.5, True])
def test_round_to_that_is_no_count_is_one_line(round_to):
    with pytest.raises(InputError) as error:
        prune_structured(tiny_resnet(False), channels=0.3, round_to=round_to)
    assert "round_to must be a whole number" in str(error.value) and "\n" not in str(error.value)


def test_cli_round_to_prunes_as_the_api_does_and_is_structured_only(tmp_path, capsys):
    from tvmopt.cli import main

    source, output = tmp_path / "cnn.onnx", tmp_path / "small.onnx"
    onnx.save(tiny_resnet(True), source)
    args = ["prune", str(source), "-o", str(output), "--channels", "0.3", "--round-to", "16"]
    assert main(args) == 0, capsys.readouterr().err
    expected = prune_structured(tiny_resnet(True), channels=0.3, round_to=16).model
    assert onnx.load(output).graph.initializer == expected.graph.initializer
    magnitude = ["prune", str(source), "-o", str(tmp_path / "m.onnx"), "--sparsity", "0.5",
                 "--round-to", "16"]  # fmt: skip
    assert main(magnitude) == 2
    assert "--round_to apply to structured pruning" in capsys.readouterr().err
    assert not (tmp_path / "m.onnx").exists()
