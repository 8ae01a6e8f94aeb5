"""A decoder's KV cache written in place: one preallocated buffer of `capacity` rows per past
input, instead of a new (past + seq)-row tensor every step.

    present = concat((past, new), axis=2)           # (batch, heads, past + seq, width): a copy
->  cache' = call_tir_inplace(write_rows, (cache, new, past))   # rows past..past+seq-1 only
    present = strided_slice(cache', axes=[2], begin=[0], end=[past + seq])  # what attention reads

The past input becomes the cache (batch, heads, capacity, width), its rows 0..past-1 the tokens
so far, and a new int64 input `past_length` (1,) gives `past`: bound from its value
(tensor_to_shape + match_cast) where the old graph read it from the past's shape, so every other
use of `past` (positions, the causal mask) stays as it was. The present outputs become the caches
themselves (the same buffers, returned). FuseOps would leave each slice a copying kernel of its
own; CacheRowsIntoMatmul (backends/llvm/cache_rows_into_matmul.py) folds them into the attention
matmuls that read them, so no kernel copies the cache. The write kernel checks that the rows fit
(kv_cache_rows.py).

Preconditions, else `rewrite` declines (None): main's past inputs (named `prefix`*) are 4-D,
their dim 2 one symbolic var, and each is used only as the first operand of concats along axis
2. Run right after the import, before quantization and the graph passes.
"""

from __future__ import annotations

from dataclasses import dataclass

from .._tvm import tvm

WRITER = "kv_cache_write_rows"
POSITION = "past_length"  # the default name of the input saying how many rows are filled


@dataclass(frozen=True)
class InPlaceCache:
    """What the rewrite made: the module, and the record the library's metadata keeps."""

    module: object
    caches: tuple[str, ...]  # the past inputs that became caches, in signature order
    capacity: int
    position: str

    def record(self) -> dict:
        return {"mode": "in-place", "capacity": self.capacity, "position": self.position,
                "caches": list(self.caches)}  # fmt: skip


def rewrite(mod, capacity: int, prefix: str = "past_",
            position: str = POSITION) -> InPlaceCache | None:  # fmt: skip
    """`mod` with main's past inputs as in-place caches of `capacity` rows, written at the
    input named `position`, or None."""
    main = mod["main"]
    pasts = [p for p in main.params if p.name.startswith(prefix)]
    past_var = _shared_past_dim(pasts)
    body = main.body
    if past_var is None or len(body.blocks) != 1 or not _only_concatenated(main, pasts):
        return None
    from .kv_cache_rows import write_rows

    builder = tvm.relax.BlockBuilder(mod)  # types the writer's global var
    writer = builder.add_func(write_rows(pasts[0].ty.dtype), WRITER)
    mod = builder.get()
    mod["main"] = _InPlaceWrites(writer, pasts, past_var, capacity).function(main, position)
    mod = tvm.relax.transform.Normalize()(mod)
    return InPlaceCache(mod, tuple(p.name for p in pasts), capacity, position)


def _shared_past_dim(pasts):
    """The one tir var that every past input's dim 2 is, else None."""
    dims = set()
    for param in pasts:
        shape = param.ty.shape
        if shape is None or len(shape) != 4 or not isinstance(shape[2], tvm.tirx.Var):
            return None
        dims.add(shape[2])
    return dims.pop() if len(dims) == 1 else None


def _only_concatenated(main, pasts) -> bool:
    """Whether each past is used, and only as concat((past, new), axis=2)'s first operand."""
    uses, concatenated = dict.fromkeys(pasts, 0), dict.fromkeys(pasts, 0)

    def count(expr):
        if isinstance(expr, tvm.relax.Var) and expr in uses:
            uses[expr] += 1
        elif _past_concat(expr, uses) is not None:
            concatenated[_past_concat(expr, uses)[0]] += 1

    tvm.relax.analysis.post_order_visit(main.body, count)
    return all(uses[p] == concatenated[p] > 0 for p in pasts)


def _past_concat(expr, pasts):
    """(past, new) of concat((past, new), axis=2), else None."""
    if not (isinstance(expr, tvm.relax.Call) and expr.op == tvm.ir.Op.get("relax.concat")):
        return None
    operands = expr.args[0]
    if not (isinstance(operands, tvm.relax.Tuple) and len(operands.fields) == 2):
        return None
    past, new = operands.fields
    return (past, new) if past in pasts and int(expr.attrs.axis) in (2, -2) else None


