"""Tiny seeded teachers and students for the distillation tests: an MLP classifier trained on
scikit-learn's bundled digits, and a 2-layer BERT-like encoder with a word-level tokenizer built
from the sentences it reads (nothing downloads)."""

from __future__ import annotations

import io
import warnings
from functools import cache
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

from tvmopt.benchmark.nets.bert import BertEncoder
from tvmopt.pruning.structured import prune_structured

WORDS = ("the a cat dog sat ran on under mat tree red blue small big quickly slowly and then "
         "bird flew over house near river green old young").split()  # fmt: skip


def export(module: nn.Module, example: torch.Tensor, name: str, dynamic: bool) -> onnx.ModelProto:
    buffer = io.BytesIO()
    axes = {name: {0: "batch"}} if dynamic else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module.eval(), (example,), buffer, input_names=[name],
                          output_names=["out"], dynamic_axes=axes, opset_version=17,
                          dynamo=False)  # fmt: skip
    return onnx.load_from_string(buffer.getvalue())


@cache
def digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    images, labels = load_digits(return_X_y=True)
    return (images / 16).astype(np.float32), labels


@cache
def mlp_teacher() -> onnx.ModelProto:
    """64 -> 128 -> 10, trained on the digits (full batch, 150 Adam steps: ~100% train acc)."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
    images, labels = (torch.from_numpy(a) for a in digits())
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(150):
        optimizer.zero_grad()
        nn.functional.cross_entropy(net(images), labels).backward()
        optimizer.step()
    return export(net, images[:1], "x", dynamic=True)


def mlp_student(fraction: float = 0.75) -> onnx.ModelProto:
    return prune_structured(mlp_teacher(), ffn=fraction).model


def digit_samples(count: int, start: int = 0) -> list[dict]:
    images = digits()[0]
    return [{"x": images[i : i + 1]} for i in range(start, start + count)]


def save_samples(directory: Path, samples: list[dict]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for index, sample in enumerate(samples):
        np.savez(directory / f"{index:04d}.npz", **sample)
    return directory


def sentences(count: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, rng.integers(4, 12))) for _ in range(count)]


def word_tokenizer(directory: Path) -> Path:
    """A word-level tokenizer over WORDS ([PAD] = 0, [UNK] = 1) saved as tokenizer.json."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    vocab = {"[PAD]": 0, "[UNK]": 1, **{w: i + 2 for i, w in enumerate(WORDS)}}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    directory.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(directory / "tokenizer.json"))
    return directory


SEQ = 12


@cache
def bert_teacher() -> onnx.ModelProto:
    torch.manual_seed(0)
    net = BertEncoder(vocab=len(WORDS) + 2, hidden=32, layers=2, heads=4, ffn=64, max_len=SEQ)
    return export(net, torch.ones(1, SEQ, dtype=torch.int64), "input_ids", dynamic=False)


def bert_student() -> onnx.ModelProto:
    return prune_structured(bert_teacher(), ffn=0.5, heads=0.5).model
