"""`prune`: magnitude pruning of an ONNX model's MatMul, Gemm and Conv weights, with a report."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import onnx

from ..artifact import atomic_output, check_writable
from ..frontend.onnx import load_model
from .apply import prune_weights
from .compare import output_errors, run_onnxruntime, sample_feeds
from .magnitude import check_fits
from .report import PruneReport
from .select import candidates, select
from .spec import spec_from


@dataclass(frozen=True)
class PruneResult:
    """The pruned model (an onnx.ModelProto) and its report (`report.table()` prints it)."""

    model: onnx.ModelProto
    report: PruneReport

    def save(self, path) -> Path:
        """Write the pruned model to `path`, atomically: the old file stays on any failure."""
        with atomic_output(path) as tmp:
            onnx.save(self.model, tmp)
        return Path(path)


def prune(
    model,
    sparsity: float | None = None,
    *,
    block=None,
    nm=None,
    scope: str = "layer",
    norm: str = "l2",
    include=(),
    exclude=(),
    inputs=None,
    measure: bool = False,
    output=None,
) -> PruneResult:
    """Zero the smallest weights that MatMul and Gemm read as B and Conv as W.

    Parameters
    ----------
    model : str, os.PathLike, bytes or onnx.ModelProto
        The dense model; it is not modified.
    sparsity : float, optional
        The share of zeros in [0, 1) (default 0.5); N:M fixes it at 1 - N/M.
    block : str or Block, optional
        "RxC": blocks of R rows along K by C columns along N of the weight as the op reads it,
        (K, N) (K the reduction axis); scored by their `norm` ("l2" or "l1"), zeroed whole.
    nm : str or NM, optional
        "N:M": every M consecutive weights along K keep their N largest.
    scope : "layer" or "global"
        Every weight to `sparsity`, or one threshold over all chosen weights.
    include, exclude : sequence of str
        fnmatch globs over weight and node names; each must match a prunable weight.
    inputs : str, os.PathLike or dict, optional
        Sample inputs (.npz or arrays) for the output error; default: random ones.
    measure : bool
        Also compile both models with tvmopt for the host and time them (report.latency).
    output : str or os.PathLike, optional
        Where to write the pruned model (checked writable before any work).
    """
    include = (include,) if isinstance(include, str) else tuple(include)
    exclude = (exclude,) if isinstance(exclude, str) else tuple(exclude)
    spec = spec_from(sparsity, block, nm, scope=scope, norm=norm, include=include,
                     exclude=exclude)  # fmt: skip
    if output is not None:
        check_writable(output)
    dense = load_model(model)
    chosen = select(candidates(dense.graph), spec.include, spec.exclude)
    for candidate in chosen:
        check_fits(spec, candidate.name, candidate.view)
    feeds = sample_feeds(dense.graph, inputs)  # bad inputs fail before the work
    pruned, layers = prune_weights(dense, chosen, spec)
    errors = output_errors(run_onnxruntime(dense, feeds, "dense"),
                           run_onnxruntime(pruned, feeds, "pruned"))  # fmt: skip
    latency = None
    if measure:
        from .measure import latency_ratio

        latency = latency_ratio(dense, pruned, feeds[0])
    report = PruneReport(spec.pattern.describe(), spec.scope, spec.sparsity, layers, errors,
                         len(feeds), latency)  # fmt: skip
    result = PruneResult(pruned, report)
    if output is not None:
        result.save(output)
    return result
