"""FFN neurons: MatMul(x, W1) [+ b1] -> element-wise activation -> MatMul(., W2) (or Gemms).

The activation is any chain of element-wise ops whose other inputs are scalars or one value per
neuron (Gelu, FastGelu, Relu, the Erf form of GELU that PyTorch exports, tanh GELU, SiLU), so
neuron j of the intermediate depends on W1[:, j] and b1[j] alone and only W2[j, :] reads it:
removing it slices W1's columns, b1, the per-neuron constants and W2's rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import onnx

from . import bias as biases
from . import importance, obs
from .activations import contribution, refit
from .graph import Graph, attribute

ELEMENTWISE = {
    "Add", "BiasGelu", "Clip", "Div", "Elu", "Erf", "FastGelu", "Gelu", "HardSigmoid",
    "HardSwish", "Identity", "LeakyRelu", "Mul", "Neg", "Pow", "Relu", "Selu", "Sigmoid",
    "Softplus", "Sqrt", "Sub", "Tanh",
}  # fmt: skip


@dataclass
class Ffn:
    first: onnx.NodeProto  # MatMul(x, W1)
    bias: onnx.NodeProto | None  # Add(., b1)
    activation: list[onnx.NodeProto]
    per_neuron: list[tuple[onnx.NodeProto, int]] = field(default_factory=list)
    second: onnx.NodeProto | None = None  # MatMul(., W2)

    @property
    def nodes(self):
        return [self.first, *([self.bias] if self.bias else []), *self.activation, self.second]


def find(g: Graph) -> list[Ffn]:
    found = (_match(g, node) for node in g.nodes if node.op_type in ("MatMul", "Gemm"))
    return [ffn for ffn in found if ffn is not None]


def activation_tensor(ffn: Ffn) -> str:
    """The intermediate (after the activation) that the "activation" criterion measures."""
    return ffn.second.input[0]


def prune(g: Graph, ffn: Ffn, fraction: float, criterion: str,
          activations: dict | None = None,
          reconstruct: bool = False) -> tuple[int, int]:  # fmt: skip
    first_axis, second_axis = _neuron_axis(ffn.first, 1), _neuron_axis(ffn.second, 0)
    w1, w2 = g.const(ffn.first.input[1]), g.const(ffn.second.input[1])
    parts = [np.moveaxis(w1, first_axis, 0), np.moveaxis(w2, second_axis, 0)]
    after = biases.find(g, ffn.second) if criterion == "obs" else None
    kept, weights, delta = _choose(parts, fraction, criterion, activations, ffn, reconstruct,
                                   after)  # fmt: skip
    if delta is not None:
        biases.shift(g, after, delta)
    g.take(ffn.first, 1, kept, axis=first_axis)
    if weights is not None:
        g.set_input(ffn.second, 1, np.moveaxis(weights, 0, second_axis).astype(w2.dtype))
    else:
        g.take(ffn.second, 1, kept, axis=second_axis)
    bias = [(ffn.bias, _const_index(g, ffn.bias))] if ffn.bias else []
    for node, index in ffn.per_neuron + bias:
        g.take(node, index, kept, axis=-1)
    return w1.shape[first_axis], len(kept)


def _choose(parts: list, fraction: float, criterion: str, activations: dict | None, ffn: Ffn,
            reconstruct: bool, after) -> tuple:  # fmt: skip
    """(kept neurons, W2's refit rows for them or None to slice W2, what to add to W2's bias or
    None)."""
    x = activations[activation_tensor(ffn)] if activations else None
    neurons = parts[1].shape[0]
    if criterion == "obs":  # chooses and refits at once
        return obs.choose(x, parts[1], neurons, importance.kept_count(neurons, fraction), after)
    if criterion == "activation":
        unit_scores = contribution(x, parts[1], neurons)
    else:
        unit_scores = importance.scores(criterion, parts)
    kept = importance.keep(unit_scores, fraction)
    return kept, (refit(x, parts[1], kept) if reconstruct else None), None


def _neuron_axis(node: onnx.NodeProto, matmul_axis: int) -> int:
    """The weight axis that indexes the neurons: W1's columns and W2's rows, as a MatMul or a
    Gemm without transB holds them; transB swaps them."""
    return (
        1 - matmul_axis if node.op_type == "Gemm" and attribute(node, "transB", 0) else matmul_axis
    )


def _match(g: Graph, first: onnx.NodeProto) -> Ffn | None:
    w1 = g.const(first.input[1])
    if w1 is None or w1.ndim != 2 or g.const(first.input[0]) is not None:
        return None
    if first.op_type == "Gemm" and attribute(first, "transA", 0):
        return None
    neurons = w1.shape[_neuron_axis(first, 1)]
    ffn = Ffn(first, _bias(g, first.output[0], neurons), [])
    if first.op_type == "Gemm" and not _gemm_bias(g, ffn, neurons):
        return None
    start = ffn.bias.output[0] if ffn.bias else first.output[0]
    return ffn if _trace_activation(g, ffn, start, neurons) else None


def _gemm_bias(g: Graph, ffn: Ffn, neurons: int) -> bool:
    """Gemm's own bias C: none, a scalar, or one value per neuron (sliced with them)."""
    if len(ffn.first.input) < 3 or not ffn.first.input[2]:
        return True
    value = g.const(ffn.first.input[2])
    if value is None or value.size not in (1, neurons) or value.shape[-1] not in (1, neurons):
        return False
    if value.size > 1:
        ffn.per_neuron.append((ffn.first, 2))
    return True


