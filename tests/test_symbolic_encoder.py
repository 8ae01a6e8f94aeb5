"""A one-layer MiniLM-shaped encoder (hidden 384, 12 heads, FFN 1536: enough heads and weight
panels for the row-peeled matmuls, the head split's serial rows and the vectorized scores
write) compiled once with a symbolic sequence length, no buckets, for the host (AVX-512) and
the AVX2 build: every length runs the symbolic `main`, checked against ONNX Runtime at lengths
that are and are not multiples of the register blocks (7 rows on AVX-512, 6 on AVX2) and of
the 32-column tiles, up to the issue's 384 tokens."""

from dataclasses import replace

import onnx
import pytest

import tvmopt
from tvmopt.benchmark.llm_suite import DIMS, ENCODERS, export_dynamic, token_ids

from .helpers import assert_matches_ort

TARGETS = {"host": None, "avx2": {"kind": "llvm", "mcpu": "x86-64-v3"}}
LENGTHS = (1, 17, 130, 384)
ENCODER = replace(ENCODERS["minilm"], name="minilm_1layer",
                  shape={**ENCODERS["minilm"].shape, "layers": 1})  # fmt: skip


@pytest.fixture(scope="module")
def encoder_model(tmp_path_factory):
    return onnx.load(str(export_dynamic(ENCODER, tmp_path_factory.mktemp("encoder"))))


@pytest.mark.slow
@pytest.mark.parametrize("isa", list(TARGETS))
def test_symbolic_encoder_matches_onnxruntime_up_to_384_tokens(encoder_model, isa):
    compiled = tvmopt.compile(encoder_model, target=TARGETS[isa], dims=DIMS)
    for length in LENGTHS:
        feeds = token_ids(ENCODER, length)
        assert compiled.function_for([feeds["input_ids"].shape]) == "main"
        assert_matches_ort(encoder_model, compiled, feeds)
    rules = {str(k["rule"]) for name, k in compiled.metadata.extra["kernels"].items()
             if "matmul" in name}  # fmt: skip
    assert rules == {"Matmul"}, rules
