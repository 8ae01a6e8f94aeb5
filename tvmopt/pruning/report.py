"""What pruning did: per weight, its sparsity before and after and its structure; the pruned
model's outputs against the dense model's; optionally both models' latency."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LayerPrune:
    name: str  # the weight's initializer
    nodes: tuple[str, ...]  # the nodes that read it
    op: str
    shape: tuple[int, ...]
    kn: tuple[int, int]  # (K, N) as the op reads it
    before: float  # share of zeros
    after: float
    structure: str  # "unstructured", "1x8 blocks: 96/192 zero", "2:4 along K"


@dataclass(frozen=True)
class OutputError:
    """The pruned model's output against the dense one's, over every sample."""

    name: str
    max_abs: float
    cosine: float


@dataclass(frozen=True)
class LatencyRatio:
    """Both models compiled by tvmopt, timed in one run, interleaved; medians in ms."""

    target: str
    dense_ms: float
    pruned_ms: float
    runs: int

    @property
    def ratio(self) -> float:
        return self.pruned_ms / self.dense_ms


@dataclass(frozen=True)
class PruneReport:
    pattern: str
    scope: str
    target_sparsity: float
    layers: tuple[LayerPrune, ...]
    outputs: tuple[OutputError, ...]
    samples: int
    latency: LatencyRatio | None = None

    @property
    def sparsity(self) -> float:
        """The share of zeros over every pruned weight."""
        sizes = [int(np.prod(layer.shape)) for layer in self.layers]
        zeros = sum(layer.after * size for layer, size in zip(self.layers, sizes, strict=True))
        return zeros / max(sum(sizes), 1)

    def table(self) -> str:
        lines = [
            f"{len(self.layers)} weights pruned ({self.pattern}, scope {self.scope}, target "
            f"{self.target_sparsity:.3f}): {100 * self.sparsity:.2f}% of their weights are zero",
            f"{'weight':<24} {'node':<28} {'op':<6} {'shape':<16} {'(K, N)':<13} {'before':>7} "
            f"{'after':>7}  structure",
        ]
        lines += [_layer_line(layer) for layer in self.layers]
        lines.append(f"outputs against the dense model, ONNX Runtime, {self.samples} samples:")
        lines += [f"  {o.name}: max abs error {o.max_abs:.4g}, cosine {o.cosine:.6f}"
                  for o in self.outputs]  # fmt: skip
        if self.latency is not None:
            t = self.latency
            lines.append(f"latency ({t.target}, medians of {t.runs} interleaved runs): dense "
                         f"{t.dense_ms:.4f} ms, pruned {t.pruned_ms:.4f} ms, "
                         f"ratio {t.ratio:.3f}")  # fmt: skip
        return "\n".join(lines)


def _layer_line(layer: LayerPrune) -> str:
    shape = "x".join(str(d) for d in layer.shape)
    kn = f"({layer.kn[0]}, {layer.kn[1]})"
    share = f"{100 * layer.before:>6.2f}% {100 * layer.after:>6.2f}%"
    return (f"{_tail(layer.name, 24):<24} {_tail(','.join(layer.nodes), 28):<28} {layer.op:<6} "
            f"{shape:<16} {kn:<13} {share}  {layer.structure}")  # fmt: skip


def _tail(name: str, width: int) -> str:
    """The end of a long name: exporters' names differ at the end (/layers.0/ffn/ffn.2/MatMul)."""
    return name if len(name) <= width else "~" + name[1 - width :]


def zero_share(weight: np.ndarray) -> float:
    return float(np.count_nonzero(weight == 0)) / max(weight.size, 1)


def max_abs_error(dense: np.ndarray, pruned: np.ndarray) -> float:
    difference = np.abs(np.asarray(dense, np.float64) - np.asarray(pruned, np.float64))
    return float(difference.max()) if difference.size else 0.0


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    norms = np.linalg.norm(a) * np.linalg.norm(b)
    if norms == 0:  # equal when both are zero, unrelated when only one is
        return float(np.array_equal(a, b))
    return float(a @ b / norms)
