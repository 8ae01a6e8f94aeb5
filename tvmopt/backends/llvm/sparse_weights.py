"""Matmuls with a sparse constant weight run a sparse kernel (kernel_sparse.py), where the
--sparse mode and the weight's zeros say so (sparse_choice.py):

    matmul(x: [..., K], W: const [K, N])
        -> reshape(call_tir(bsr_matmul | csr_matmul, [x as [M, K], data, indices, indptr,
                   zeros [N]]), [..., N])

data, indices and indptr are constants of the module: the library holds the packed weight, not
W. CSR's rows of x are padded to whole vectors, BSR's to whole register tiles where no divisor
comes near one (ViT's 197 tokens), and the padding cut off the result. The bias
add and activation after the matmul stay in the graph, where FuseOps groups them into one kernel.
Runs among -O3's CPU passes, after constant folding (W's transposes folded in) and before
pack_matmul_weights, which packs the weights left dense. Every layer's structure and choice goes
to `record` (the library's "sparse" metadata: `tvmopt inspect` prints it).
"""

from __future__ import annotations

import numpy as np
from tvm import relax
from tvm.relax.expr_functor import PyExprMutator, mutator

from ..._tvm import tvm
from ...passes.consts import const, dtype, is_constant, static_shape, value
from ...passes.spans import SpanningBuilder, node_names, spanned
from ..kernel_record import FLOPS_ATTR
from . import kernel_sparse, sparse_int8
from .pack_matmul_weights import padded_rows
from .sparse_choice import choose, int8_structure, structure

SPARSE_RECORD = "sparse"  # the metadata key of the layers' records


def SparseWeights(mode: str, cpu, record: list):  # noqa: N802 - named like TVM passes
    """The pass for `mode` (off, auto, force) on `cpu` (cpu.py); layers are appended to
    `record`."""

    @tvm.transform.module_pass(opt_level=0, name="tvmopt.SparseWeights")
    def transform(mod, _ctx):
        if mode == "off":  # weights not even scanned: the graph is what it was before
            return mod
        rewriter = _SparseMatmuls(mod, mode, cpu, record)
        for gvar, func in list(mod.functions.items()):
            if isinstance(func, relax.Function):
                rewriter.builder_.update_func(gvar, rewriter.visit_expr(func))
        if rewriter.replaced:  # the dense int8 kernels no call reads: not compiled for nothing
            return relax.transform.DeadCodeElimination()(rewriter.builder_.get())
        return rewriter.builder_.get()

    return transform


