"""Unroll Scan, and Loop with a constant trip count, into copies of their bodies.

    Scan(s0, xs) body(s, x) -> (s', y)
      -> x_t = Gather(xs, t); s_t+1, y_t = body(s_t, x_t) for t < T; ys = Concat(Unsqueeze(y_t))
    Loop(M: constant, cond: absent or true, v0) body(i, c, v) -> (c', v', y)
      -> v_t+1, y_t = body(t, true, v_t) for t < M; ys = Concat(Unsqueeze(y_t))

TVM 0.27's importer has neither op. Once input shapes are pinned, a Scan's sequence length is
static, and so is a Loop's trip count where it folds to a constant and its condition stays true
(the body passes it through or sets it to a constant true), so the body can be copied per step
(graph_copies.py), as converters_recurrent.py unrolls RNN/GRU/LSTM. Bodies may read outer-scope
values; nested loops unroll in later rounds, once shape inference has seen the copies.

Runs after `fold_constants` (trip counts and shapes are constant by then); `prepare` then expands
and folds the copies. Opset-8 Scan (a batch axis, sequence_lens) is unrolled before the opset
upgrade, whose 8->9 adapter drops the batch dim from the types without slicing the data.
Loops whose trip count or condition is not constant are left for the op-support check to report.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper, shape_inference

from ..errors import UnsupportedOpError
from .graph_copies import FreshNames, instantiate
from .support import opset_of

# Each step copies the whole body: past this many, the graph would swamp the compiler.
MAX_UNROLLED_STEPS = 4096
MAX_NESTING = 4  # rounds: one per level of loops nested in loop bodies
LOOP_OPS = ("Scan", "Loop")


def unroll_loops(model: onnx.ModelProto) -> onnx.ModelProto:
    """Unroll every Scan and static Loop; returns `model` itself when there is none."""
    for _ in range(MAX_NESTING):
        unrolled = _unroll_round(model)
        if unrolled is None:
            break
        model = shape_inference.infer_shapes(unrolled, data_prop=True)
    return model


def has_batched_scan(model: onnx.ModelProto) -> bool:
    """Whether the model holds opset-8 Scans (batch axis 0, sequence axis 1)."""
    return opset_of(model) < 9 and any(node.op_type == "Scan" for node in model.graph.node)


def _unroll_round(model: onnx.ModelProto) -> onnx.ModelProto | None:
    if not any(node.op_type in LOOP_OPS for node in model.graph.node):
        return None  # the common case: no weights read, no names collected
    unroller = _Unroller(model)
    nodes, changed = [], False
    for position, node in enumerate(model.graph.node):
        replacement = unroller.unroll(node, position)
        changed |= replacement is not None
        nodes.extend([node] if replacement is None else replacement)
    if not changed:
        return None
    # Constant nodes, not initializers: IR versions below 4 (opset-8 models) would need each
    # initializer listed as a graph input too; fold_constants turns them into initializers
    constants = [helper.make_node("Constant", [], [tensor.name], value=tensor)
                 for tensor in unroller.initializers]  # fmt: skip
    unrolled = onnx.ModelProto()
    unrolled.CopyFrom(model)
    del unrolled.graph.node[:]
    unrolled.graph.node.extend([*constants, *nodes])
    return unrolled


class _Unroller:
    """What unrolling reads from the graph (shapes, constants, names) and the weights it adds."""

    def __init__(self, model: onnx.ModelProto):
        self.opset = opset_of(model)
        self.names = FreshNames(model.graph)
        self.dims = _known_dims(model.graph)
        self.constants = _constants(model.graph)
        self.initializers: list[onnx.TensorProto] = []
        self.nodes: list[onnx.NodeProto] = []
        self._added: dict[tuple, str] = {}

    def unroll(self, node: onnx.NodeProto, position: int) -> list[onnx.NodeProto] | None:
        if node.op_type not in LOOP_OPS or node.domain not in ("", "ai.onnx"):
            return None
        self.nodes = []
        stem = node.name or f"{node.op_type.lower()}{position}"
        if node.op_type == "Loop":
            done = _unroll_loop(self, node, stem)
        elif self.opset < 9:
            done = _unroll_batched_scan(self, node, stem)
        else:
            done = _unroll_scan(self, node, stem)
        return self.nodes if done else None

    def emit(self, op_type: str, inputs: list[str], hint: str, output: str = "", **attrs) -> str:
        output = output or self.names.fresh(hint)
        self.nodes.append(helper.make_node(op_type, inputs, [output], **attrs))
        return output

    def scalar(self, value, dtype) -> str:
        return self.constant(np.array(value, dtype), f"unrolled_{np.dtype(dtype).name}_{value}")

    def constant(self, array: np.ndarray, hint: str) -> str:
        """The name of an initializer holding `array`, one per distinct value."""
        key = (array.dtype.str, array.shape, array.tobytes())
        if key not in self._added:
            self._added[key] = self.names.fresh(hint)
            self.initializers.append(numpy_helper.from_array(array, self._added[key]))
        return self._added[key]

    def step(self, body: onnx.GraphProto, bound: list[str], stem: str) -> list[str]:
        """Copy `body` in with its inputs bound; the names holding its outputs."""
        nodes, initializers, outputs = instantiate(body, bound, self.names, stem)
        self.nodes.extend(nodes)
        self.initializers.extend(initializers)
        return outputs

    def take(self, value: str, index: int, axis: int) -> str:
        """value[..., index, ...] on `axis`, that axis dropped."""
        return self.emit("Gather", [value, self.scalar(index, np.int64)], f"{value}_{index}",
                         axis=axis)  # fmt: skip

    def stack(self, values: list[str], axis: int, output: str = "") -> str:
        """Concat of the values, each given a new axis `axis` (negative counts from the back)."""
        expanded = [self._unsqueeze(value, axis) for value in values]
        if len(expanded) == 1:
            return self.emit("Identity", expanded, "stacked", output)
        return self.emit("Concat", expanded, "stacked", output, axis=axis)

    def _unsqueeze(self, value: str, axis: int) -> str:
        if self.opset < 13:  # axes became an input in opset 13
            return self.emit("Unsqueeze", [value], f"{value}_expanded", axes=[axis])
        axes = self.constant(np.array([axis], np.int64), f"unrolled_axes_{axis}")
        return self.emit("Unsqueeze", [value, axes], f"{value}_expanded")

    def pass_through(self, values: list[str], outputs) -> None:
        for value, output in zip(values, outputs, strict=True):
            if output:
                self.emit("Identity", [value], "", output)

    def check_steps(self, node: onnx.NodeProto, steps: int, what: str) -> None:
        if steps > MAX_UNROLLED_STEPS:
            raise UnsupportedOpError(
                f"{node.op_type} node '{node.name}' runs {steps} {what}; tvmopt unrolls loops "
                f"of at most {MAX_UNROLLED_STEPS} steps"
            )


def _unroll_scan(unroller: _Unroller, node: onnx.NodeProto, stem: str) -> bool:
    """Opset 9+: scan inputs sliced on scan_input_axes, outputs stacked on scan_output_axes."""
    attrs = _attributes(node)
    scans = node.input[len(node.input) - attrs["num_scan_inputs"]:]
    states = node.input[: len(node.input) - len(scans)]
    axes = _axes(unroller, scans, attrs.get("scan_input_axes"))
    if axes is None:
        return False
    steps = unroller.dims[scans[0]][axes[0]]
    if steps is None:
        return False
    unroller.check_steps(node, steps, "steps")
    directions = attrs.get("scan_input_directions") or [0] * len(scans)
    finals, outputs = _scan_steps(unroller, attrs["body"], states, scans, axes, directions,
                                  steps, stem)  # fmt: skip
    unroller.pass_through(finals, node.output[: len(states)])
    _stack_scan_outputs(unroller, node, outputs, attrs, node.output[len(states):])
    return True


def _axes(unroller: _Unroller, scans, given) -> list[int] | None:
    """scan_input_axes made non-negative; None where a scan input's rank is unknown."""
    ranks = [len(unroller.dims[name]) if name in unroller.dims else None for name in scans]
    if None in ranks:
        return None
    given = given or [0] * len(scans)
    return [axis + rank if axis < 0 else axis for axis, rank in zip(given, ranks, strict=True)]


