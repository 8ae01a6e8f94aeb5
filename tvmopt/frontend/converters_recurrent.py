"""Converters for ONNX's recurrent layers, which TVM's importer lacks: RNN, GRU and LSTM,
unrolled over the sequence (its length is static once the input shapes are). The input
projection of every step is one matmul; each step then multiplies the state by the recurrence
weights. Forward, reverse and bidirectional; both layouts; initial states; the activations and
clip attributes; GRU's linear_before_reset; LSTM's peepholes and input_forget. sequence_lens is
taken only where it is the whole sequence for every batch entry."""

from __future__ import annotations

import numpy as np
from tvm import relax
from tvm.relax.frontend.onnx import onnx_frontend

from .._tvm import tvm
from .converter_values import scalar_like, text

op = relax.op


def _affine(x, scale, shift):
    return op.add(op.multiply(x, scalar_like(x, scale)), scalar_like(x, shift))


# ONNX's activation names -> f(x, alpha, beta); alpha and beta default as ONNX says
ACTIVATIONS = {
    "Sigmoid": lambda x, a, b: op.sigmoid(x),
    "Tanh": lambda x, a, b: op.tanh(x),
    "Relu": lambda x, a, b: op.nn.relu(x),
    "LeakyRelu": lambda x, a, b: op.nn.leakyrelu(x, 0.01 if a is None else a),
    "Softsign": lambda x, a, b: op.divide(x, op.add(op.abs(x), scalar_like(x, 1.0))),
    "Softplus": lambda x, a, b: op.log(op.add(op.exp(x), scalar_like(x, 1.0))),
    "Affine": lambda x, a, b: _affine(x, a, b),
    "ScaledTanh": lambda x, a, b: op.multiply(scalar_like(x, a), op.tanh(_affine(x, b, 0.0))),
    "HardSigmoid": lambda x, a, b: op.clip(_affine(x, 0.2 if a is None else a,
                                                   0.5 if b is None else b), 0.0, 1.0),
}  # fmt: skip
DEFAULTS = {"RNN": ("Tanh",), "GRU": ("Sigmoid", "Tanh"), "LSTM": ("Sigmoid", "Tanh", "Tanh")}


class _Recurrent(onnx_frontend.OnnxOpConverter):
    """The unrolled layer; subclasses give the gate count and one step of the cell."""

    kind = ""
    gates = 1

    @classmethod
    def _impl_v7(cls, bb, inputs, attr, params):
        layer = _Layer(bb, list(inputs) + [None] * (8 - len(inputs)), attr, cls.kind, cls.gates)
        runs = [layer.run(direction, cls.step) for direction in range(layer.directions)]
        return layer.outputs(runs)

    @classmethod
    def step(cls, layer, direction, x, states, r, bias_r):  # noqa: PLR0913
        """The states after one step: `x` is the step's projected input (its input bias
        added), `r` and `bias_r` the direction's recurrence weights and bias."""
        raise NotImplementedError


class _Layer:
    """One RNN/GRU/LSTM node's inputs and attributes, read once."""

    def __init__(self, bb, inputs, attr, kind: str, gates: int):  # noqa: PLR0913
        self.bb, self.attr, self.kind, self.gates = bb, attr, kind, gates
        x, self.w, self.r, self.b = inputs[0], inputs[1], inputs[2], inputs[3]
        self.dtype = str(x.ty.dtype)
        self.layout = attr.get("layout", 0)
        self.x = op.permute_dims(x, [1, 0, 2]) if self.layout else x  # [steps, batch, input]
        shape = [int(d) for d in x.ty.shape]
        self.steps, self.batch = (shape[1], shape[0]) if self.layout else (shape[0], shape[1])
        self.hidden = int(attr.get("hidden_size", int(self.r.ty.shape[-1])))
        direction = text(attr.get("direction", b"forward"))
        self.directions = 2 if direction == "bidirectional" else 1
        self.reversed = [direction == "reverse", True][: self.directions]
        _check_whole_sequences(inputs[4], self.steps)
        # h, and LSTM's c, as [directions, batch, hidden]
        self.initial = [op.permute_dims(s, [1, 0, 2]) if self.layout and s is not None else s
                        for s in (inputs[5], inputs[6])]  # fmt: skip
        self.peepholes = inputs[7]
        self.clip = attr.get("clip")
        self.functions = self._functions()

    def _functions(self) -> list[list]:
        names = [text(n) for n in self.attr.get("activations", ())] or list(
            DEFAULTS[self.kind] * self.directions
        )
        alphas = list(self.attr.get("activation_alpha", ())) + [None] * len(names)
        betas = list(self.attr.get("activation_beta", ())) + [None] * len(names)
        per = len(DEFAULTS[self.kind])
        chosen = [(ACTIVATIONS[n], alphas[i], betas[i]) for i, n in enumerate(names)]
        return [chosen[d * per : (d + 1) * per] for d in range(self.directions)]

    def activate(self, direction: int, which: int, x):
        function, alpha, beta = self.functions[direction][which]
        if self.clip is not None:
            x = op.clip(x, -float(self.clip), float(self.clip))
        return function(self.bb.emit(x), alpha, beta)  # bound: a typed operand for constants

    def of(self, tensor, direction: int):
        """`tensor`'s slice for one direction (its leading axis)."""
        return op.take(tensor, relax.const(direction, "int64"), axis=0)

    def gate(self, tensor, index: int, axis: int = -1):
        """The `index`-th of the gates stacked along `axis`."""
        h = self.hidden
        return op.strided_slice(tensor, axes=[axis], begin=[index * h], end=[(index + 1) * h])

    def run(self, direction: int, step):
        """The outputs of every step, in sequence order, and the final states."""
        w, r = self.of(self.w, direction), self.of(self.r, direction)
        projected = op.matmul(self.x, op.permute_dims(w))  # [steps, batch, gates * hidden]
        bias_w, bias_r = self._biases(direction)
        if bias_w is not None:
            projected = op.add(projected, bias_w)
        projected = self.bb.emit(projected)
        states = [self._initial(direction, i) for i in range(2 if self.kind == "LSTM" else 1)]
        order = range(self.steps - 1, -1, -1) if self.reversed[direction] else range(self.steps)
        outputs = {}
        for t in order:
            x = op.take(projected, relax.const(t, "int64"), axis=0)
            states = [self.bb.emit(s) for s in step(self, direction, x, states, r, bias_r)]
            outputs[t] = states[0]
        return [outputs[t] for t in range(self.steps)], states

    def _biases(self, direction: int):
        if self.b is None:
            return None, None
        both = self.of(self.b, direction)
        size = self.gates * self.hidden
        first = op.strided_slice(both, axes=[0], begin=[0], end=[size])
        return first, op.strided_slice(both, axes=[0], begin=[size], end=[2 * size])

    def _initial(self, direction: int, which: int):
        given = self.initial[which]
        if given is not None:
            return self.bb.emit(self.of(given, direction))
        return relax.const(np.zeros((self.batch, self.hidden), dtype=self.dtype))

    def outputs(self, runs):
        """Y [steps, directions, batch, hidden], Y_h (and LSTM's Y_c) [directions, batch,
        hidden], in the node's layout."""
        y = op.stack([op.stack(sequence, axis=0) for sequence, _ in runs], axis=1)
        finals = [op.stack([states[i] for _, states in runs], axis=0)
                  for i in range(len(runs[0][1]))]  # fmt: skip
        if self.layout:
            y = op.permute_dims(y, [2, 0, 1, 3])
            finals = [op.permute_dims(f, [1, 0, 2]) for f in finals]
        return relax.Tuple([y, *finals])


