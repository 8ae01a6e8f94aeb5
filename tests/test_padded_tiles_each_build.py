"""Matmuls whose rows and columns are padded to whole register tiles (ViT's 197 tokens, a
prime: rule_matmul._pad_to_blocks), right against ONNX Runtime on the host's build and on the
AVX2 build, which copies Q's padded rows before the tiles."""

import pytest

import tvmopt

from .helpers import assert_matches_ort
from .test_schedule_rules import attention_model

BUILDS = pytest.mark.parametrize("target", [None, {"kind": "llvm", "mcpu": "x86-64-v3"}],
                                 ids=["host", "x86-64-v3"])  # fmt: skip


@BUILDS
@pytest.mark.parametrize("seq", [197, 13])
def test_padded_attention_matches_onnxruntime(seq, target):
    model = attention_model(1, 2, seq, 64)
    assert_matches_ort(model, tvmopt.compile(model, target=target))
