"""The per-layer report: how far each int8 layer's output strays from float32, and how often
the int8 model's top-1 class differs from float32's, over held calibration samples."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from .observers import QParams


@dataclass(frozen=True)
class LayerReport:
    name: str
    kind: str
    quantized: bool
    sqnr_db: float  # float32 output power over the int8 error's, in dB (higher is better)
    cosine: float
    scale: float
    zero_point: int
    low: float  # the activation range the qparams represent
    high: float
    why_float: str = ""  # why a float32 layer is not int8: skipped, over budget, slower
    alone_db: float | None = None  # SQNR of the layer alone, on float32 inputs (fallback.py)
    migration: str = ""  # "s": reads x / s, its weight s * W; "t": per-token scales (smooth.py)


@dataclass(frozen=True)
class QuantizeReport:
    layers: tuple[LayerReport, ...]
    top1_disagreement: float  # share of samples whose argmax differs from float32
    output_cosine: float
    samples: int
    weight_bits: int = 8  # of conv and matmul weights (QuantizeConfig.weight_bits)

    def table(self) -> str:
        lines = [
            f"{len(self.layers)} layers, {sum(r.quantized for r in self.layers)} int8 "
            f"({self.weight_bits}-bit weights); "
            f"over {self.samples} samples: top-1 differs from float32 on "
            f"{100 * self.top1_disagreement:.1f}%, output cosine {self.output_cosine:.5f}",
            f"{'layer':<32} {'kind':<9} {'dtype':<7} {'SQNR dB':>8} {'alone':>6} {'cosine':>9} "
            f"{'scale':>10} {'zp':>4} {'range':>21}  why float32",
        ]
        for r in self.layers:
            lines.append(
                f"{r.name[:32]:<32} {r.kind:<9} {_dtype(r):<7} "
                f"{r.sqnr_db:>8.2f} {_alone(r):>6} {r.cosine:>9.5f} {r.scale:>10.4g} "
                f"{r.zero_point:>4} "
                f"{f'[{r.low:.3g}, {r.high:.3g}]':>21}  {r.why_float}".rstrip()
            )
        return "\n".join(lines)

    def explained(self, why_float: dict[str, str]) -> QuantizeReport:
        """This report with the reason each float32 layer of `why_float` was left so."""
        layers = tuple(replace(r, why_float="" if r.quantized else why_float.get(r.name, ""))
                       for r in self.layers)  # fmt: skip
        return replace(self, layers=layers)

    def annotated(self, alone_db: dict[str, float], migrations: dict) -> QuantizeReport:
        """This report with each layer's SQNR alone and its migration (smooth.py)."""
        layers = tuple(replace(r, alone_db=alone_db.get(r.name),
                               migration=_migration_code(migrations.get(r.name)))
                       for r in self.layers)  # fmt: skip
        return replace(self, layers=layers)


def _migration_code(how) -> str:
    if how is None:
        return ""
    return ("s" if how.scale is not None else "") + ("t" if how.per_token else "")


def _dtype(r: LayerReport) -> str:
    return ("int8" if r.quantized else "fp32") + (f"+{r.migration}" if r.migration else "")


def _alone(r: LayerReport) -> str:
    return "" if r.alone_db is None else f"{r.alone_db:.1f}"


def sqnr_db(reference: np.ndarray, approx: np.ndarray) -> float:
    noise = float(np.sum((reference.astype(np.float64) - approx) ** 2))
    signal = float(np.sum(reference.astype(np.float64) ** 2))
    return float("inf") if noise == 0 else 10.0 * np.log10(max(signal, 1e-30) / noise)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    norms = np.linalg.norm(a) * np.linalg.norm(b)
    return 1.0 if norms == 0 else float(a @ b / norms)


def top1_disagreement(float_outputs: list, int8_outputs: list) -> float:
    """Share of samples whose first output's argmax (over its last axis) differs."""
    differ = [
        np.any(f.argmax(-1) != q.argmax(-1))
        for f, q in zip(float_outputs, int8_outputs, strict=True)
    ]
    return float(np.mean(differ)) if differ else 0.0


def layer_report(layer, quantized: bool, qparams: QParams, float_outs, int8_outs) -> LayerReport:
    reference, approx = (
        np.concatenate([o.ravel() for o in float_outs]),
        np.concatenate([o.ravel() for o in int8_outs]),
    )
    low = (0 - qparams.zero_point) * qparams.scale
    high = (255 - qparams.zero_point) * qparams.scale
    return LayerReport(
        layer.name, layer.kind, quantized, sqnr_db(reference, approx), cosine(reference, approx),
        qparams.scale, qparams.zero_point, low, high,
    )  # fmt: skip
