"""Sensitivity-based fallback: a matmul layer whose own int8 error is too large stays float32.

Each layer is measured alone (emulate.py): its float32 input rows, quantized with the qparams
calibration gave it, times its quantized weight, against the float32 product. A layer whose
signal-to-quantization-noise ratio is under the threshold (QuantizeConfig.fallback_sqnr_db)
keeps float32, and the report says so with its figure. Measured alone, a layer is not blamed
for what the layers before it lost; the report's SQNR column, from the whole int8 model, is.
"""

from __future__ import annotations

from ..consts import value
from .annotate import Layer
from .emulate import relative_error, sqnr_db
from .observers import QParams


def alone_sqnr_db(layers: list[Layer], rows: dict, qparams: dict[str, QParams],
                  levels: int) -> dict[str, float]:  # fmt: skip
    """{matmul layer name: its int8 SQNR alone, in dB} for the layers with sample rows."""
    return {
        layer.name: sqnr_db(relative_error(rows[layer.name], value(layer.call.args[1]),
                                           qparams[layer.name], levels))
        for layer in layers if layer.name in rows and layer.name in qparams
    }  # fmt: skip


def sensitive_layers(alone: dict[str, float], threshold_db: float | None) -> dict[str, str]:
    """{layer name: why it stays float32} for the layers under `threshold_db` (None: none)."""
    if threshold_db is None:
        return {}
    return {
        name: f"int8 alone {db:.1f} dB < {threshold_db:g} dB (fallback_sqnr_db)"
        for name, db in alone.items() if db < threshold_db
    }  # fmt: skip
