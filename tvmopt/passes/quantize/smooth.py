"""SmoothQuant-style migration (Xiao et al., 2023) and per-token scales: a matmul input's
outlier channels move into its weight, and its outlier tokens into a per-row scale, exactly in
float.

    matmul(x, W)  ->  matmul(x * (1 / s), s[:, None] * W)                      (smoothed)
    matmul(x, W)  ->  matmul(x / r, W) * r,  r = max(|x|, axis=-1)            (per token)

with s_j = max|x_j|^alpha / max|W_j,:|^(1 - alpha) per input channel j. A transformer's
LayerNorm outputs have a few channels tens of times wider than the rest; one per-tensor uint8
scale spends its levels on those channels, and the others keep a few levels each. Divided by
s, every channel spans about the same range, and the weight rows, multiplied by s, take the
outliers, where per-channel int8 weights absorb them. Matmuls that read the same x (Q, K and V)
share one s (over all their weight rows) and one scaled x.

Per token: every row of x / r has max |x| = 1, so one static uint8 scale fits every token, a
token whose activations are small as well as one with a massive activation (BERT's separator
and full stop tokens); r is computed at run time (a row reduction), and the int8 layer's output
is multiplied back by it, in the layer's epilogue. A GELU output (an FFN's down-projection
input) needs it most: its range is set by a few tokens, and most tokens keep a few levels.

Per group of matmuls, alpha is chosen from (off, 0.25, 0.5, 0.75), with and without per-token
scales, by the int8 error each choice gives them, emulated in numpy on sample rows of x
(emulate.py); smoothing, and per-token scales (which cost a row reduction), only where each at
least halves the error. A group without outliers stays as it is. Runs after the float32
graph passes and before annotate (quantization.py); the multiply by 1 / s and the division by
r fuse into x's producer, where the layers' uint8 quantization goes too (requantize.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from tvm import relax, te, tirx
from tvm.relax.expr_functor import PyExprMutator, mutator

from ..consts import const, value
from .annotate import Layer
from .emulate import fake_quantized_input, fake_quantized_weight, token_error
from .observers import make_observer

ALPHAS = (None, 0.25, 0.5, 0.75)  # None: x as it is
PER_TOKEN_GAIN = 0.5  # per-token scales where they at most halve the best static error
# smoothing where it at most halves the emulated error: a smaller gain on the calibration rows
# did not carry over to other inputs (the bench's seeded BERT-base: output cosine 0.99993 plain,
# 0.99971 with every group smoothed)
SMOOTH_GAIN = 0.5
TINY = 1e-12  # r of a row of zeros: x / r stays 0


@dataclass(frozen=True)
class Migration:
    """What a group of matmuls reading one x gets: s per channel (None: none), per-token r."""

    scale: np.ndarray | None
    per_token: bool


def group_by_input(layers: list[Layer]) -> list[list[Layer]]:
    """The matmul layers, grouped by the expression they read."""
    groups: dict = {}
    for layer in layers:
        if layer.kind == "matmul":
            groups.setdefault(layer.call.args[0], []).append(layer)
    return list(groups.values())


def migration_scale(x_peak: np.ndarray, weights: list[np.ndarray], alpha: float) -> np.ndarray:
    """s per input channel; 1 where x or every weight row is zero."""
    w_peak = np.max([np.abs(w).max(axis=1) for w in weights], axis=0)
    usable = (x_peak > 0) & (w_peak > 0)
    s = np.power(np.where(usable, x_peak, 1.0), alpha)
    s /= np.power(np.where(usable, w_peak, 1.0), 1.0 - alpha)
    return np.where(usable, s, 1.0)


class GroupEmulation:
    """A group's int8 error (emulate.py) under each candidate migration, in the float64 the
    emulation always took, sharing between candidates what they have in common: the rows in
    float64, the exact products, each s's fake-quantized weights (its static and per-token
    candidates quantize the same s * W) and each candidate's quantized input (every weight
    reads it). Recomputed per candidate and weight, they took 250 of 535 s of BERT-base's int8
    compile (cProfile, a loaded Zen 4); shared, the figures are the same bit for bit."""

    def __init__(self, rows: np.ndarray, weights: list[np.ndarray], levels: int):
        self.rows = rows.astype(np.float64)
        self.weights, self.levels = weights, levels
        self.exact = [self.rows @ w for w in weights]
        self._fake_weights = {}  # id of s (None: none) -> (s, its fake-quantized s * W)

    def error(self, how: Migration, config) -> float:
        """The group's summed token-level int8 error under migration `how`."""
        s = np.ones(self.rows.shape[1]) if how.scale is None else how.scale.astype(np.float64)
        scaled = self.rows / s
        r = np.maximum(np.abs(scaled).max(axis=1, keepdims=True), TINY) if how.per_token else 1.0
        normalized = scaled / r
        observer = make_observer(config.method)
        observer.observe(normalized)
        qparams = observer.qparams(config.symmetric_activations)
        x = fake_quantized_input(normalized, qparams)
        weights = self._quantized(how.scale, s)
        return sum(token_error(exact, (x @ w) * r)
                   for exact, w in zip(self.exact, weights, strict=True))  # fmt: skip

    def _quantized(self, scale, s: np.ndarray) -> list[np.ndarray]:
        key = None if scale is None else id(scale)
        if key not in self._fake_weights:  # the scale is held, so that its id stays its own
            fake = [fake_quantized_weight(s[:, None] * w, self.levels) for w in self.weights]
            self._fake_weights[key] = (scale, fake)
        return self._fake_weights[key][1]


