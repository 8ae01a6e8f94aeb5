"""Magnitude pruning (tvmopt.prune, `tvmopt prune`): the exact sparsity of every mode and scope,
the block and N:M patterns read on the weight as its op sees it, (K, N), include/exclude, the
output error report against ONNX Runtime, a pruned model that tvmopt compiles to ONNX Runtime's
numbers, and every bad input as one line and exit status 2 with no file left."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import tvmopt
from tvmopt.cli import main

from .helpers import assert_matches_ort, inverted_residual_cnn, make_model, ort_outputs, relu_model


def _weight(rng, *shape):
    return (rng.standard_normal(shape) / np.sqrt(shape[0])).astype(np.float32)


def mlp() -> onnx.ModelProto:
    """x -> MatMul(fc1, +bias) -> Relu -> Gemm(fc2, transB=1) -> Relu -> MatMul(batched head)."""
    rng = np.random.default_rng(0)
    node = helper.make_node
    nodes = [
        node("MatMul", ["x", "fc1.weight"], ["h1"], name="fc1"),
        node("Add", ["h1", "fc1.bias"], ["h2"]),
        node("Relu", ["h2"], ["h3"]),
        node("Gemm", ["h3", "fc2.weight", "fc2.bias"], ["h4"], transB=1, name="fc2"),
        node("Relu", ["h4"], ["h5"]),
        node("Reshape", ["h5", "heads"], ["h6"]),
        node("MatMul", ["h6", "head.weight"], ["y"], name="head"),
    ]
    weights = {"fc1.weight": _weight(rng, 32, 48), "fc1.bias": _weight(rng, 48),
               "fc2.weight": _weight(rng, 64, 48), "fc2.bias": _weight(rng, 64),
               "heads": np.array([4, 2, 1, 32], np.int64),
               "head.weight": _weight(rng, 2, 32, 16)}  # fmt: skip
    return make_model(nodes, [("x", TensorProto.FLOAT, [4, 32])],
                      [("y", TensorProto.FLOAT, [4, 2, 1, 16])], weights)  # fmt: skip


def tied_embedding() -> onnx.ModelProto:
    """A table both gathered (an embedding) and read by a MatMul as B, beside a plain weight."""
    rng = np.random.default_rng(1)
    node = helper.make_node
    nodes = [node("Gather", ["table", "ids"], ["e"], name="embed"),
             node("MatMul", ["e", "proj"], ["p"], name="proj"),
             node("MatMul", ["p", "table"], ["y"], name="unembed")]  # fmt: skip
    weights = {"table": _weight(rng, 16, 8), "proj": _weight(rng, 8, 16)}
    return make_model(nodes, [("ids", TensorProto.INT64, [2, 4])],
                      [("y", TensorProto.FLOAT, [2, 4, 8])], weights)  # fmt: skip


def _arrays(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    return {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}


def _kn(model: onnx.ModelProto, name: str) -> np.ndarray:
    """The weight as its op reads it, (batch, K, N), computed here apart from tvmopt's views."""
    weight = _arrays(model)[name]
    node = next(n for n in model.graph.node if len(n.input) > 1 and n.input[1] == name)
    if node.op_type == "Conv":  # K: the kernel taps x the input channels, channels innermost
        return weight.transpose(2, 3, 1, 0).reshape(1, -1, weight.shape[0])
    if node.op_type == "Gemm" and any(a.name == "transB" and a.i for a in node.attribute):
        return weight.T[None]
    return weight.reshape(-1, *weight.shape[-2:])


def _expected_zeros(size: int, sparsity: float) -> int:
    return int(np.floor(sparsity * size + 0.5))


PRUNABLE = {"mlp": ["fc1.weight", "fc2.weight", "head.weight"],
            "cnn": ["w0", "w1", "w2", "w3", "w4", "w5", "w6", "m"]}  # fmt: skip
MODELS = {"mlp": mlp, "cnn": inverted_residual_cnn}


@pytest.mark.parametrize("sparsity", [0.0, 0.3, 0.75, 0.9])
@pytest.mark.parametrize("name", ["mlp", "cnn"])
def test_unstructured_layer_scope_hits_the_sparsity_of_each_weight(name, sparsity):
    dense = MODELS[name]()
    pruned = tvmopt.prune(dense, sparsity).model
    before, after = _arrays(dense), _arrays(pruned)
    for weight in PRUNABLE[name]:
        zeros = after[weight] == 0
        assert zeros.sum() == _expected_zeros(zeros.size, sparsity), weight
        kept, gone = np.abs(before[weight][~zeros]), np.abs(before[weight][zeros])
        assert gone.size == 0 or gone.max() <= kept.min(), f"{weight}: not the smallest"
    untouched = set(before) - set(PRUNABLE[name])  # biases, shapes, clip bounds
    assert untouched and all(np.array_equal(before[t], after[t]) for t in untouched)