@mutator
class _SparseMatmuls(PyExprMutator):
    def __init__(self, mod, mode: str, cpu, record: list):
        super().__init__(mod)
        self.mode, self.cpu, self.record = mode, cpu, record
        self.module = mod  # where the int8 layers' PrimFuncs are read
        self.replaced = set()  # the dense int8 kernels whose calls the sparse one took

    def visit_call_(self, call):
        call = self.visit_expr_post_order(call)
        quantized = sparse_int8.int8_matmul(self.module, call)
        if quantized is not None:
            return self._int8(quantized)
        weight = _constant_weight(call)
        if weight is None:
            return call
        rows = int(np.prod(static_shape(call.args[0])[:-1]))
        layer = structure(weight)
        choice = choose(layer, rows, self.mode, self.cpu.lanes())
        self.record.append(_layer_record(call, weight, layer, choice))
        if choice.kernel == "dense":
            return call
        return spanned(self._sparse_call(call, weight, rows, choice), call.span)

    def _int8(self, layer):
        """A quantized matmul: the sparse int8 kernel where it is chosen (sparse_int8.py)."""
        choice, step = sparse_int8.choice_for(layer, self.mode, self.cpu)
        layer_structure = int8_structure(layer.weight, step.depth if step else 4)
        self.record.append(_layer_record(layer.call, layer.weight, layer_structure, choice,
                                         step.depth if step else 4))  # fmt: skip
        if choice.kernel == "dense":
            return layer.call
        self.replaced.add(layer.call.args[0])
        new = sparse_int8.sparse_call(self.builder_, layer, choice, step, self.cpu)
        return spanned(new, layer.call.span)

    def _sparse_call(self, call, weight, rows: int, choice):
        depth, columns = weight.shape
        x = relax.op.reshape(call.args[0], (rows, depth))
        if choice.kernel == "csr":
            height = -(-rows // self.cpu.lanes()) * self.cpu.lanes()
            kernel, packed = self._csr(height, depth, columns, weight)
        else:
            height = self._bsr_height(rows, columns, choice.width)
            kernel, packed = self._bsr(height, depth, columns, weight, choice.width)
        if height > rows:
            x = relax.op.nn.pad(x, (0, height - rows, 0, 0))
        gvar = self.builder_.add_func(kernel, self._kernel_name(choice, height, columns))
        builder = SpanningBuilder(self.builder_, call.span)  # the kernel record's ONNX node
        args = [builder.emit(x), *map(const, packed), const(np.zeros(columns, "float32"))]
        out = relax.TensorType((height, columns), "float32")
        y = builder.emit(relax.call_tir(gvar, args, out))
        if height > rows:
            y = relax.op.strided_slice(y, [0], [0], [rows])
        return relax.op.reshape(y, static_shape(call))

    def _bsr_height(self, rows: int, columns: int, width: int) -> int:
        """Rows of x the BSR kernel runs: whole vectors for bsr_token_matmul; for bsr_matmul,
        whole register tiles where no divisor comes near one (pack_matmul_weights)."""
        lanes = self.cpu.lanes()
        vectors = -(-rows // lanes) * lanes
        if self._token_tiling(vectors, columns, width):
            return vectors
        return padded_rows(rows, max(self.cpu.accumulators // max(width // lanes, 1), 1))

    def _kernel_name(self, choice, rows: int, columns: int) -> str:
        """sparse_bsr_token_matmul where BSR runs bsr_token_matmul: told apart in profiles."""
        token = choice.kernel == "bsr" and self._token_tiling(rows, columns, choice.width)
        return f"sparse_{choice.kernel}{'_token' if token else ''}_matmul"

    def _token_tiling(self, rows: int, columns: int, width: int):
        registers = self.cpu.isa.vector_registers
        return kernel_sparse.token_tiling(rows, columns, width, self.cpu.lanes(), registers)

    def _bsr(self, rows: int, depth: int, columns: int, weight, width: int):
        packed = kernel_sparse.pack_bsr(weight, width)
        stored = len(packed[1])
        tiling = self._token_tiling(rows, columns, width)
        if tiling:  # whole vectors of rows against each stored block: 1.6-2.4x bsr_matmul
            kernel = kernel_sparse.bsr_token_matmul(rows, depth, columns, width, stored, tiling)
        else:
            vectors = max(width // self.cpu.lanes(), 1)
            tile = kernel_sparse.tile_rows(rows, self.cpu.accumulators, vectors)
            kernel = kernel_sparse.bsr_matmul(rows, depth, columns, width, stored, tile)
        return _with_flops(kernel, rows, packed[0].size), packed

    def _csr(self, height: int, depth: int, columns: int, weight):
        packed = kernel_sparse.pack_csr(weight)
        cpu, lanes = self.cpu, self.cpu.lanes()
        vectors = kernel_sparse.tile_vectors(height, depth, lanes, cpu.accumulators, cpu.l2_bytes)
        kernel = kernel_sparse.csr_matmul(height, depth, columns, len(packed[1]), lanes, vectors)
        return _with_flops(kernel, height, packed[0].size), packed


def _with_flops(kernel, rows: int, stored: int):
    """`kernel` with its multiply-adds counted (TVM's estimate cannot bound the stored rows'
    loop): what `tvmopt run --profile` divides by its time."""
    return kernel.with_attr(FLOPS_ATTR, 2 * rows * stored)


def _constant_weight(call) -> np.ndarray | None:
    """W of matmul(x, W) with W a 2-D float32 constant and x of static shape, else None."""
    if not isinstance(call, relax.Call) or call.op != tvm.ir.Op.get("relax.matmul"):
        return None
    x, weight = call.args
    if not is_constant(weight) or dtype(weight) != "float32" or dtype(x) != "float32":
        return None
    shape = static_shape(x)
    if shape is None or len(shape) < 2 or len(static_shape(weight) or ()) != 2:
        return None
    return value(weight)


def _layer_record(call, weight, layer, choice, int8_depth: int = 0) -> dict:  # noqa: PLR0913
    """An int8 layer's blocks are `int8_depth` rows (its step's words along K) by B columns."""
    names = node_names(call.span)
    rows = int8_depth or 1
    return {
        "layer": names[0] if names else "matmul",
        "weight": list(weight.shape),
        "density": round(layer.density, 4),
        "dtype": "int8" if int8_depth else "float32",
        "blocks": {f"{rows}x{width}": round(stored, 4)
                   for width, stored in layer.stored.items()},  # fmt: skip
        "kernel": choice.kernel,
        "block": choice.block,
        "why": choice.reason,
    }


def with_sparse_weights(graph: list, factory) -> list:
    """`graph` with the pass (made by `factory`) before pack_matmul_weights, where it has one."""
    names = [name for name, _ in graph]
    if "pack_matmul_weights" not in names:
        return graph
    at = names.index("pack_matmul_weights")
    return [*graph[:at], ("sparse_weights", factory), *graph[at:]]


def describe(layer: dict) -> str:
    """One line of a layer's record, as `tvmopt compile` and `tvmopt inspect` print it."""
    blocks = " ".join(f"{name} {stored:.0%}" for name, stored in layer["blocks"].items())
    kernel = layer["kernel"]
    if kernel != "dense":
        kernel = f"{kernel} {layer['block']}"
    rows, columns = layer["weight"]
    dtype = " int8" if layer.get("dtype") == "int8" else ""  # records before int8 had none
    return (
        f"{layer['layer']} {rows}x{columns}{dtype}: density {layer['density']:.1%} "
        f"(blocks stored: {blocks}) -> {kernel} ({layer['why']})"
    )