def _check_whole_sequences(lengths, steps: int) -> None:
    if lengths is None:
        return
    if not isinstance(lengths, tvm.ir.GenericConst):
        raise ValueError("sequence_lens must be a constant")
    if np.any(lengths.value.numpy() != steps):
        raise ValueError(f"sequence_lens shorter than the sequence ({steps}) are not supported")


def _recurrence(layer, h, r, bias_r, index: int):
    """h R_index^T (+ Rb_index): one gate's recurrent term."""
    term = op.matmul(h, op.permute_dims(layer.gate(r, index, axis=0)))
    return term if bias_r is None else op.add(term, layer.gate(bias_r, index))


class RNN(_Recurrent):
    kind, gates = "RNN", 1

    @classmethod
    def step(cls, layer, direction, x, states, r, bias_r):  # noqa: PLR0913
        recurrent = _recurrence(layer, states[0], r, bias_r, 0)
        return [layer.activate(direction, 0, op.add(x, recurrent))]


class GRU(_Recurrent):
    kind, gates = "GRU", 3

    @classmethod
    def step(cls, layer, direction, x, states, r, bias_r):  # noqa: PLR0913
        (h,) = states
        z, reset = (layer.activate(direction, 0, op.add(layer.gate(x, g),
                                                        _recurrence(layer, h, r, bias_r, g)))
                    for g in (0, 1))  # fmt: skip
        if layer.attr.get("linear_before_reset", 0):
            recurrent = op.multiply(reset, _recurrence(layer, h, r, bias_r, 2))
        else:
            recurrent = _recurrence(layer, op.multiply(reset, h), r, bias_r, 2)
        candidate = layer.activate(direction, 1, op.add(layer.gate(x, 2), recurrent))
        one = scalar_like(h, 1.0)
        return [op.add(op.multiply(op.subtract(one, z), candidate), op.multiply(z, h))]


class LSTM(_Recurrent):
    kind, gates = "LSTM", 4

    @classmethod
    def step(cls, layer, direction, x, states, r, bias_r):  # noqa: PLR0913
        h, c = states
        pre = [op.add(layer.gate(x, g), _recurrence(layer, h, r, bias_r, g)) for g in range(4)]
        peep = layer.of(layer.peepholes, direction) if layer.peepholes is not None else None
        i = layer.activate(direction, 0, _peeped(layer, pre[0], peep, 0, c))  # gates i, o, f, c
        if layer.attr.get("input_forget", 0):
            f = op.subtract(scalar_like(c, 1.0), i)
        else:
            f = layer.activate(direction, 0, _peeped(layer, pre[2], peep, 2, c))
        cell = op.add(op.multiply(f, c), op.multiply(i, layer.activate(direction, 1, pre[3])))
        cell = layer.bb.emit(cell)
        o = layer.activate(direction, 0, _peeped(layer, pre[1], peep, 1, cell))
        return [op.multiply(o, layer.activate(direction, 2, cell)), cell]


def _peeped(layer, pre, peepholes, index: int, cell):
    """A gate's input with its peephole term (P's order is i, o, f)."""
    if peepholes is None:
        return pre
    return op.add(pre, op.multiply(layer.gate(peepholes, index), cell))


OPS = {"RNN": RNN, "GRU": GRU, "LSTM": LSTM}