@pytest.mark.parametrize("name", ["mlp", "cnn"])
def test_global_scope_is_one_threshold_over_all_weights(name):
    dense = MODELS[name]()
    result = tvmopt.prune(dense, 0.6, scope="global")
    before, after = _arrays(dense), _arrays(result.model)
    weights = PRUNABLE[name]
    zeros = np.concatenate([after[w].ravel() == 0 for w in weights])
    magnitudes = np.concatenate([np.abs(before[w]).ravel() for w in weights])
    assert zeros.sum() == _expected_zeros(zeros.size, 0.6)
    assert magnitudes[zeros].max() <= magnitudes[~zeros].min()
    shares = [layer.after for layer in result.report.layers]
    assert max(shares) - min(shares) > 0.05, "global scope pruned every weight alike"
    assert result.report.sparsity == pytest.approx(zeros.mean())


def _blocks(kn: np.ndarray, rows: int, cols: int) -> np.ndarray:
    batch, k, n = kn.shape
    return kn.reshape(batch, k // rows, rows, n // cols, cols).transpose(0, 1, 3, 2, 4)


@pytest.mark.parametrize("scope", ["layer", "global"])
@pytest.mark.parametrize("block", ["1x8", "1x4", "8x1", "16x1", "2x2"])
def test_blocks_are_zero_whole_at_the_exact_share(block, scope):
    rows, cols = (int(side) for side in block.split("x"))
    dense = mlp()
    result = tvmopt.prune(dense, 0.5, block=block, scope=scope)
    zero_blocks, all_blocks, norms = 0, 0, {}
    for weight in PRUNABLE["mlp"]:
        blocks = _blocks(_kn(result.model, weight), rows, cols)
        zero = (blocks == 0).all(axis=(-2, -1))
        assert ((blocks != 0).all(axis=(-2, -1)) | zero).all(), f"{weight}: a block half zero"
        if scope == "layer":
            assert zero.sum() == _expected_zeros(zero.size, 0.5), weight
        zero_blocks, all_blocks = zero_blocks + zero.sum(), all_blocks + zero.size
        dense_norms = np.sqrt((_blocks(_kn(dense, weight), rows, cols) ** 2).sum(axis=(-2, -1)))
        norms[weight] = (dense_norms[zero], dense_norms[~zero])
        assert f"{rows}x{cols} blocks: {zero.sum()}/{zero.size} zero" in [
            layer.structure for layer in result.report.layers if layer.name == weight
        ]
    assert zero_blocks == _expected_zeros(all_blocks, 0.5)
    groups = list(norms.values()) if scope == "layer" else [
        tuple(np.concatenate(part) for part in zip(*norms.values(), strict=True))
    ]  # fmt: skip
    for gone, kept in groups:
        assert gone.max() <= kept.min() + 1e-6, "a block with a larger norm was pruned"


def test_l1_norm_scores_blocks_by_their_sum_of_magnitudes():
    dense = mlp()
    pruned = tvmopt.prune(dense, 0.5, block="4x4", norm="l1", include=["fc1"]).model
    blocks = _blocks(_kn(pruned, "fc1.weight"), 4, 4)
    zero = (blocks == 0).all(axis=(-2, -1))
    sums = np.abs(_blocks(_kn(dense, "fc1.weight"), 4, 4)).sum(axis=(-2, -1))
    assert zero.sum() == zero.size // 2 and sums[zero].max() <= sums[~zero].min()


def test_prune_takes_a_block_spec_object():
    import tvmopt.pruning.spec as spec

    assert tvmopt.prune(mlp(), block=spec.Block(1, 4)).report.pattern == "block 1x4"


def test_block_rows_run_along_k_and_columns_along_n():
    """1x8 on fc2 (Gemm, transB=1: stored (N, K)) zeros 8 consecutive outputs of one input
    row: in the stored weight, 8 consecutive rows of one column."""
    pruned = _arrays(tvmopt.prune(mlp(), 0.5, block="1x8", include=["fc2"]).model)["fc2.weight"]
    stored = pruned.reshape(64 // 8, 8, 48)  # (N / 8, 8, K)
    zero = (stored == 0).all(axis=1)
    assert zero.sum() == 8 * 48 // 2 and ((stored != 0).all(axis=1) | zero).all()


@pytest.mark.parametrize("nm", ["2:4", "1:4", "4:8"])
def test_n_of_every_m_along_k_are_kept(nm):
    n, m = (int(part) for part in nm.split(":"))
    dense = inverted_residual_cnn()
    result = tvmopt.prune(dense, nm=nm, exclude=["stem", "depthwise_*"])  # K = 27, 9, 9
    assert {layer.name for layer in result.report.layers} == {"w1", "w3", "w4", "w6", "m"}
    for layer in result.report.layers:
        pruned = _kn(result.model, layer.name)
        groups = pruned.reshape(pruned.shape[0], -1, m, pruned.shape[-1])
        assert ((groups != 0).sum(axis=2) == n).all(), layer.name
        magnitudes = np.abs(_kn(dense, layer.name)).reshape(groups.shape)
        smallest_kept = np.where(groups != 0, magnitudes, np.inf).min(axis=2)
        largest_gone = np.where(groups == 0, magnitudes, -np.inf).max(axis=2)
        assert (largest_gone <= smallest_kept).all(), layer.name
        assert layer.after == pytest.approx(1 - n / m) and layer.structure == f"{nm} along K"


def test_conv_n_m_groups_are_input_channels_of_one_tap():
    node = helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1], name="conv")
    weight = np.random.default_rng(2).standard_normal((4, 8, 3, 3)).astype(np.float32)
    model = make_model([node], [("x", TensorProto.FLOAT, [1, 8, 6, 6])],
                       [("y", TensorProto.FLOAT, [1, 4, 6, 6])], {"w": weight})  # fmt: skip
    pruned = _arrays(tvmopt.prune(model, nm="2:4").model)["w"]
    per_group = (pruned.reshape(4, 2, 4, 3, 3) != 0).sum(axis=2)  # (Cout, Cin / 4, kh, kw)
    assert (per_group == 2).all()


