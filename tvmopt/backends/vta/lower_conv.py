"""An int8 conv2d (+ bias, requantization, ReLU) as a VTA program.

Layouts (reference section 6): input (C/B, H, W, B), weights (O/B, C/B, KH, KW, B, B), output
(O/B, H', W', B), bias (O/B, B) int32; channels are zero-padded to whole blocks.

The output is cut into tiles of `co` output blocks by `rows` output rows (all columns), the
input channels into steps of `ci` blocks. Per step the load module brings the input rows the
tile needs (spatial padding comes from the DMA's pads) and the weights into one half of their
buffers; compute runs one GEMM whose two hardware loops walk output rows and columns, with a
micro-op per (input block, kh, kw, output block). After the last step of a tile, compute adds
the bias and requantizes with the ALU; store writes the tile. Halves alternate, and tokens let
step s+1's loads run under step s's GEMM.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import product

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ...errors import VTAError
from .config import DEFAULT, VTAConfig
from .isa import Alu, AluOp, Gemm, Load, Mem, Store, Uop
from .program import Program, ProgramBuilder
from .requantize import Requantize

MAX_PAD = 15  # the DMA's pad fields are 4 bits


@dataclass(frozen=True)
class ConvShape:
    channels: int  # in blocks
    height: int
    width: int
    out_channels: int  # in blocks
    kernel: int
    stride: int
    padding: int

    @property
    def out_height(self) -> int:
        return (self.height + 2 * self.padding - self.kernel) // self.stride + 1

    @property
    def out_width(self) -> int:
        return (self.width + 2 * self.padding - self.kernel) // self.stride + 1

    def in_rows(self, rows: int) -> int:
        return (rows - 1) * self.stride + self.kernel

    @property
    def in_cols(self) -> int:
        return (self.out_width - 1) * self.stride + self.kernel


@dataclass(frozen=True)
class Tiling:
    co: int  # output blocks per tile
    rows: int  # output rows per tile
    ci: int  # input blocks per step


def conv_reference(x, weight, bias, stride, padding, requantize: Requantize) -> np.ndarray:
    """int8 NCHW conv2d in int32, plus bias, requantized: what VTA must match bit for bit."""
    xp = np.pad(x.astype(np.int32), ((0, 0), (padding, padding), (padding, padding)))
    k = weight.shape[-1]
    windows = sliding_window_view(xp, (k, k), axis=(1, 2))[:, ::stride, ::stride]
    acc = np.einsum("chwij,ocij->ohw", windows, weight.astype(np.int32), optimize=True)
    return requantize.reference(acc + bias.astype(np.int32)[:, None, None])


def lower_conv(x, weight, bias, stride: int, padding: int, requantize: Requantize,
               config: VTAConfig = DEFAULT, tiling: Tiling | None = None,
               double_buffer: bool = True) -> Program:  # fmt: skip
    """The program for x (C, H, W) int8, weight (O, C, K, K) int8, bias (O,) int32; its region
    "y" holds (O/B, H', W', B) int8. Without `double_buffer`, each step waits for the previous
    one to finish (no latency hiding), which is what the tokens would buy."""
    if padding > MAX_PAD:
        raise VTAError(f"padding {padding} exceeds the DMA's {MAX_PAD}")
    b = config.block
    shape = ConvShape(-(-x.shape[0] // b), x.shape[1], x.shape[2], -(-weight.shape[0] // b),
                      weight.shape[-1], stride, padding)  # fmt: skip
    tiling = tiling or choose_tiling(shape, config)
    check_tiling(shape, tiling, config)
    builder = ProgramBuilder(config)
    regions = _place_operands(builder, x, weight, bias, shape)
    _Emitter(builder, shape, tiling, regions, requantize, 2 if double_buffer else 1).emit()
    return builder.finish()


def choose_tiling(shape: ConvShape, config: VTAConfig) -> Tiling:
    """The tiling that fits and leaves the fewest steps (most work per load and launch)."""
    best = None
    for co, rows, ci in product(_divisors(shape.out_channels), range(1, shape.out_height + 1),
                                _divisors(shape.channels)):  # fmt: skip
        tiling = Tiling(co, rows, ci)
        if _fits(shape, tiling, config):
            steps = (-(-shape.out_channels // co) * -(-shape.out_height // rows)
                     * (shape.channels // ci))  # fmt: skip
            if best is None or steps < best[0]:
                best = (steps, tiling)
    if best is None:
        raise VTAError(f"no tiling of conv {shape} fits the on-chip buffers")
    return best[1]


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def _buffer_needs(shape: ConvShape, tiling: Tiling) -> dict[str, int]:
    """Elements of each buffer one half holds (the accumulators also hold the bias)."""
    kk = shape.kernel * shape.kernel
    return {
        "inp": tiling.ci * shape.in_rows(tiling.rows) * shape.in_cols,
        "wgt": tiling.co * tiling.ci * kk,
        "acc": tiling.co * tiling.rows * shape.out_width,
        "uop": tiling.co * tiling.ci * kk,
    }


def _fits(shape: ConvShape, tiling: Tiling, config: VTAConfig) -> bool:
    needs = _buffer_needs(shape, tiling)
    halves = {"inp": config.depth("inp") // 2, "wgt": config.depth("wgt") // 2,
              "acc": (config.depth("acc") - shape.out_channels) // 2,
              "uop": config.depth("uop") // 2}  # fmt: skip
    loops_fit = tiling.rows * shape.out_width < 1 << 14
    return loops_fit and all(needs[name] <= halves[name] for name in needs)


def check_tiling(shape: ConvShape, tiling: Tiling, config: VTAConfig) -> None:
    if shape.channels % tiling.ci or not _fits(shape, tiling, config):
        raise VTAError(f"tiling {tiling} does not fit conv {shape}: it needs "
                       f"{_buffer_needs(shape, tiling)} elements per buffer half")  # fmt: skip


def pack_activation(x: np.ndarray, block: int) -> np.ndarray:
    """(C, H, W) int8 -> (C/B, H, W, B), channels zero-padded to whole blocks."""
    channels, height, width = x.shape
    padded = np.zeros((-(-channels // block) * block, height, width), np.int8)
    padded[:channels] = x
    return np.ascontiguousarray(padded.reshape(-1, block, height, width).transpose(0, 2, 3, 1))


def unpack_activation(y: np.ndarray, channels: int) -> np.ndarray:
    """(O/B, H', W', B) -> (O, H', W'), the first `channels` channels."""
    blocks, height, width, block = y.shape
    return y.transpose(0, 3, 1, 2).reshape(blocks * block, height, width)[:channels]


def _place_operands(builder, x, weight, bias, shape: ConvShape) -> dict:
    b = builder.config.block
    k = shape.kernel
    ws = np.zeros((shape.out_channels * b, shape.channels * b, k, k), np.int8)
    ws[: weight.shape[0], : weight.shape[1]] = weight
    ws = ws.reshape(shape.out_channels, b, shape.channels, b, k, k).transpose(0, 2, 4, 5, 1, 3)
    bs = np.zeros(shape.out_channels * b, np.int32)
    bs[: bias.shape[0]] = bias
    builder.reserve("y", Mem.OUT, shape.out_channels * shape.out_height * shape.out_width)
    return {
        "x": builder.place("x", Mem.INP, pack_activation(x, b)),
        "w": builder.place("w", Mem.WGT, np.ascontiguousarray(ws)),
        "bias": builder.place("bias", Mem.ACC, bs),
        "y": builder.regions["y"],
    }


class _Emitter:
    """Emits the tile loops; counts steps and tiles to alternate buffer halves and tokens."""

    def __init__(self, builder: ProgramBuilder, shape, tiling, regions, requantize, halves: int):
        self.b, self.shape, self.tiling, self.regions = builder, shape, tiling, regions
        self.requantize, self.halves = requantize, halves
        needs = _buffer_needs(shape, tiling)
        self.half = {name: needs[name] for name in ("inp", "wgt", "acc")}
        self.bias_base = builder.config.depth("acc") - shape.out_channels
        self.steps = self.tiles = 0

    def emit(self) -> None:
        s, t = self.shape, self.tiling
        bias = self.regions["bias"].base
        self.b.emit(Load(memory=Mem.ACC, sram_base=self.bias_base, dram_base=bias, y_size=1,
                         x_size=s.out_channels, x_stride=s.out_channels))  # fmt: skip
        for co0 in range(0, s.out_channels, t.co):
            for row0 in range(0, s.out_height, t.rows):
                co, rows = min(t.co, s.out_channels - co0), min(t.rows, s.out_height - row0)
                self._tile(co0, co, row0, rows)
        self.b.drain("compute", "load", min(self.halves, self.steps))
        self.b.drain("store", "compute", min(self.halves, self.tiles))

    def _tile(self, co0: int, co: int, row0: int, rows: int) -> None:
        acc = (self.tiles % self.halves) * self.half["acc"]
        for ci0 in range(0, self.shape.channels, self.tiling.ci):
            self._load_step(co0, co, row0, rows, ci0)
            self._gemm_step(co, rows, acc, first=ci0 == 0)
        self._epilogue(co0, co, rows, acc)
        self._store(co0, co, row0, rows, acc)
        self.tiles += 1

    def _load_step(self, co0, co, row0, rows, ci0) -> None:
        s, ci = self.shape, self.tiling.ci
        half = self.steps % self.halves
        if self.steps >= self.halves:
            self.b.pop("compute", "load")  # compute is done with this half
        in_rows, top_row = s.in_rows(rows), row0 * s.stride - s.padding
        top, bottom = max(0, -top_row), max(0, top_row + in_rows - s.height)
        cols = min(s.width, s.in_cols - s.padding)
        for c in range(ci):
            self.b.emit(Load(
                memory=Mem.INP, sram_base=half * self.half["inp"] + c * in_rows * s.in_cols,
                dram_base=self.regions["x"].base + ((ci0 + c) * s.height + top_row + top) * s.width,
                y_size=in_rows - top - bottom, x_size=cols, x_stride=s.width, y_pad_0=top,
                y_pad_1=bottom, x_pad_0=s.padding, x_pad_1=s.in_cols - s.padding - cols,
            ))  # fmt: skip
        kk = s.kernel * s.kernel
        for o in range(co):  # this output block's weights for the step's input blocks
            self.b.emit(Load(
                memory=Mem.WGT, sram_base=half * self.half["wgt"] + o * ci * kk,
                dram_base=self.regions["w"].base + ((co0 + o) * s.channels + ci0) * kk,
                y_size=1, x_size=ci * kk, x_stride=ci * kk,
            ))  # fmt: skip
        self.b.push("load", "compute")

    def _gemm_step(self, co, rows, acc, first: bool) -> None:
        s, ci, half = self.shape, self.tiling.ci, self.steps % self.halves
        self.b.pop("load", "compute")
        plane = rows * s.out_width
        if first:
            if self.tiles >= self.halves:
                self.b.pop("store", "compute")  # store is done with this accumulator half
            self._gemm([Uop(dst=acc + o * plane, src=0) for o in range(co)], rows, reset=True)
        inp, wgt, k = half * self.half["inp"], half * self.half["wgt"], s.kernel
        block = s.in_rows(rows) * s.in_cols  # one input block's rows in the buffer
        # the output block varies fastest, so consecutive micro-ops write different accumulators
        uops = [Uop(dst=acc + o * plane, src=inp + c * block + i * s.in_cols + j,
                    wgt=wgt + ((o * ci + c) * k + i) * k + j)
                for c, i, j, o in product(range(ci), range(k), range(k), range(co))]  # fmt: skip
        self._gemm(uops, rows)
        self.b.push("compute", "load")
        self.steps += 1

    def _gemm(self, uops, rows, reset=False) -> None:
        s = self.shape
        bgn, end = self.b.uop_kernel("gemm", uops)
        self.b.emit(Gemm(reset=reset, uop_bgn=bgn, uop_end=end, iter_out=rows,
                         iter_in=s.out_width, dst_factor_out=s.out_width, dst_factor_in=1,
                         src_factor_out=0 if reset else s.stride * s.in_cols,
                         src_factor_in=0 if reset else s.stride))  # fmt: skip

    def _epilogue(self, co0, co, rows, acc) -> None:
        plane = rows * self.shape.out_width
        bgn, end = self.b.uop_kernel("bias", [Uop(dst=acc, src=self.bias_base + co0)])
        self.b.emit(Alu(op=AluOp.ADD, uop_bgn=bgn, uop_end=end, iter_out=co, iter_in=plane,
                        dst_factor_out=plane, dst_factor_in=1, src_factor_out=1))  # fmt: skip
        bgn, end = self.b.uop_kernel("requantize", [Uop(dst=acc, src=acc)])
        for op, imm in self.requantize.alu_ops():
            self.b.emit(Alu(op=op, uop_bgn=bgn, uop_end=end, iter_out=co, iter_in=plane,
                            dst_factor_out=plane, dst_factor_in=1, src_factor_out=plane,
                            src_factor_in=1, use_imm=True, imm=imm))  # fmt: skip
        self.b.push("compute", "store")

    def _store(self, co0, co, row0, rows, acc) -> None:
        s = self.shape
        plane = rows * s.out_width
        self.b.pop("compute", "store")
        for o in range(co):
            self.b.emit(Store(sram_base=acc + o * plane, y_size=rows, x_size=s.out_width,
                              x_stride=s.out_width,
                              dram_base=self.regions["y"].base
                              + ((co0 + o) * s.out_height + row0) * s.out_width))  # fmt: skip
        self.b.push("store", "compute")
