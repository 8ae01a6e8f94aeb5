"""A weight as the MatMul sees it: (batch, K, N), K the reduction axis, N the outputs.

MatMul B (..., K, N): as stored, leading axes as the batch. Gemm B: (K, N), or (N, K)
transposed when transB=1. Conv W (Cout, Cin/group, *kernel): K is the kernel taps x the input
channels, channels innermost (a channels-last im2col's order: an N:M group or a block along K
spans input channels of one tap), N the output channels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class WeightView:
    """How one op reads its weight; `to_kn` and `from_kn` are inverse."""

    op: str
    shape: tuple[int, ...]
    trans_b: bool = False

    def to_kn(self, weight: np.ndarray) -> np.ndarray:
        if self.op == "Conv":
            taps_first = np.moveaxis(weight, (0, 1), (-1, -2))  # (*kernel, Cin/g, Cout)
            return taps_first.reshape(1, -1, weight.shape[0])
        if self.op == "Gemm" and self.trans_b:
            return weight.T[None]
        return weight.reshape(-1, *weight.shape[-2:])

    def from_kn(self, kn: np.ndarray) -> np.ndarray:
        if self.op == "Conv":
            kernel, channels = self.shape[2:], self.shape[1]
            taps_first = kn.reshape(*kernel, channels, self.shape[0])
            return np.ascontiguousarray(np.moveaxis(taps_first, (-1, -2), (0, 1)))
        if self.op == "Gemm" and self.trans_b:
            return np.ascontiguousarray(kn[0].T)
        return kn.reshape(self.shape)

    @property
    def kn_shape(self) -> tuple[int, int]:
        if self.op == "Conv":
            return int(np.prod(self.shape[1:])), self.shape[0]
        if self.op == "Gemm" and self.trans_b:
            return self.shape[1], self.shape[0]
        return self.shape[-2], self.shape[-1]