def test_include_exclude_and_tied_embeddings():
    dense = tied_embedding()
    only_proj = tvmopt.prune(dense, 0.5)  # the table is also gathered: an embedding, left alone
    assert [layer.name for layer in only_proj.report.layers] == ["proj"]
    assert np.array_equal(_arrays(only_proj.model)["table"], _arrays(dense)["table"])
    by_node = tvmopt.prune(dense, 0.5, include=["unembed"])
    assert [layer.name for layer in by_node.report.layers] == ["table"]
    assert _arrays(by_node.model)["table"].size // 2 == (_arrays(by_node.model)["table"] == 0).sum()
    names = [layer.name for layer in tvmopt.prune(mlp(), 0.5, exclude=["fc?"]).report.layers]
    assert names == ["head.weight"]
    names = [layer.name for layer in tvmopt.prune(mlp(), 0.5, include="*.weight",
                                                  exclude=["fc2.*"]).report.layers]  # fmt: skip
    assert names == ["fc1.weight", "head.weight"]


def test_report_errors_are_onnxruntimes():
    dense = mlp()
    feeds = {"x": np.random.default_rng(5).standard_normal((4, 32)).astype(np.float32)}
    untouched = tvmopt.prune(dense, 0.0, inputs=feeds).report
    assert untouched.outputs[0].max_abs == 0 and untouched.outputs[0].cosine == pytest.approx(1)
    result = tvmopt.prune(dense, 0.8, inputs=feeds)
    expected, actual = ort_outputs(dense, feeds)["y"], ort_outputs(result.model, feeds)["y"]
    error = result.report.outputs[0]
    assert error.name == "y" and result.report.samples == 1
    assert error.max_abs == pytest.approx(float(np.abs(expected - actual).max()), rel=1e-6)
    cosine = expected.ravel() @ actual.ravel() / np.linalg.norm(expected) / np.linalg.norm(actual)
    assert error.cosine == pytest.approx(float(cosine), rel=1e-6) and error.cosine < 0.999
    line = next(line for line in result.report.table().splitlines() if line.startswith("fc2."))
    share = (_arrays(result.model)["fc2.weight"] == 0).mean()
    assert line.split()[1:5] == ["fc2", "Gemm", "64x48", "(48,"] and f"{100 * share:.2f}%" in line


def test_pruned_model_is_valid_and_compiles_to_onnxruntimes_numbers():
    dense = mlp()
    snapshot = dense.SerializeToString()
    pruned = tvmopt.prune(dense, 0.5, block="1x8").model
    assert dense.SerializeToString() == snapshot, "the dense model was modified"
    onnx.checker.check_model(pruned, full_check=True)
    assert [i.name for i in pruned.graph.input] == [i.name for i in dense.graph.input]
    assert [o.name for o in pruned.graph.output] == [o.name for o in dense.graph.output]
    assert {t.data_type for t in pruned.graph.initializer if t.name.endswith("weight")} == {
        TensorProto.FLOAT
    }
    actual = assert_matches_ort(pruned, tvmopt.compile(pruned))
    assert not np.allclose(actual["y"], ort_outputs(dense, {"x": np.zeros((4, 32), "f")})["y"])