def group_error(rows: np.ndarray, weights: list[np.ndarray], how: Migration, config,  # noqa: PLR0913
                levels: int) -> float:  # fmt: skip
    """The group's summed token-level int8 error (emulate.py) under migration `how`."""
    return GroupEmulation(rows, weights, levels).error(how, config)


def _best(rows, weights, peak, config, levels) -> Migration:
    """The migration of least emulated error, among those `config` allows (smooth, per_token)."""
    alphas = ALPHAS if config.smooth else (None,)
    scales = [None if a is None else migration_scale(peak, weights, a) for a in alphas]
    group = GroupEmulation(rows, weights, levels)
    static = [(group.error(Migration(s, False), config), Migration(s, False)) for s in scales]
    best = min(static, key=lambda pair: pair[0])
    if best[0] > SMOOTH_GAIN * static[0][0]:
        best = static[0]  # not smoothed
    if not config.per_token:
        return best[1]
    dynamic = [(group.error(Migration(s, True), config), Migration(s, True)) for s in scales]
    best_dynamic = min(dynamic, key=lambda pair: pair[0])
    return best_dynamic[1] if best_dynamic[0] <= PER_TOKEN_GAIN * best[0] else best[1]


def migrations(layers: list[Layer], rows: dict, peaks: dict, config, levels: int) -> dict:
    """{layer name: Migration} for the groups that gain by one; `rows` and `peaks` are each
    layer's sample input rows [n, K] and per-channel max |x| (from the float32 model)."""
    chosen = {}
    for group in group_by_input(layers):
        name = group[0].name
        weights = [value(layer.call.args[1]) for layer in group]
        how = _best(rows[name], weights, peaks[name], config, levels)
        if how.scale is not None or how.per_token:
            chosen.update(dict.fromkeys((layer.name for layer in group), how))
    return chosen


def migrated_rows(rows: np.ndarray, how: Migration | None) -> np.ndarray:
    """A layer's input rows after `how`, as the migrated graph computes them."""
    if how is None:
        return rows
    scaled = rows if how.scale is None else rows / how.scale
    if how.per_token:
        scaled = scaled / np.maximum(np.abs(scaled).max(axis=1, keepdims=True), TINY)
    return scaled


def row_scale(x):
    """TE: r = max(max(|x|, axis=-1), TINY), keeping the axis: a reduction along the row, then
    an element-wise block (a row normalization's shape, which rule_row_reduce.py vectorizes)."""
    *rows, width = (int(d) for d in x.shape)
    k = te.reduce_axis((0, width), name="k")
    peak = te.compute(rows, lambda *i: te.max(tirx.abs(x[(*i, k)]), axis=k), name="row_peak")
    tiny = tirx.const(TINY, "float32")
    return te.compute((*rows, 1), lambda *i: tirx.max(peak[i[:-1]], tiny), name="row_scale")


@mutator
class _Migrator(PyExprMutator):
    def __init__(self, mod, plans: dict):
        super().__init__(mod)
        self.plans = plans  # matmul call -> Migration
        self.inputs = {}  # x -> (its emitted migrated value, r or None), shared by its readers

    def visit_call_(self, call):
        how = self.plans.get(call)
        if how is None:
            return self.visit_expr_post_order(call)
        x = call.args[0]
        if x not in self.inputs:
            self.inputs[x] = self._migrated(self.visit_expr(x), how)
        migrated, r = self.inputs[x]
        weight = value(call.args[1])
        if how.scale is not None:
            weight = how.scale[:, None] * weight
        product = relax.op.matmul(migrated, const(weight.astype(np.float32)),
                                  out_dtype=call.attrs.out_dtype)  # fmt: skip
        return product if r is None else relax.op.multiply(self.builder_.emit(product), r)

    def _migrated(self, x, how: Migration):
        emit = self.builder_.emit
        if how.scale is not None:
            x = emit(relax.op.multiply(x, const((1.0 / how.scale).astype(np.float32))))
        if not how.per_token:
            return x, None
        # one TE function, so that the CPU's row reduction rule vectorizes it (a relax max over
        # abs took the fallback's scalar loop: 0.2 ms for MiniLM's 64 x 1536 on one Zen 4 core)
        r = emit(self.builder_.call_te(row_scale, x, primfunc_name_hint="row_scale"))
        return emit(relax.op.divide(x, r)), r


def migrate(mod, layers: list[Layer], plans: dict):
    """`mod` with each layer named in `plans` (migrations') migrated."""
    by_call = {layer.call: plans[layer.name] for layer in layers if layer.name in plans}
    migrator = _Migrator(mod, by_call)
    main = mod.get_global_var("main")
    migrator.builder_.update_func(main, migrator.visit_expr(mod["main"]))
    return migrator.builder_.get()
