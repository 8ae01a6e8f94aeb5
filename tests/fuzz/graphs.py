"""Random valid ONNX graphs for differential testing against ONNX Runtime (check.py).

A graph grows from one or two float32 inputs: each step picks an op the frontend supports and
operands whose shapes it accepts, and tracks the result's shape itself. Values stay well
conditioned (no division by values near zero, no exp of large values, no rounding), so float32
differences between correct implementations stay small and a mismatch means a bug. The leaves
become the graph's outputs."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
MAX_DIM = 8


@dataclass
class Tensor:
    name: str
    shape: tuple[int, ...]


@dataclass
class Builder:
    rng: np.random.Generator
    nodes: list = field(default_factory=list)
    initializers: list = field(default_factory=list)
    inputs: list[Tensor] = field(default_factory=list)
    tensors: list[Tensor] = field(default_factory=list)
    count: int = 0

    def name(self, prefix: str) -> str:
        self.count += 1
        return f"{prefix}{self.count}"

    def const(self, array: np.ndarray) -> str:
        name = self.name("c")
        self.initializers.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def weight(self, *shape: int, low: float = -1.0, high: float = 1.0) -> str:
        return self.const(self.rng.uniform(low, high, shape).astype(np.float32))

    def op(self, op_type: str, inputs: list[str], shape: tuple[int, ...], **attrs) -> Tensor:
        out = Tensor(self.name("t"), tuple(int(d) for d in shape))
        node = helper.make_node(op_type, inputs, [out.name], name=self.name(op_type), **attrs)
        self.nodes.append(node)
        self.tensors.append(out)
        return out

    def pick(self, rank=None, min_rank: int = 1) -> Tensor | None:
        choices = [t for t in self.tensors if (rank is None or len(t.shape) == rank)
                   and len(t.shape) >= min_rank]  # fmt: skip
        return choices[self.rng.integers(len(choices))] if choices else None


def unary(b: Builder) -> Tensor | None:
    x = b.pick()
    kind = ["Relu", "Sigmoid", "Tanh", "Abs", "Neg", "LeakyRelu", "HardSigmoid", "Clip", "Softsign",
            "Elu", "Erf"][b.rng.integers(11)]  # fmt: skip
    if kind == "Clip":
        return b.op(kind, [x.name, b.const(np.float32(-0.5)), b.const(np.float32(0.7))], x.shape)
    if kind == "LeakyRelu":
        return b.op(kind, [x.name], x.shape, alpha=float(b.rng.uniform(0.01, 0.3)))
    return b.op(kind, [x.name], x.shape)


def _broadcastable(b: Builder, shape: tuple[int, ...]) -> tuple[int, ...]:
    """A shape that broadcasts to `shape`: some leading dims dropped, some dims set to 1."""
    start = int(b.rng.integers(len(shape) + 1))
    return tuple(1 if b.rng.random() < 0.3 else d for d in shape[start:])


def binary(b: Builder) -> Tensor | None:
    x = b.pick()
    same = [t for t in b.tensors if t.shape == x.shape and t is not x]
    kind = ["Add", "Sub", "Mul", "Max", "Min", "Div"][b.rng.integers(6)]
    if kind == "Div":  # by a constant away from zero
        magnitude = b.rng.uniform(0.5, 2.0, _broadcastable(b, x.shape))
        sign = np.where(b.rng.random(magnitude.shape) < 0.5, -1.0, 1.0)
        return b.op(kind, [x.name, b.const((magnitude * sign).astype(np.float32))], x.shape)
    if same and b.rng.random() < 0.5:
        other = same[b.rng.integers(len(same))].name
    else:
        other = b.weight(*_broadcastable(b, x.shape))
    operands = [x.name, other] if b.rng.random() < 0.7 else [other, x.name]
    return b.op(kind, operands, x.shape)


def matmul(b: Builder) -> Tensor | None:
    x = b.pick(min_rank=2)
    if x is None:
        return None
    n = int(b.rng.integers(1, MAX_DIM * 2))
    scale = 1.0 / np.sqrt(x.shape[-1])
    w = b.weight(x.shape[-1], n, low=-scale, high=scale)
    return b.op("MatMul", [x.name, w], (*x.shape[:-1], n))


def gemm(b: Builder) -> Tensor | None:
    x = b.pick(rank=2)
    if x is None:
        return None
    n, k = int(b.rng.integers(1, MAX_DIM * 2)), x.shape[1]
    trans_b = int(b.rng.integers(2))
    scale = 1.0 / np.sqrt(k)
    w = b.weight(*((n, k) if trans_b else (k, n)), low=-scale, high=scale)
    return b.op("Gemm", [x.name, w, b.weight(n)], (x.shape[0], n), transB=trans_b)


def conv(b: Builder) -> Tensor | None:
    x = b.pick(rank=4)
    if x is None or min(x.shape[2:]) < 3:
        return None
    channels = x.shape[1]
    depthwise = b.rng.random() < 0.3
    out = channels if depthwise else int(b.rng.integers(1, MAX_DIM * 2))
    kernel, stride = int(b.rng.choice([1, 3])), int(b.rng.choice([1, 2]))
    pad = int(b.rng.integers(2)) if kernel == 3 else 0
    group = channels if depthwise else 1
    scale = 1.0 / np.sqrt(channels // group * kernel * kernel)
    inputs = [x.name, b.weight(out, channels // group, kernel, kernel, low=-scale, high=scale)]
    if b.rng.random() < 0.5:
        inputs.append(b.weight(out))
    spatial = [(d + 2 * pad - kernel) // stride + 1 for d in x.shape[2:]]
    return b.op("Conv", inputs, (x.shape[0], out, *spatial), kernel_shape=[kernel, kernel],
                strides=[stride, stride], pads=[pad] * 4, group=group)  # fmt: skip


def pool(b: Builder) -> Tensor | None:
    x = b.pick(rank=4)
    if x is None or min(x.shape[2:]) < 2:
        return None
    kind = ["MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool"][b.rng.integers(4)]
    if kind.startswith("Global"):
        return b.op(kind, [x.name], (*x.shape[:2], 1, 1))
    spatial = [(d - 2) // 2 + 1 for d in x.shape[2:]]
    return b.op(kind, [x.name], (*x.shape[:2], *spatial), kernel_shape=[2, 2], strides=[2, 2])


def batch_norm(b: Builder) -> Tensor | None:
    x = b.pick(rank=4)
    if x is None:
        return None
    c = x.shape[1]
    scale, bias, mean = b.weight(c, low=0.5, high=1.5), b.weight(c), b.weight(c)
    stats = [scale, bias, mean, b.weight(c, low=0.5, high=2.0)]
    return b.op("BatchNormalization", [x.name, *stats], x.shape, epsilon=1e-5)


def softmax(b: Builder) -> Tensor | None:
    x = b.pick()
    axis = int(b.rng.integers(-len(x.shape), len(x.shape)))
    return b.op(["Softmax", "LogSoftmax"][b.rng.integers(2)], [x.name], x.shape, axis=axis)


def reduce(b: Builder) -> Tensor | None:
    x = b.pick()
    picks = b.rng.integers(0, len(x.shape), 1 + b.rng.integers(len(x.shape)))
    axes = sorted({int(a) for a in picks})
    keep = int(b.rng.integers(2))
    shape = tuple(1 if i in axes else d for i, d in enumerate(x.shape) if keep or i not in axes)
    kind = ["ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin"][b.rng.integers(4)]
    if kind == "ReduceSum":  # axes is an input from opset 13
        return b.op(kind, [x.name, b.const(np.array(axes, np.int64))], shape, keepdims=keep)
    return b.op(kind, [x.name], shape, axes=axes, keepdims=keep)


def transpose(b: Builder) -> Tensor | None:
    x = b.pick(min_rank=2)
    if x is None:
        return None
    perm = [int(p) for p in b.rng.permutation(len(x.shape))]
    return b.op("Transpose", [x.name], tuple(x.shape[p] for p in perm), perm=perm)


def reshape(b: Builder) -> Tensor | None:
    x = b.pick()
    size = int(np.prod(x.shape))
    divisors = [d for d in range(1, size + 1) if size % d == 0]
    first = divisors[b.rng.integers(len(divisors))]
    shape = (first, size // first) if b.rng.random() < 0.7 else (size,)
    return b.op("Reshape", [x.name, b.const(np.array(shape, np.int64))], shape)


def concat(b: Builder) -> Tensor | None:
    x = b.pick()
    axis = int(b.rng.integers(len(x.shape)))
    extra = list(x.shape)
    extra[axis] = int(b.rng.integers(1, 4))
    shape = list(x.shape)
    shape[axis] += extra[axis]
    return b.op("Concat", [x.name, b.weight(*extra)], tuple(shape), axis=axis)


def slice_(b: Builder) -> Tensor | None:
    x = b.pick()
    axis = int(b.rng.integers(len(x.shape)))
    size = x.shape[axis]
    start = int(b.rng.integers(size))
    end = int(b.rng.integers(start + 1, size + 1))
    shape = list(x.shape)
    shape[axis] = end - start
    consts = [b.const(np.array([v], np.int64)) for v in (start, end, axis)]
    return b.op("Slice", [x.name, *consts], tuple(shape))


def layer_norm(b: Builder) -> Tensor | None:
    x = b.pick()
    n = x.shape[-1]
    scale, bias = b.weight(n, low=0.5, high=1.5), b.weight(n)
    return b.op("LayerNormalization", [x.name, scale, bias], x.shape, axis=-1, epsilon=1e-5)


def pad(b: Builder) -> Tensor | None:
    x = b.pick(rank=4)
    if x is None:
        return None
    pads = [0, 0, *b.rng.integers(0, 2, 2), 0, 0, *b.rng.integers(0, 2, 2)]
    shape = tuple(d + pads[i] + pads[i + 4] for i, d in enumerate(x.shape))
    return b.op("Pad", [x.name, b.const(np.array(pads, np.int64))], shape)


OPS = (unary, unary, binary, binary, matmul, gemm, conv, conv, pool, batch_norm, softmax, reduce,
       transpose, reshape, concat, slice_, layer_norm, pad)  # fmt: skip
GEMM_OPS = {"Conv", "MatMul", "Gemm"}


def _input_shape(rng: np.random.Generator) -> tuple[int, ...]:
    if rng.random() < 0.5:
        return (1, int(rng.integers(1, MAX_DIM + 1)), *(int(d) for d in rng.integers(4, 11, 2)))
    rank = int(rng.integers(2, 4))
    return tuple(int(d) for d in rng.integers(1, MAX_DIM + 1, rank))


def random_graph(seed: int, steps: int | None = None) -> onnx.ModelProto:
    """A random valid model: one or two inputs, `steps` ops (default 3-14), leaves as outputs."""
    rng = np.random.default_rng(seed)
    b = Builder(rng)
    for index in range(1 + int(rng.random() < 0.3)):
        tensor = Tensor(f"x{index}", _input_shape(rng))
        b.inputs.append(tensor)
        b.tensors.append(tensor)
    for _ in range(steps or int(rng.integers(3, 15))):
        for _attempt in range(10):
            if OPS[rng.integers(len(OPS))](b) is not None:
                break
    return _model(b, seed)


def _model(b: Builder, seed: int) -> onnx.ModelProto:
    used = {name for node in b.nodes for name in node.input}
    leaves = [t for t in b.tensors[len(b.inputs) :] if t.name not in used] or b.tensors[-1:]
    value = helper.make_tensor_value_info
    graph = helper.make_graph(
        b.nodes, f"fuzz_{seed}", [value(t.name, TensorProto.FLOAT, t.shape) for t in b.inputs],
        [value(t.name, TensorProto.FLOAT, t.shape) for t in leaves[-3:]], b.initializers,
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=8)
    onnx.checker.check_model(model, full_check=True)
    return model


def feeds(model: onnx.ModelProto, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {i.name: rng.standard_normal([d.dim_value for d in i.type.tensor_type.shape.dim])
            .astype(np.float32) for i in model.graph.input}  # fmt: skip