@pytest.mark.parametrize(
    "options, error, fragment",
    [
        ({"sparsity": 1.0}, tvmopt.OptionError, "sparsity must be in [0, 1), got 1.0"),
        ({"sparsity": -0.1}, tvmopt.OptionError, "sparsity must be in [0, 1)"),
        ({"block": "3x8"}, tvmopt.InputError, "'fc1.weight' of shape (32, 48)"),
        ({"block": "1x0"}, tvmopt.OptionError, "positive sides"),
        ({"nm": "4:4"}, tvmopt.OptionError, "1 <= N < M, got 4:4"),
        ({"nm": "2:5"}, tvmopt.InputError, "M = 5 to divide K"),
        ({"nm": "2:4", "sparsity": 0.3}, tvmopt.OptionError, "drop sparsity=0.3"),
        ({"include": ["fc9*"]}, tvmopt.InputError, "include pattern 'fc9*' matches no"),
        ({"exclude": ["*.bias"]}, tvmopt.InputError, "exclude pattern '*.bias' matches no"),
        ({"exclude": ["*"]}, tvmopt.InputError, "nothing left to prune"),
        ({"scope": "model"}, tvmopt.OptionError, "scope must be one of layer, global"),
    ],
)
def test_bad_options_raise_one_error(options, error, fragment):
    with pytest.raises(error) as raised:
        tvmopt.prune(mlp(), **options)
    assert fragment in str(raised.value) and "\n" not in str(raised.value)


def test_nothing_to_prune():
    with pytest.raises(tvmopt.InputError, match="nothing to prune"):
        tvmopt.prune(relu_model(), 0.5)


def cli(capfd, *args):
    capfd.readouterr()
    try:
        status = main([str(a) for a in args])
    except SystemExit as exit_:
        status = exit_.code
    out, err = capfd.readouterr()
    return status, out, err


def test_cli_writes_the_pruned_model_and_prints_the_report(capfd, tmp_path):
    source, output = tmp_path / "mlp.onnx", tmp_path / "sparse.onnx"
    onnx.save(mlp(), source)
    feeds = {"x": np.random.default_rng(3).standard_normal((4, 32)).astype(np.float32)}
    np.savez(tmp_path / "in.npz", **feeds)
    status, out, err = cli(capfd, "prune", source, "-o", output, "--nm", "2:4",
                           "--exclude", "head", "--inputs", tmp_path / "in.npz")  # fmt: skip
    assert status == 0, err
    pruned = onnx.load(output)
    onnx.checker.check_model(pruned)
    weights = _arrays(pruned)
    assert (weights["fc1.weight"] == 0).mean() == 0.5 and (weights["head.weight"] != 0).all()
    dense, sparse = ort_outputs(mlp(), feeds)["y"], ort_outputs(pruned, feeds)["y"]
    assert f"max abs error {np.abs(dense - sparse).max():.4g}" in out
    assert "2:4 along K" in out and f"wrote {output}" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.npz", "mlp.onnx", "sparse.onnx"]


