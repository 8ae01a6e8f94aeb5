"""Observe and calibrate: run the float32 model over the calibration data, feeding each layer's
input to its observer, one sample at a time.

The model is compiled once with taps: `main` also returns every layer's input and output. The
graph itself is never changed by calibration; the taps are a separate build.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from tvm import relax

from ..._tvm import tvm
from ...vm_results import leaves
from .annotate import Layer, find_layers
from .observers import QParams, make_observer
from .spec import QuantizeConfig


def add_taps(mod, names: list[str] | None) -> tuple[object, list[Layer]]:
    """`mod` whose main returns (outputs, *layer inputs, *layer outputs), and its layers."""
    flat = relax.transform.ToNonDataflow()(mod)
    main = flat["main"]
    layers = find_layers(main, names)
    taps = [layer.call.args[0] for layer in layers] + [layer.var for layer in layers]
    body = relax.BlockBuilder().normalize(
        relax.SeqExpr(main.body.blocks, relax.Tuple([main.body.body, *taps]))
    )
    tapped = relax.Function(main.params, body, attrs=main.attrs)
    flat["main"] = tapped
    return flat, find_layers(flat["main"], names)


class TappedModel:
    """A compiled tapped module: run it and get (outputs, layer inputs, layer outputs)."""

    def __init__(self, executable, layer_count: int):
        self.vm = tvm.relax.VirtualMachine(executable, tvm.cpu())
        self.layer_count = layer_count

    def run(self, arrays: list[np.ndarray]):
        result = self.vm["main"](*[tvm.runtime.tensor(a) for a in arrays])
        outputs = leaves(result[0])
        taps = [result[1 + i].numpy() for i in range(2 * self.layer_count)]
        return outputs, taps[: self.layer_count], taps[self.layer_count :]


def calibrate(
    tapped: TappedModel,
    layers: list[Layer],
    samples,
    config: QuantizeConfig,
    progress: Callable = lambda it: it,
) -> dict[str, QParams]:
    """Each layer's activation qparams, from streaming `samples` through `tapped`."""
    observers = {layer.name: make_observer(config.method) for layer in layers}
    for arrays in progress(samples):
        _, inputs, _ = tapped.run(arrays)
        for layer, activation in zip(layers, inputs, strict=True):
            observers[layer.name].observe(activation)
    symmetric = config.symmetric_activations
    return {name: obs.qparams(symmetric) for name, obs in observers.items()}


def input_rows(tapped: TappedModel, layers: list[Layer], samples, max_rows: int = 4096):
    """({matmul layer name: sample rows of its input, [n, K]}, {name: per-channel max |x|}),
    over `samples` (a list): every row's peak, and at most about `max_rows` rows, evenly
    strided, for numpy to emulate the layer on (emulate.py)."""
    names = [layer.name for layer in layers]
    picked = {layer.name: [] for layer in layers if layer.kind == "matmul"}
    peaks = {}
    for arrays in samples:
        _, inputs, _ = tapped.run(arrays)
        for name, x in zip(names, inputs, strict=True):
            if name in picked:
                flat = x.reshape(-1, x.shape[-1])
                stride = max(1, -(-len(flat) * len(samples) // max_rows))
                picked[name].append(flat[::stride])
                peak = np.abs(flat).max(axis=0)
                peaks[name] = np.maximum(peaks.get(name, peak), peak)
    return {name: np.concatenate(rows) for name, rows in picked.items()}, peaks
