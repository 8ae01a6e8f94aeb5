"""int8 post-training quantization of an imported model, start to finish, in one of the
recipes a backend picks (Backend.recipe): "int8", ours:

float32 graph passes -> annotate -> compile with taps -> calibrate (stream the data) ->
convert -> measure each layer against float32 -> fall back the worst layers to float32
while the top-1 budget is exceeded -> the int8 module, ready for the rest of -O3;

"vta", VTA's power-of-two recipe (backends/vta/quantize.py); and a model quantized already
(QDQ), which takes our int8 kernels with its own qparams. Calibration runs on the backend's
calibration CPU; the int8 layers run on the backend's kernels (Backend.int8_kernels).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from itertools import chain, islice
from typing import NamedTuple

import numpy as np

from ._tvm import tvm
from .backends import Backend, vta
from .errors import OptionError
from .passes.pipeline import O3, instantiate
from .passes.quantize.annotate import find_layers, onnx_layer_names
from .passes.quantize.calibrate import TappedModel, add_taps, calibrate, input_rows
from .passes.quantize.convert import convert, weight_levels
from .passes.quantize.data import calibration_samples, check_source
from .passes.quantize.fallback import alone_sqnr_db, sensitive_layers
from .passes.quantize.qdq import prequantized_layers
from .passes.quantize.report import QuantizeReport, cosine, layer_report, top1_disagreement
from .passes.quantize.smooth import migrate, migrations
from .passes.quantize.spec import QuantizeConfig

HELD_SAMPLES = 32  # calibration samples kept in memory to measure int8 against float32


@dataclass
class Quantized:
    module: object  # the converted Relax module
    graph: list  # the graph passes still to run on it
    mode: str  # as the artifact records it: "int8", "int8-qdq" or "vta"
    report: QuantizeReport | None = None


def quantize_for(backend: Backend, recipe, mod, model_proto, specs, config, calib,  # noqa: PLR0913
                 log=None, opt_level=3) -> Quantized | None:  # fmt: skip
    """`mod` (as imported from `model_proto`) quantized in `recipe` (Backend.recipe), or, with
    none, in the qparams of its own QDQ nodes; None for a float model left as it is."""
    if recipe is not None:
        return RECIPES[recipe](mod, model_proto, specs, backend, config, calib, log)
    if opt_level == 3 and has_quantize_ops(mod):
        return prequantized(mod, model_proto, backend)
    return None


def quantize(mod, model_proto, specs, backend, config: QuantizeConfig, calib, log=None):
    """Quantize `mod` (as imported from `model_proto`) to int8 with calibration data `calib`."""
    check_source(calib)  # before minutes of compiling, not after
    mod = _float32_graph_passes(mod, backend.target)
    host = backend.calibration_backend()
    names = onnx_layer_names(model_proto)
    layers = find_layers(mod["main"], names)
    _check_skip(config.skip, layers)
    kernels = backend.int8_kernels()
    bits = config.weight_bits_for(kernels.weight_bits)
    if bits < 8:
        _log(log, f"{bits}-bit weights for conv and matmul layers")
    samples = calibration_samples(calib, specs)
    held = list(islice(samples, HELD_SAMPLES))  # kept to measure int8 against float32
    # smoothing, per-token scales and the layers' own errors concern matmul layers only: a
    # model without them (a CNN) skips their float32 build and runs
    has_matmuls = any(layer.kind == "matmul" for layer in layers)
    plans, measured = {}, None
    if (config.smooth or config.per_token) and has_matmuls:
        mod, plans, measured = _migrated(mod, layers, names, host, held, config,
                                         weight_levels(bits), log)  # fmt: skip
    if plans:  # a migrated graph is another one: found, built and measured again
        layers, measured = find_layers(mod["main"], names), None
    tapped_mod, tapped_layers = add_taps(mod, names)
    float_model = measured.model if measured else TappedModel(_build(tapped_mod, host),
                                                              len(layers))  # fmt: skip
    qparams = calibrate(float_model, tapped_layers, _progress(chain(held, samples), log), config)
    rows = measured.rows if measured else {}
    if has_matmuls and measured is None:
        rows, _ = input_rows(float_model, tapped_layers, held)
    alone = alone_sqnr_db(layers, rows, qparams, weight_levels(bits))
    why_float = {**_sensitive(alone, config, log), **_left_float(layers, config.skip, backend, log)}
    chosen = {n: q for n, q in qparams.items() if n not in why_float}
    probe = _Probe(tapped_mod, tapped_layers, host, float_model, held, bits)
    report = _within_budget(probe, chosen, qparams, why_float, config, log)
    converted = convert(mod, layers, chosen, replace(kernels, weight_bits=bits))
    report = report.explained(why_float).annotated(alone, plans)
    return Quantized(converted, backend.graph_after_quantize(), "int8", report)


class _Measured(NamedTuple):
    """A tapped float32 build of the unmigrated graph and its matmul layers' input rows on the
    held samples (calibrate.input_rows): what calibration reuses where nothing migrated."""

    model: TappedModel
    rows: dict


def _migrated(mod, layers, names, host, held, config, levels, log):  # noqa: PLR0913
    """`mod` with SmoothQuant's migration and per-token scales where they lower the emulated
    int8 error (smooth.py), {layer name: its Migration} and the _Measured float32 build the
    input rows of `layers` (mod's) were measured on."""
    tapped_mod, tapped_layers = add_taps(mod, names)
    tapped = TappedModel(_build(tapped_mod, host), len(tapped_layers))
    rows, peaks = input_rows(tapped, tapped_layers, held)
    plans = migrations(layers, rows, peaks, config, levels)
    smoothed = sum(how.scale is not None for how in plans.values())
    per_token = sum(how.per_token for how in plans.values())
    _log(log, f"matmul layers: {smoothed} of {len(rows)} smoothed (SmoothQuant), "
              f"{per_token} with per-token scales")  # fmt: skip
    return (migrate(mod, layers, plans) if plans else mod), plans, _Measured(tapped, rows)


def _within_budget(probe, chosen: dict, qparams, why_float: dict, config, log):  # noqa: PLR0913
    """The report of the int8 model after the worst layers fell back to float32 (popped from
    `chosen`, added to `why_float`) while the top-1 budget is exceeded."""
    report = probe.measure(chosen, qparams)
    while _over_budget(report, config) and chosen:
        worst = min((r for r in report.layers if r.quantized), key=lambda r: r.sqnr_db)
        _log(log, f"top-1 differs on {100 * report.top1_disagreement:.1f}%: {worst.name} -> fp32")
        chosen.pop(worst.name)
        why_float[worst.name] = "over the accuracy budget (max_accuracy_drop)"
        report = probe.measure(chosen, qparams)
    return report


def _sensitive(alone: dict, config: QuantizeConfig, log) -> dict[str, str]:
    sensitive = sensitive_layers(alone, config.fallback_sqnr_db)
    if sensitive:
        _log(log, f"{len(sensitive)} layers stay float32: {next(iter(sensitive.values()))}")
    return sensitive


def _left_float(layers, skip, backend: Backend, log) -> dict[str, str]:
    """The layers that stay float32 before any is measured, with why: the user's skip list, and
    those the backend runs slower in int8 (Backend.int8_slower)."""
    why = {layer.name: backend.int8_slower(layer.kind) for layer in layers}
    why = {name: reason for name, reason in why.items() if reason}
    if why:
        _log(log, f"{len(why)} of {len(layers)} layers stay float32: {next(iter(why.values()))}")
    return {**why, **dict.fromkeys(skip, "skipped (skip)")}


def quantize_vta(mod, model_proto, specs, backend, config, calib, log=None):
    """VTA's power-of-two int8 recipe (backends/vta/quantize.py), calibrated on `calib`; the
    graph passes are done after it."""
    from .backends.vta.quantize import quantize_for_vta

    if config.skip or config.max_accuracy_drop is not None:
        raise OptionError("skip and max_accuracy_drop are not supported with VTA's recipe yet")
    check_source(calib)
    mod = _float32_graph_passes(mod, backend.target)
    samples = _progress(calibration_samples(calib, specs), log)
    return Quantized(quantize_for_vta(mod, samples, backend.target), vta.GRAPH, "vta")


def quantize_weights_only(mod, model_proto, specs, backend, config, calib=None, log=None):
    """Weight-only quantization (passes/quantize/quantize_weights.py, a WeightOnlyConfig):
    every float32 matmul's constant weight in blocks, on folded weights; no calibration."""
    from .passes.quantize.quantize_weights import quantize_weights

    mod = _float32_graph_passes(mod, backend.target)
    _log(log, f"int{config.bits} weights in groups of {config.group}")
    mode = f"int{config.bits}-weights" + ("-a8" if config.int8_activations else "")
    return Quantized(quantize_weights(mod, config), backend.graph_after_quantize(), mode)


RECIPES = {"int8": quantize, "vta": quantize_vta, "int4-weights": quantize_weights_only,
           "int8-weights": quantize_weights_only, "int4-weights-a8": quantize_weights_only,
           "int8-weights-a8": quantize_weights_only}  # fmt: skip


def _float32_graph_passes(mod, target):
    """-O3's target-neutral graph passes, up to where quantization runs (weights folded, not
    yet packed)."""
    with target:
        return tvm.transform.Sequential([p for _, p in instantiate(O3)])(mod)


def has_quantize_ops(mod) -> bool:
    """Whether `main` holds QuantizeLinear (a pre-quantized model)."""
    calls = [b.value for block in mod["main"].body.blocks for b in block.bindings]
    return any(getattr(getattr(c, "op", None), "name", None) == "relax.quantize" for c in calls)


def prequantized(mod, model_proto, backend) -> Quantized:
    """A QDQ model's conv/matmul layers on our int8 kernels with its own qparams."""
    mod = _float32_graph_passes(mod, backend.target)
    layers = find_layers(mod["main"], onnx_layer_names(model_proto))
    found = prequantized_layers(mod["main"], layers)
    qparams = {name: q for name, (_, q) in found.items()}
    sources = {name: source for name, (source, _) in found.items()}
    # the model's own int8 weights, as they are: full range (a step they do not fit is not used)
    kernels = replace(backend.int8_kernels(), weight_bits=8, fit_weight=None)  # as ORT has them
    converted = convert(mod, layers, qparams, kernels, sources)
    return Quantized(converted, backend.graph_after_quantize(), "int8-qdq")


LISTED_LAYERS = 8  # an error names this many layers, then counts the rest: it stays one line


def _check_skip(skip, layers) -> None:
    known = [layer.name for layer in layers]
    unknown = [name for name in skip if name not in known]
    if unknown:
        listed = ", ".join(known[:LISTED_LAYERS]) or "none"
        if len(known) > LISTED_LAYERS:
            listed += f" and {len(known) - LISTED_LAYERS} more; see tvmopt quantize-report"
        raise OptionError(f"cannot skip '{unknown[0]}': no quantizable layer has that name "
                          f"(the layers are: {listed})")  # fmt: skip


def _progress(samples, log):
    if log is None:
        return samples
    from tqdm import tqdm

    return tqdm(samples, desc="calibrating", unit="sample", leave=False, disable=None)  # TTY only


def _log(log, message: str) -> None:
    if log is not None:
        log(message)


def _over_budget(report: QuantizeReport, config: QuantizeConfig) -> bool:
    budget = config.max_accuracy_drop
    return budget is not None and report.top1_disagreement > budget


def _build(mod, backend: Backend):
    return backend.build(mod, backend.graph_after_quantize(), 3)


class _Probe:
    """Compiles the tapped module with a given set of int8 layers (on the calibration CPU's
    kernels) and compares it with float32 on the held samples."""

    def __init__(self, tapped_mod, layers, backend, float_model, held, weight_bits):  # noqa: PLR0913
        self.tapped_mod, self.layers, self.backend, self.held = tapped_mod, layers, backend, held
        self.weight_bits = weight_bits  # the target's, on this CPU's kernels
        self.float_runs = [float_model.run(arrays) for arrays in held]

    def measure(self, chosen: dict, qparams: dict) -> QuantizeReport:
        kernels = replace(self.backend.int8_kernels(), weight_bits=self.weight_bits)
        converted = convert(self.tapped_mod, self.layers, chosen, kernels)
        int8_model = TappedModel(_build(converted, self.backend), len(self.layers))
        int8_runs = [int8_model.run(arrays) for arrays in self.held]
        reports = tuple(
            layer_report(
                layer,
                layer.name in chosen,
                qparams[layer.name],
                [run[2][i] for run in self.float_runs],
                [run[2][i] for run in int8_runs],
            )  # fmt: skip
            for i, layer in enumerate(self.layers)
        )
        float_out = [run[0][0] for run in self.float_runs]
        int8_out = [run[0][0] for run in int8_runs]
        return QuantizeReport(
            reports, top1_disagreement(float_out, int8_out),
            cosine(np.concatenate([o.ravel() for o in float_out]),
                   np.concatenate([o.ravel() for o in int8_out])),
            len(self.held),
            self.weight_bits,
        )  # fmt: skip