def _scan_steps(unroller, body, states, scans, axes, directions, steps, stem):  # noqa: PLR0913
    """Run the body `steps` times: the final states and, per scan output, its step values."""
    per_step = []
    for t in range(steps):
        slots = zip(scans, axes, directions, strict=True)
        elements = [unroller.take(scan, steps - 1 - t if reverse else t, axis)
                    for scan, axis, reverse in slots]  # fmt: skip
        outputs = unroller.step(body, [*states, *elements], f"{stem}_t{t}")
        states, scan_outputs = outputs[: len(states)], outputs[len(states):]
        per_step.append(scan_outputs)
    return states, [list(values) for values in zip(*per_step, strict=True)]


def _stack_scan_outputs(unroller, node, outputs, attrs, names) -> None:
    if not outputs and any(names):
        raise UnsupportedOpError(f"Scan node '{node.name}' scans an empty sequence; tvmopt cannot "
                                 "tell its scan outputs' shapes")  # fmt: skip
    axes = attrs.get("scan_output_axes") or [0] * len(names)
    directions = attrs.get("scan_output_directions") or [0] * len(names)
    for values, axis, reverse, name in zip(outputs, axes, directions, names, strict=True):
        if name:
            unroller.stack(values[::-1] if reverse else values, axis, name)


