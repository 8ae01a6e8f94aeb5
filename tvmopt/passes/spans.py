"""Which ONNX nodes each Relax call came from, carried as the call's span: the importer gives
every call the name of the node it converts (frontend/node_spans.py), and a pass that replaces
calls gives the new ones the spans of those it replaced (the rule engine does it for every
rule-table pass; our mutators through `spanned` and `SpanningBuilder`). The kernel record
reads them before TVM's legalization, which drops every span (backends/kernel_record.py), so
that `tvmopt run --profile` can say which nodes each kernel covers.

A span names one node (its SourceName) or, once a rewrite merged calls (a batch norm folded into
its conv), several, as a SequentialSpan."""

from __future__ import annotations

from collections.abc import Iterable

from tvm import relax

from .._tvm import tvm
from .uses import bindings, operands, relax_functions


def node_span(name: str) -> tvm.ir.Span:
    return tvm.ir.Span(tvm.ir.SourceName(name), 0, 0, 0, 0)


def node_names(span) -> list[str]:
    """The ONNX nodes `span` names, in order, without repeats."""
    if span is None:
        return []
    if isinstance(span, tvm.ir.SequentialSpan):
        return list(dict.fromkeys(name for part in span.spans for name in node_names(part)))
    return [span.source_name.name]


def merged(spans: Iterable) -> tvm.ir.Span | None:
    """One span naming every node of `spans`; None where they name none."""
    names = list(dict.fromkeys(name for span in spans for name in node_names(span)))
    if len(names) <= 1:
        return node_span(names[0]) if names else None
    return tvm.ir.SequentialSpan([node_span(name) for name in names])


def spanned(expr, span):
    """`expr` with `span` on each of its calls that has none: the calls a rewrite made, down to
    the variables and the calls it reused (which keep their own). A call read twice (batch
    norm's, by each of its outputs) stays one call."""
    return expr if span is None else _spanned(expr, lambda _: span, {})


def rewritten(result, matched: list):
    """A rewrite's `result` with spans from the `matched` calls it replaces: a new call of an
    op the match had takes the spans of the matched calls of that op (a permute sunk below a
    relu stays the conv's, the relu stays the relu's); the result's own call also takes those
    of ops it no longer has (a batch norm's multiply folded into its conv's weights); any other
    new call, all of them."""
    every = merged(call.span for call in matched)
    if every is None:
        return result
    by_op: dict = {}
    for call in matched:
        if call.span is not None:
            by_op.setdefault(call.op, []).append(call.span)
    made = {call.op for call in _new_calls(result)}
    folded = [span for op, spans in by_op.items() if op not in made for span in spans]

    def span_of(call):
        own = by_op.get(call.op) or [every]
        return merged([*own, *folded]) if call.same_as(result) else merged(own)

    return _spanned(result, span_of, {})


def _new_calls(expr) -> list:
    found = []
    relax.analysis.post_order_visit(
        expr, lambda e: found.append(e) if isinstance(e, relax.Call) and e.span is None else None
    )
    return found


def _spanned(expr, span_of, done: dict):
    if expr in done:
        return done[expr]
    result = expr
    if isinstance(expr, relax.Call) and expr.span is None:
        args = [_spanned(arg, span_of, done) for arg in expr.args]
        result = relax.Call(expr.op, args, expr.attrs, expr.ty_args, span_of(expr),
                            ret_ty=getattr(expr, "ty", None))  # fmt: skip
    elif isinstance(expr, relax.Tuple) and expr.span is None:
        result = relax.Tuple([_spanned(field, span_of, done) for field in expr.fields])
    elif isinstance(expr, relax.TupleGetItem):  # batch norm's output, say
        inner = _spanned(expr.tuple_value, span_of, done)
        if not inner.same_as(expr.tuple_value):
            result = relax.TupleGetItem(inner, expr.index)
    done[expr] = result
    return result


class SpanningBuilder:
    """A BlockBuilder whose `emit` gives what it binds `span`: for the kernels a mutator
    emits in place of one call (an int8 layer's conv, requantization and bias)."""

    def __init__(self, builder, span):
        self._builder, self._span = builder, span

    def emit(self, expr, name_hint: str = ""):
        return self._builder.emit(spanned(expr, self._span), name_hint)

    def __getattr__(self, name):
        return getattr(self._builder, name)


def keeping_spans(inner: tvm.transform.Pass) -> tvm.transform.Pass:
    """`inner` (a TVM pass that drops spans: DecomposeOpsForInference rewrites a batch norm into
    arithmetic) followed by spans for what it made (`respanned`)."""

    @tvm.transform.module_pass(opt_level=0, name=f"tvmopt.KeepingSpans.{inner.info.name}")
    def keeping(mod, _ctx):
        before = {var: value.span for _, func in relax_functions(mod)
                  for var, value in bindings(func).items()}  # fmt: skip
        after = inner(mod)
        for gvar, func in relax_functions(after):
            after[gvar] = respanned(func, before, set(before))
        return after

    return keeping


def respanned(func: relax.Function, spans: dict, old_vars: set) -> relax.Function:
    """`func` after a rewrite, with spans where its calls have none: a binding of a var in
    `spans` takes that span, and a binding the rewrite added (its var not in `old_vars`) takes
    the span of the first binding that reads it. TVM's normalizer drops the span of every call
    whose nested calls it binds, so a rewrite's spanned result comes out of it unspanned."""
    bound = bindings(func)
    filled = {var: value.span or spans.get(var) for var, value in bound.items()}
    for reader, value in reversed(bound.items()):  # the first reader comes last
        for var in operands(value):
            if var in bound and var not in old_vars and bound[var].span is None:
                filled[var] = filled[reader]
    if not any(filled[var] is not None and _unspanned_call(value) for var, value in bound.items()):
        return func
    blocks = [type(block)([_respanned(b, filled[b.var]) for b in block.bindings])
              for block in func.body.blocks]  # fmt: skip
    body = relax.SeqExpr(blocks, func.body.body)
    return relax.Function(func.params, body, func.ret_ty, func.is_pure, func.attrs, func.span)


def _unspanned_call(value) -> bool:
    return isinstance(value, relax.Call) and value.span is None


def _respanned(binding, span):
    if span is None or not _unspanned_call(binding.value):
        return binding
    return relax.VarBinding(binding.var, spanned(binding.value, span))
