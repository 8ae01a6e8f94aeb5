"""The `sparse` bench suite: the default suite's BERT-base and ResNet-50, pruned (issue 27).

BERT-base with every MatMul and Gemm weight magnitude-pruned to 50/80/90/95%, unstructured and
in 1 x 8 blocks along the output columns (tvmopt.prune); ResNet-50 with 30% and 50% of its conv
channels removed (tvmopt.pruning.structured, the dependency groups through its residual adds
kept consistent). Each pruned model is cached as ONNX like the others; tvmopt's sparse kernels
(`llvm`, --sparse auto) run against tvmopt dense (`llvm-dense`), ONNX Runtime and DeepSparse on
the same weights.
"""

from __future__ import annotations

import onnx

SPARSITIES = (0.5, 0.8, 0.9, 0.95)
PATTERNS = {"unstructured": None, "1x8": "1x8"}
CHANNEL_SHARES = (0.3, 0.5)


def magnitude_pruned(sparsity: float, block: str | None):
    """An ONNX -> ONNX transform: every prunable weight to `sparsity`."""

    def transform(model: onnx.ModelProto) -> onnx.ModelProto:
        from ..pruning import prune

        return prune(model, sparsity, block=block).model

    return transform


def channels_pruned(share: float):
    def transform(model: onnx.ModelProto) -> onnx.ModelProto:
        from ..pruning.structured import prune_structured

        return prune_structured(model, channels=share).model

    return transform


def sparse_models(suite: dict, suite_model) -> list:
    """The suite's entries: `suite` the models by name, `suite_model` SuiteModel."""
    bert, resnet = suite["bert_base"], suite["resnet50"]
    models = [
        suite_model(f"bert_base_{pattern}_{round(sparsity * 100)}", bert.build,
                    f"BERT-base, MatMul weights {sparsity:.0%} pruned ({pattern})",
                    magnitude_pruned(sparsity, block))  # fmt: skip
        for pattern, block in PATTERNS.items()
        for sparsity in SPARSITIES
    ]
    models += [
        suite_model(f"resnet50_channels_{round(share * 100)}", resnet.build,
                    f"ResNet-50, {share:.0%} of conv channels removed",
                    channels_pruned(share))  # fmt: skip
        for share in CHANNEL_SHARES
    ]
    return models
