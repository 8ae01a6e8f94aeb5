"""What to quantize and how: frozen, self-validating configs.

Activations are per-tensor uint8 (what VNNI's vpdpbusd multiplies), asymmetric by default or
symmetric about 128; weights are per-output-channel symmetric int8 in [-127, 127]. The
calibration method picks each activation's range from the observed data; each method has its own
typed config, and a bare name means that method with its defaults.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ...errors import OptionError


@dataclass(frozen=True)
class MinMax:
    """The observed minimum and maximum: no clipping."""

    name = "minmax"


@dataclass(frozen=True)
class Percentile:
    """Clip |x| at this percentile of the observed magnitudes."""

    percentile: float = 99.99
    bins: int = 2048
    name = "percentile"

    def __post_init__(self):
        if not 50.0 < self.percentile <= 100.0:
            raise OptionError(f"percentile must be in (50, 100], got {self.percentile}")
        _check_bins(self.bins)


@dataclass(frozen=True)
class Entropy:
    """The clipping threshold whose quantized distribution is closest in KL divergence to the
    observed one (TensorRT's calibration)."""

    bins: int = 2048
    levels: int = 128  # quantization levels the magnitudes are compared at
    name = "entropy"

    def __post_init__(self):
        _check_bins(self.bins)
        if not 2 <= self.levels < self.bins:
            raise OptionError(f"entropy levels must be in [2, bins), got {self.levels}")


@dataclass(frozen=True)
class Mse:
    """The clipping threshold with the least mean squared quantization error."""

    bins: int = 2048
    candidates: int = 128
    name = "mse"

    def __post_init__(self):
        _check_bins(self.bins)
        if self.candidates < 2:
            raise OptionError(f"mse candidates must be at least 2, got {self.candidates}")


def _check_bins(bins: int) -> None:
    if bins < 16:
        raise OptionError(f"histogram bins must be at least 16, got {bins}")


METHODS = {cls.name: cls for cls in (MinMax, Percentile, Entropy, Mse)}


def method_config(method) -> MinMax | Percentile | Entropy | Mse:
    """A method config from itself or its name."""
    if isinstance(method, tuple(METHODS.values())):
        return method
    if method not in METHODS:
        raise OptionError(
            f"unknown calibration method {method!r}; choose from {', '.join(METHODS)}"
        )
    return METHODS[method]()


FALLBACK_SQNR_DB = 20.0  # about 1% of the output's power: such a layer costs a 0.99 cosine alone


@dataclass(frozen=True)
class QuantizeConfig:
    """How `tvmopt.compile(..., quantize="int8")` quantizes.

    Parameters
    ----------
    method : str or a method config
        minmax, percentile, entropy or mse.
    symmetric_activations : bool
        Activation ranges symmetric about zero (zero point 128) instead of [min, max].
    skip : tuple of str
        Layers kept in float32: ONNX node names (or tvmopt's layer names, as in the report).
    max_accuracy_drop : float, optional
        Largest allowed share of calibration samples whose top-1 class differs from float32;
        the most sensitive layers fall back to float32 until it holds.
    weight_bits : int, optional
        8 ([-127, 127]) or 7 ([-63, 63]) for conv and matmul weights. By default, what the
        target runs fastest: 7 on x86 CPUs without VNNI (AVX2), whose fast int8 instruction
        (vpmaddubsw) is exact only on such weights, else 8. 8 there runs exact on a slower
        int16 path.
    smooth : bool
        SmoothQuant-style migration (smooth.py): matmul inputs divided per channel by a scale
        that their weights take, where that lowers the emulated int8 error.
    per_token : bool
        Per-token activation scales (smooth.py): matmul inputs divided per row by their max |x|
        at run time and the outputs multiplied back, where that halves the emulated error.
    fallback_sqnr_db : float, optional
        Matmul layers whose int8 error alone (fallback.py) is under this many dB of
        signal-to-noise stay float32; None keeps every layer int8.
    """

    method: object = "minmax"
    symmetric_activations: bool = False
    skip: tuple[str, ...] = field(default_factory=tuple)
    max_accuracy_drop: float | None = None
    weight_bits: int | None = None
    smooth: bool = True
    per_token: bool = True
    fallback_sqnr_db: float | None = FALLBACK_SQNR_DB

    def __post_init__(self):
        object.__setattr__(self, "method", method_config(self.method))
        object.__setattr__(self, "skip", tuple(self.skip))
        drop = self.max_accuracy_drop
        if drop is not None and not 0.0 <= drop <= 1.0:
            raise OptionError(f"max_accuracy_drop must be in [0, 1], got {drop}")
        if self.weight_bits not in (None, 7, 8):
            raise OptionError(f"weight_bits must be 7 or 8, got {self.weight_bits}")

    def weight_bits_for(self, target_bits: int) -> int:
        """The bits of conv and matmul weights, where the target's kernels want `target_bits`
        (Int8Kernels.weight_bits)."""
        return self.weight_bits or target_bits