@pytest.fixture
def source(tmp_path):
    path = tmp_path / "mlp.onnx"
    onnx.save(mlp(), path)
    (tmp_path / "relu.onnx").write_bytes(relu_model().SerializeToString())
    (tmp_path / "corrupt.onnx").write_bytes(b"not a model")
    np.savez(tmp_path / "wrong.npz", x=np.zeros((2, 32), np.float32))
    return path


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--sparsity", "1.5"], "expected a sparsity in [0, 1)"),
        (["--sparsity", "half"], "expected a sparsity in [0, 1)"),
        (["--block", "3x8"], "'fc1.weight' of shape (32, 48)"),
        (["--block", "wide"], "expected a block RxC"),
        (["--nm", "4:4"], "1 <= N < M"),
        (["--nm", "2:5"], "M = 5 to divide K"),
        (["--block", "1x8", "--nm", "2:4"], "not allowed with argument"),
        (["--include", "fc9"], "include pattern 'fc9' matches no"),
        (["--exclude", "*"], "nothing left to prune"),
        (["--inputs", "{w}/wrong.npz"], "input 'x' must have shape (4, 32)"),
        (["--inputs", "{w}/missing.npz"], "inputs file not found"),
        (["MODEL={w}/relu.onnx"], "nothing to prune"),
        (["MODEL={w}/missing.onnx"], "model file not found"),
        (["MODEL={w}/corrupt.onnx"], "is not an ONNX model"),
        (["OUT={w}/no/such/dir/out.onnx"], "output directory does not exist"),
        (["OUT={w}"], "it is a directory"),
        (["--ffn", "1"], "expected a fraction in [0, 1)"),
        (["--heads", "0.5", "--sparsity", "0.5"], "--sparsity apply to magnitude pruning"),
        (["--heads", "0.5"], "no attention"),
        (["--reconstruct"], "--reconstruct apply to structured pruning"),
        (["--drop-layers", "1", "--sparsity", "0.5"], "--sparsity apply to magnitude pruning"),
        (["--drop-layers", "one"], "expected layer numbers such as 1,3,5"),
        (["--drop-layers", "0"], "found no layers to drop"),
        (["--samples", "{w}/wrong.npz"], "--samples apply to structured pruning"),
        (["--norm", "activation"], "--norm activation scores structured units"),
        (["--ffn", "0.5", "--norm", "activation"], "criterion \"activation\" needs samples"),
        (["--ffn", "0.5", "--reconstruct", "--samples", "{w}/missing"], "not found"),
        (["--channels", "0.5", "OUT={w}/no/such/dir/out.onnx"], "output directory does not"),
    ],
)
def test_cli_bad_input_is_one_line_exit_2_and_no_file(capfd, tmp_path, source, args, fragment):
    args = [arg.replace("{w}", str(tmp_path)) for arg in args]
    model = next((a[6:] for a in args if a.startswith("MODEL=")), source)
    output = next((a[4:] for a in args if a.startswith("OUT=")), tmp_path / "out.onnx")
    options = [a for a in args if not a.startswith(("MODEL=", "OUT="))]
    before = sorted(tmp_path.rglob("*"))
    status, _, err = cli(capfd, "prune", model, "-o", output, *options)
    lines = err.strip().splitlines()
    assert status == 2, err
    assert len(lines) == 1 and lines[0].startswith("tvmopt: error: "), err
    assert fragment in lines[0], lines[0]
    assert sorted(tmp_path.rglob("*")) == before, "a file was left behind"


def test_cli_keeps_an_earlier_output_when_it_fails(capfd, tmp_path, source):
    output = tmp_path / "out.onnx"
    output.write_bytes(b"an earlier output")
    status, _, _ = cli(capfd, "prune", source, "-o", output, "--block", "3x8")
    assert status == 2 and output.read_bytes() == b"an earlier output"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["mlp.onnx", "relu.onnx", "corrupt.onnx", "wrong.npz", "out.onnx"]
    )


def test_measure_times_both_models_in_one_run(capfd, tmp_path, source):
    status, out, err = cli(capfd, "prune", source, "-o", tmp_path / "out.onnx", "--measure")
    assert status == 0, err
    line = next(line for line in out.splitlines() if line.startswith("latency"))
    assert "dense" in line and "pruned" in line and "interleaved" in line
    ratio = float(line.rsplit("ratio ", 1)[1])
    assert 0.2 < ratio < 5


def test_a_torch_bert_pruned_by_node_glob_compiles_to_onnxruntimes_numbers():
    from .models_torch import export, tiny_bert

    dense = export(*tiny_bert(), dynamo=False)
    result = tvmopt.prune(dense, nm="2:4", include=["/layers.0/*"])
    nodes = [node for layer in result.report.layers for node in layer.nodes]
    assert len(nodes) == 6 and all(node.startswith("/layers.0/") for node in nodes)
    assert all(layer.after == 0.5 for layer in result.report.layers)
    assert_matches_ort(result.model, tvmopt.compile(result.model))


def test_symbolic_inputs_need_sample_inputs():
    weight = np.random.default_rng(4).standard_normal((8, 8)).astype(np.float32)
    model = make_model([helper.make_node("MatMul", ["x", "w"], ["y"])],
                       [("x", TensorProto.FLOAT, ["batch", 8])],
                       [("y", TensorProto.FLOAT, ["batch", 8])], {"w": weight})  # fmt: skip
    with pytest.raises(tvmopt.InputError, match=r"symbolic dim 'batch'.*--inputs"):
        tvmopt.prune(model, 0.5)
    feeds = {"x": np.ones((3, 8), np.float32)}
    report = tvmopt.prune(model, 0.5, inputs=feeds, measure=True).report
    assert report.samples == 1 and report.layers[0].nodes == ("MatMul_0",)
    from tvmopt.pruning.measure import REPEAT, ROUNDS

    assert report.latency is not None and report.latency.runs == ROUNDS * REPEAT
