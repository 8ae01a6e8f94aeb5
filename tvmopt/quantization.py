"""int8 post-training quantization of an imported model, start to finish:

float32 graph passes -> annotate -> compile with taps -> calibrate (stream the data) ->
convert -> measure each layer against float32 -> fall back the worst layers to float32
while the top-1 budget is exceeded -> the int8 module, ready for the rest of -O3.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._tvm import tvm
from .backends import cuda, llvm, resolve_target
from .errors import OptionError
from .passes.pipeline import O3_AFTER_QUANTIZE, O3_BEFORE_QUANTIZE, graph_passes
from .passes.quantize.annotate import find_layers, onnx_layer_names
from .passes.quantize.calibrate import TappedModel, add_taps, calibrate
from .passes.quantize.convert import convert
from .passes.quantize.data import calibration_samples, check_source
from .passes.quantize.qdq import prequantized_layers
from .passes.quantize.report import QuantizeReport, cosine, layer_report, top1_disagreement
from .passes.quantize.spec import QuantizeConfig

HELD_SAMPLES = 32  # calibration samples kept in memory to measure int8 against float32


@dataclass
class Quantized:
    module: object  # the converted Relax module, before O3_AFTER_QUANTIZE
    report: QuantizeReport


def quantize(mod, model_proto, specs, target, config: QuantizeConfig, calib, log=None):
    """Quantize `mod` (as imported from `model_proto`) to int8 with calibration data `calib`."""
    check_source(calib)  # before minutes of compiling, not after
    mod = _float32_graph_passes(mod, target)
    host = calibration_target(target)
    names = onnx_layer_names(model_proto)
    layers = find_layers(mod["main"], names)
    _check_skip(config.skip, layers)
    tapped_mod, tapped_layers = add_taps(mod, names)
    float_model = TappedModel(_build(tapped_mod, host), len(layers))
    held: list = []
    samples = _holding(calibration_samples(calib, specs), held)
    qparams = calibrate(float_model, tapped_layers, _progress(samples, log), config)
    chosen = {n: q for n, q in qparams.items() if n not in config.skip}
    probe = _Probe(tapped_mod, tapped_layers, host, float_model, held)
    report = probe.measure(chosen, qparams)
    while _over_budget(report, config) and chosen:
        worst = min((r for r in report.layers if r.quantized), key=lambda r: r.sqnr_db)
        _log(log, f"top-1 differs on {100 * report.top1_disagreement:.1f}%: {worst.name} -> fp32")
        chosen.pop(worst.name)
        report = probe.measure(chosen, qparams)
    return Quantized(convert(mod, layers, chosen, signed=signed_for(target)), report)


def calibration_target(target):
    """Where calibration and the accuracy probe run: `target`, or this CPU for a GPU target
    (the model is calibrated where it is compiled, with or without a GPU)."""
    return resolve_target(None) if cuda.is_cuda(target) else target


def signed_for(target) -> bool:
    """Whether the GEMM kernels read int8 activations: CUDA's dp4a multiplies int8 by int8."""
    return cuda.is_cuda(target)


def quantize_vta(mod, specs, target, calib, log=None):
    """VTA's power-of-two int8 recipe (backends/vta/quantize.py), calibrated on `calib`."""
    from .backends.vta.quantize import quantize_for_vta

    check_source(calib)
    mod = _float32_graph_passes(mod, target)
    return quantize_for_vta(mod, _progress(calibration_samples(calib, specs), log), target)


def _float32_graph_passes(mod, target):
    """-O3's graph passes up to where quantization runs (weights folded, not yet packed)."""
    with target:
        return tvm.transform.Sequential([p for _, p in graph_passes(3, O3_BEFORE_QUANTIZE)])(mod)


def has_quantize_ops(mod) -> bool:
    """Whether `main` holds QuantizeLinear (a pre-quantized model)."""
    calls = [b.value for block in mod["main"].body.blocks for b in block.bindings]
    return any(getattr(getattr(c, "op", None), "name", None) == "relax.quantize" for c in calls)


def prequantized(mod, model_proto, target):
    """A QDQ model's conv/matmul layers on our int8 kernels with its own qparams; the module is
    returned after the float32 graph passes, ready for O3_AFTER_QUANTIZE."""
    mod = _float32_graph_passes(mod, target)
    layers = find_layers(mod["main"], onnx_layer_names(model_proto))
    found = prequantized_layers(mod["main"], layers)
    qparams = {name: q for name, (_, q) in found.items()}
    sources = {name: source for name, (source, _) in found.items()}
    return convert(mod, layers, qparams, sources, signed=signed_for(target))


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


def _holding(samples, held: list):
    for arrays in samples:
        if len(held) < HELD_SAMPLES:
            held.append(arrays)
        yield arrays


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


def _build(mod, target):
    return llvm.build(mod, target, 3, graph=O3_AFTER_QUANTIZE)


class _Probe:
    """Compiles the tapped module with a given set of int8 layers and compares it with float32
    on the held samples."""

    def __init__(self, tapped_mod, layers, target, float_model, held):
        self.tapped_mod, self.layers, self.target, self.held = tapped_mod, layers, target, held
        self.float_runs = [float_model.run(arrays) for arrays in held]

    def measure(self, chosen: dict, qparams: dict) -> QuantizeReport:
        converted = convert(self.tapped_mod, self.layers, chosen)
        int8_model = TappedModel(_build(converted, self.target), len(self.layers))
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
        )  # fmt: skip