def _unroll_batched_scan(unroller: _Unroller, node: onnx.NodeProto, stem: str) -> bool:
    """Opset 8: every batch entry scanned on its own (axis 1), then stacked on axis 0."""
    attrs = _attributes(node)
    inputs = node.input[1:]
    scans = inputs[len(inputs) - attrs["num_scan_inputs"]:]
    states = inputs[: len(inputs) - len(scans)]
    batch, steps = (unroller.dims.get(scans[0]) or [None, None])[:2]
    if batch is None or steps is None:
        raise UnsupportedOpError(f"Scan node '{node.name}': the batch and sequence sizes of its "
                                 f"input '{scans[0]}' are not static")  # fmt: skip
    _check_full_lengths(unroller, node, steps, batch)
    unroller.check_steps(node, batch * steps, "steps (batch x sequence)")
    directions = attrs.get("directions") or [0] * len(scans)
    results = []
    for b in range(batch):
        entry_states = [unroller.take(state, b, 0) for state in states]
        entry_scans = [unroller.take(scan, b, 0) for scan in scans]
        axes = [0] * len(scans)  # the sequence axis, once the batch axis is taken
        finals, outputs = _scan_steps(unroller, attrs["body"], entry_states, entry_scans, axes,
                                      directions, steps, f"{stem}_b{b}")  # fmt: skip
        results.append([*finals, *(unroller.stack(values, 0) for values in outputs)])
    for values, name in zip(zip(*results, strict=True), node.output, strict=True):
        if name:
            unroller.stack(list(values), 0, name)
    return True


def _check_full_lengths(unroller: _Unroller, node: onnx.NodeProto, steps: int, batch: int):
    """sequence_lens is accepted only where it is the whole sequence for every batch entry."""
    lengths = node.input[0]
    if not lengths:
        return
    known = unroller.constants.get(lengths)
    if known is None or known.shape != (batch,) or not np.all(known == steps):
        raise UnsupportedOpError(
            f"Scan node '{node.name}': tvmopt unrolls only sequences of full length ({steps}); "
            f"sequence_lens is '{lengths}'"
        )


def _unroll_loop(unroller: _Unroller, node: onnx.NodeProto, stem: str) -> bool:
    """A Loop whose trip count is constant and whose condition is absent or stays true."""
    body = _attributes(node)["body"]
    steps = _static_trip_count(unroller, node, body)
    if steps is None:
        return False
    unroller.check_steps(node, steps, "iterations")
    carried, per_step = list(node.input[2:]), []
    for t in range(steps):
        bound = [unroller.scalar(t, np.int64), unroller.scalar(True, np.bool_), *carried]
        outputs = unroller.step(body, bound, f"{stem}_i{t}")
        carried, scan_outputs = outputs[1 : 1 + len(carried)], outputs[1 + len(carried):]
        per_step.append(scan_outputs)
    unroller.pass_through(carried, node.output[: len(carried)])
    names = node.output[len(carried):]
    if not per_step and any(names):
        raise UnsupportedOpError(f"Loop node '{node.name}' runs no iteration; tvmopt cannot tell "
                                 "its scan outputs' shapes")  # fmt: skip
    for values, name in zip(zip(*per_step, strict=True), names, strict=False):
        if name:
            unroller.stack(list(values), 0, name)
    return True


def _static_trip_count(unroller: _Unroller, node: onnx.NodeProto, body) -> int | None:
    """M, or 0 for a constant false condition; None unless M and a present condition are
    constant and the body keeps the condition true (a loop that may exit early cannot be
    unrolled). Without a condition input the spec ignores the body's, but ONNX Runtime stops
    on it: such a body must keep it true too, so that both agree."""
    trips = unroller.constants.get(node.input[0]) if node.input[0] else None
    condition = node.input[1] if len(node.input) > 1 else ""
    if trips is None or (condition and condition not in unroller.constants):
        return None
    if condition and not unroller.constants[condition]:
        return 0
    return int(trips) if _keeps_true(body, unroller.constants) else None


def _keeps_true(body: onnx.GraphProto, outer_constants: dict) -> bool:
    """Whether the body's condition output is its condition input or a constant true, through
    any chain of Identity nodes."""
    producers = {out: node for node in body.node for out in node.output}
    constants = {**outer_constants, **_constants(body)}
    name = body.output[0].name
    while name in producers and producers[name].op_type == "Identity":
        name = producers[name].input[0]
    if name == body.input[1].name:
        return True
    return name in constants and bool(np.all(constants[name]))


def _attributes(node: onnx.NodeProto) -> dict:
    return {attr.name: helper.get_attribute_value(attr) for attr in node.attribute}


def _known_dims(graph: onnx.GraphProto) -> dict[str, list[int | None]]:
    """Each value's dims as shape inference left them: an int, or None where unknown."""
    dims = {}
    for value in [*graph.input, *graph.value_info, *graph.output]:
        tensor_type = value.type.tensor_type
        if tensor_type.HasField("shape"):
            dims[value.name] = [d.dim_value if d.HasField("dim_value") else None
                                for d in tensor_type.shape.dim]  # fmt: skip
    dims.update((init.name, list(init.dims)) for init in graph.initializer)
    return dims


def _constants(graph: onnx.GraphProto) -> dict[str, np.ndarray]:
    """Initializers and the outputs of Constant nodes that hold a tensor."""
    values = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            values[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    return values
