"""prune_structured: remove whole FFN neurons, attention heads and conv channels from an ONNX
model, so that its tensors shrink and it runs faster on every target."""

from __future__ import annotations

import fnmatch
import numbers
from collections.abc import Sequence

import onnx

from ...errors import InputError
from . import activations, importance
from . import ffn as ffn_groups
from . import heads as head_groups
from .channels import Channels
from .graph import Graph
from .result import StructuredResult

WHAT = {
    "ffn": "FFN (MatMul [+ bias] -> activation -> MatMul with constant weights)",
    "heads": "attention (Q/K/V projections -> Reshape to heads -> ... -> output projection)",
    "channels": "prunable conv channels (conv output channels not read by a graph output)",
}


def prune_structured(
    model: onnx.ModelProto,
    *,
    ffn: float = 0.0,
    heads: float = 0.0,
    channels: float = 0.0,
    criterion: str = "l2",
    exclude: Sequence[str] = (),
    samples=None,
    reconstruct: bool = False,
    round_to: int = 1,
) -> StructuredResult:
    """Structured pruning of an ONNX model.

    Parameters
    ----------
    model : onnx.ModelProto
        The model; it is not modified.
    ffn, heads, channels : float
        The fraction in [0, 1) of FFN intermediate neurons, attention heads (per layer) and conv
        output channels (per dependency group) to remove, those with the smallest norm first.
    criterion : {"l2", "l1", "activation", "obs"}
        The norm of its weights that scores each neuron, head or channel; "activation" (FFN
        neurons and heads only) scores each by the mean norm of its contribution to the next
        projection's output on `samples`, run through the unpruned model with ONNX Runtime;
        "obs" (FFN neurons and heads) removes them greedily, each time the one whose removal
        least raises the least-squares error of the next projection's output on `samples`
        once the kept rows and the bias are refit (obs.py): it always reconstructs.
    exclude : sequence of str
        fnmatch globs over node names; a group with a matching node is left alone.
    samples : iterable of dict, optional
        Input dicts {input name: array} for criterion "activation" (a few hundred sentences
        for a transformer; unpadded, so that padding tokens do not count).
    reconstruct : bool
        Refit each pruned FFN's second projection and each attention output projection by least
        squares on `samples`, so that the kept units reproduce the unpruned layer's output as
        well as they can (it needs `samples`; any criterion).
    round_to : int
        Conv channels kept per group rounded up to a multiple of this, where the group has that
        many: the target's vector width in floats (16 for AVX-512, 8 for AVX2) keeps every
        kernel free of partial vectors (ResNet-50 with 30% removed kept 45 of 64 channels).

    Returns
    -------
    StructuredResult
        The pruned model (valid ONNX, same inputs and outputs, ready to fine-tune) and one row
        per pruned group.
    """
    fractions = {"ffn": ffn, "heads": heads, "channels": channels}
    _check(model, fractions, criterion, reconstruct)
    _check_round_to(round_to)
    exclude = [exclude] if isinstance(exclude, str) else list(exclude)
    g = Graph(model)
    _check_patterns(g, exclude)
    found = {kind: _find(g, kind) for kind, fraction in fractions.items() if fraction > 0}
    found = {kind: [group for group in groups if not _excluded(_nodes(kind, group), exclude)]
             for kind, groups in found.items()}  # fmt: skip
    measured = None
    if criterion in importance.DATA_AWARE or reconstruct:
        measured = _activations(model, found, samples, criterion)
    rows = []
    for kind, groups in found.items():
        rows += _prune(g, kind, groups, fractions[kind], criterion, measured, reconstruct,
                       round_to)  # fmt: skip
    pruned = g.finish()
    if pruned.ByteSize() < onnx.checker.MAXIMUM_PROTOBUF:  # the checker takes no larger proto
        onnx.checker.check_model(pruned)
    return StructuredResult(pruned, rows)


def _check(model, fractions: dict, criterion: str, reconstruct: bool) -> None:
    if not isinstance(model, onnx.ModelProto):
        raise InputError(f"model must be an onnx.ModelProto, got {type(model).__name__}")
    for kind, fraction in fractions.items():
        is_number = isinstance(fraction, numbers.Real) and not isinstance(fraction, bool)
        if not is_number or not 0 <= fraction < 1:
            raise InputError(f"{kind} must be a fraction in [0, 1), got {fraction!r}")
    importance.check_criterion(criterion)
    if (criterion in importance.DATA_AWARE or reconstruct) and fractions["channels"] > 0:
        raise InputError('criterion "activation" and reconstruct cover FFN neurons and heads, '
                         "not channels")  # fmt: skip


def _check_round_to(round_to) -> None:
    if not isinstance(round_to, numbers.Integral) or isinstance(round_to, bool) or round_to < 1:
        raise InputError(f"round_to must be a whole number of channels >= 1, got {round_to!r}")


def _check_patterns(g: Graph, exclude: list) -> None:
    names = [node.name for node in g.nodes]
    for pattern in exclude:
        if not isinstance(pattern, str) or not fnmatch.filter(names, pattern):
            raise InputError(f"exclude pattern {pattern!r} matches no node name in the model")


def _find(g: Graph, kind: str) -> list:
    if kind == "ffn":
        groups = ffn_groups.find(g)
    elif kind == "heads":
        groups = head_groups.find(g)
    else:
        channels = Channels(g)
        groups = [(channels, group) for group in channels.groups().values()]
    if not groups:
        raise InputError(f"{kind}: found no {WHAT[kind]} in the model")
    return groups


def _nodes(kind: str, group) -> list:
    return group[1].nodes if kind == "channels" else group.nodes


def _excluded(nodes, exclude: list) -> bool:
    return any(fnmatch.fnmatchcase(node.name, p) for node in nodes for p in exclude)


def _activations(model, found: dict, samples, criterion: str) -> dict:
    """The tensors the "activation" and "obs" criteria and reconstruct measure, on the unpruned
    model."""
    tensors = [ffn_groups.activation_tensor(group) for group in found.get("ffn", [])]
    tensors += [head_groups.activation_tensor(group) for group in found.get("heads", [])]
    purpose = f'criterion "{criterion}"' if criterion in importance.DATA_AWARE else "reconstruct"
    return activations.collect(model, tensors, samples, purpose)


def _prune(g: Graph, kind: str, groups: list, fraction: float, criterion: str,
           measured: dict | None, reconstruct: bool, round_to: int) -> list[dict]:  # fmt: skip
    if kind == "channels":
        if not groups:
            return []
        channels = groups[0][0]
        pruned = channels.prune({group.root: group for _, group in groups}, fraction, criterion,
                                round_to)  # fmt: skip
        return [_row(group.name, kind, before, after) for group, before, after in pruned]
    module = ffn_groups if kind == "ffn" else head_groups
    rows = []
    for group in groups:
        before, after = module.prune(g, group, fraction, criterion, measured, reconstruct)
        rows.append(_row(_name(kind, group), kind, before, after))
    return rows


def _name(kind: str, group) -> str:
    return group.first.name if kind == "ffn" else group.output.name


def _row(name: str, kind: str, before: int, after: int) -> dict:
    return {"group": name, "kind": kind, "before": int(before), "after": int(after)}
