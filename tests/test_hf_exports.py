"""Hugging Face models as users export them: BERT, DistilBERT, RoBERTa, a MiniLM-shaped BERT with
mean pooling, GPT-2 with and without its cache, from transformers configs with seeded random
weights, by both torch.onnx exporters with dynamic batch and sequence dims. Each compiles once
with symbolic dims and matches ONNX Runtime at several lengths (a past of 0 included)."""

import onnx
import pytest

import tvmopt

from .helpers import assert_matches_ort
from .test_cli import cli

pytest.importorskip("transformers")
pytest.importorskip("torch")

from . import hf_models  # noqa: E402

DIMS = {"batch": "1..4", "seq": "1..64"}
DECODER_DIMS = {**DIMS, "past": "0..64", "total": "1..128"}
# (batch, seq) and, for GPT-2 with its cache, (batch, seq, past)
ENCODER_RUNS = [(1, 1), (2, 7), (3, 33)]
DECODER_RUNS = [(1, 1, 0), (2, 7, 0), (1, 16, 3), (2, 1, 9)]
# what the default suite runs (~45 s); the other exports are slow (an export and a compile, 10-30 s)
QUICK = {("gpt2_past", "dynamo")}  # needs every fix of ours: Reshape, dim params
EXPORTERS = {"torchscript": False, "dynamo": True}


def cases():
    for name in hf_models.MODELS:
        for exporter in EXPORTERS:
            marks = () if (name, exporter) in QUICK else (pytest.mark.slow,)
            yield pytest.param(name, exporter, marks=marks, id=f"{name}-{exporter}")


def exported(name: str, exporter: str) -> onnx.ModelProto:
    try:
        return hf_models.export(name, EXPORTERS[exporter])
    except Exception as error:  # the exporter's own limits, not ours: recorded, not failed
        pytest.skip(f"torch.onnx.export ({exporter}) cannot export {name}: {error}")


def runs(name: str):
    if name == "gpt2_past":
        return DECODER_RUNS
    return [(batch, seq, 0) for batch, seq in ENCODER_RUNS]


@pytest.mark.parametrize("name, exporter", cases())
def test_export_compiles_with_symbolic_dims_and_matches_onnxruntime(name, exporter):
    model = exported(name, exporter)
    compiled = tvmopt.compile(model, dims=DECODER_DIMS if name == "gpt2_past" else DIMS)
    assert compiled.inputs[0].shape == ("batch", "seq")
    for batch, seq, past in runs(name):
        assert_matches_ort(model, compiled, hf_models.feeds(name, batch, seq, past))


@pytest.mark.slow
def test_cli_compiles_gpt2_with_its_cache(capsys, tmp_path):
    path, library = tmp_path / "gpt2.onnx", tmp_path / "gpt2.so"
    onnx.save(exported("gpt2_past", "torchscript"), path)
    dims = [arg for name, span in DECODER_DIMS.items() for arg in ("--dim", f"{name}={span}")]
    status, _, err = cli(capsys, "compile", path, "-o", library, *dims)
    assert status == 0, err
    compiled = tvmopt.load(library)
    assert compiled.metadata.dims["past"] == [0, 64]
    model = onnx.load(path)
    for batch, seq, past in DECODER_RUNS[:2]:
        assert_matches_ort(model, compiled, hf_models.feeds("gpt2_past", batch, seq, past))