class _InPlaceWrites:
    """Rebuilds main's one dataflow block binding by binding: each past concat -> a write (once
    per past and new rows) and a slice; the output tuple's concats -> the written caches."""

    def __init__(self, writer, pasts, past_var, capacity: int):
        self.writer, self.past_var = writer, past_var
        self.caches = {p: _cache_param(p, capacity) for p in pasts}
        self.written = {}  # (past, new) -> the written cache
        self.sliced = {}  # a slice's var -> the written cache it reads

    def function(self, main, name: str):
        position = tvm.relax.Var(name, tvm.relax.TensorType([1], "int64"))
        (block,) = main.body.blocks
        bindings = []
        for binding in block.bindings:
            bindings += self._rebound(binding, main.body.body)
        output = self._output(bindings, main.body.body)
        body = tvm.relax.SeqExpr([tvm.relax.DataflowBlock(self._bind_past(position) + bindings)],
                                 output)  # fmt: skip
        params = [self.caches.get(p, p) for p in main.params] + [position]
        function = tvm.relax.Function(params, body, output.ty, main.is_pure, main.attrs)
        return function.with_attr("num_input", len(params))

    def _bind_past(self, position):
        """past := the value of `position`, before anything uses it (as DecomposeOps would
        lower R.tensor_to_shape, but matched to `past` itself: its own match to a new var
        leaves two names for one dim, which FuseTIR then defines twice)."""
        shape = tvm.relax.DataflowVar("past_shape", tvm.relax.ShapeType(ndim=1))
        bound = tvm.relax.DataflowVar("past_bound", tvm.relax.ShapeType([self.past_var]))
        return [
            tvm.relax.VarBinding(shape, _tensor_to_shape(position)),
            tvm.relax.MatchCast(bound, shape, tvm.relax.ShapeType([self.past_var])),
        ]

    def _rebound(self, binding, output) -> list:
        concat = _past_concat(binding.value, self.caches)
        if binding.var.same_as(output) or concat is None:
            return [binding]
        key = (concat[0], concat[1])
        writes = [] if key in self.written else [self._write(*key)]
        cache = self.written[key]
        end = binding.var.ty.shape[2]
        rows = tvm.relax.op.strided_slice(cache, axes=[2], begin=[0], end=[end],
                                          assume_inbound=True)  # fmt: skip
        self.sliced[binding.var] = cache
        return [*writes, tvm.relax.VarBinding(binding.var, rows)]

    def _write(self, past, new):
        cache = self.caches[past]
        arguments = tvm.relax.Tuple([cache, new, tvm.relax.prim_value(self.past_var)])
        call = tvm.relax.call_tir_inplace(self.writer, arguments, [0], cache.ty)
        written = tvm.relax.DataflowVar(f"{past.name}_written", cache.ty)
        self.written[(past, new)] = written
        return tvm.relax.VarBinding(written, call)

    def _output(self, bindings, output):
        """The output binding, its fields that were concats now the written caches."""
        for index, binding in enumerate(bindings):
            if binding.var.same_as(output) and isinstance(binding.value, tvm.relax.Tuple):
                fields = [self._written_or(field) for field in binding.value.fields]
                value = tvm.relax.Tuple(fields)
                var = tvm.relax.Var(output.name, value.ty)
                bindings[index] = tvm.relax.VarBinding(var, value)
                return var
        return output

    def _written_or(self, field):
        concat = _past_concat(field, self.caches)
        if concat is not None:
            return self.written[concat]
        return self.sliced.get(field, field)


def _cache_param(param, capacity: int):
    batch, heads, _, width = param.ty.shape
    sinfo = tvm.relax.TensorType([batch, heads, capacity, width], param.ty.dtype)
    return tvm.relax.Var(param.name, sinfo)


def _tensor_to_shape(tensor):
    ndim_one = tvm.relax.ShapeType(ndim=1)
    return tvm.relax.op.call_pure_packed("vm.builtin.tensor_to_shape", tensor, ty_args=ndim_one)