def _bias(g: Graph, tensor: str, neurons: int) -> onnx.NodeProto | None:
    add = g.only_consumer(tensor)
    if add is None or add.op_type != "Add":
        return None
    other = g.const(add.input[1 - list(add.input).index(tensor)])
    return add if other is not None and other.shape == (neurons,) else None


def _const_index(g: Graph, node: onnx.NodeProto) -> int:
    return next(i for i, name in enumerate(node.input) if g.const(name) is not None)


def _trace_activation(g: Graph, ffn: Ffn, start: str, neurons: int) -> bool:
    """Walk forward from the hidden tensor through element-wise ops to the second MatMul; True
    when every path ends there and nothing else reads the neurons."""
    region, pending = {start}, [start]
    while pending:
        tensor = pending.pop()
        if tensor in g.outputs:
            return False
        for node in g.consumers[tensor]:
            if _is_second(g, node, tensor, neurons):
                if ffn.second not in (None, node):
                    return False
                ffn.second = node
            elif node.op_type in ELEMENTWISE and node not in ffn.activation:
                ffn.activation.append(node)
                region.update(node.output)
                pending.extend(node.output)
            elif node not in ffn.activation:
                return False
    return bool(ffn.activation) and ffn.second is not None and _inputs_fit(g, ffn, region, neurons)


def _is_second(g: Graph, node: onnx.NodeProto, tensor: str, neurons: int) -> bool:
    if node.op_type not in ("MatMul", "Gemm") or node.input[0] != tensor:
        return False
    if node.op_type == "Gemm" and attribute(node, "transA", 0):
        return False
    w2 = g.const(node.input[1])
    return w2 is not None and w2.ndim == 2 and w2.shape[_neuron_axis(node, 0)] == neurons


def _inputs_fit(g: Graph, ffn: Ffn, region: set, neurons: int) -> bool:
    """Every activation input is the hidden tensor, a scalar or one constant per neuron."""
    for node in ffn.activation:
        for index, name in enumerate(node.input):
            value = g.const(name) if name else None
            if name in region or not name or (value is not None and value.size == 1):
                continue
            if value is None or value.shape != (neurons,):
                return False
            ffn.per_neuron.append((node, index))
    return True
