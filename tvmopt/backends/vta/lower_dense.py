"""An int8 dense layer as a VTA program, tiled over output blocks with double buffering.

    y = clip((x . W^T + bias + 2^(shift-1)) >> shift, -127, 127)   [then max(y, 0) for ReLU]

Layouts (reference section 6): x as (K/B, B) input elements, W as (N/B, K/B, B, B) weight
blocks (row = output channel), bias as (N/B, B) accumulators, y as (N/B, B) output elements.
Per tile of output blocks: the load module brings the weight tile into one half of the weight
buffer; compute loads the bias into one half of the accumulators, runs the GEMM (reduction in
the outer loop, so consecutive iterations write different accumulators) and the requantizing
ALU chain; store writes the tile. Tokens let tile t+1's loads overlap tile t's compute and
store, and stop a half from being reused before its last reader is done.
"""

from __future__ import annotations

import numpy as np

from ...errors import VTAError
from .config import DEFAULT, VTAConfig
from .isa import Alu, Gemm, Load, Mem, Store, Uop
from .program import Program, ProgramBuilder
from .requantize import Requantize


def dense_reference(x, weight, bias, requantize: Requantize) -> np.ndarray:
    """What the VTA program must compute, bit for bit (int32 sums cannot overflow here)."""
    acc = x.astype(np.int32) @ weight.astype(np.int32).T + bias.astype(np.int32)
    return requantize.reference(acc)


def lower_dense(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, requantize: Requantize,
                config: VTAConfig = DEFAULT) -> Program:  # fmt: skip
    """The program for one row x (K,) int8, weight (N, K) int8, bias (N,) int32; its output
    region "y" holds N (padded to blocks) int8 values."""
    b = config.block
    blocks_k, blocks_n = -(-x.shape[-1] // b), -(-weight.shape[0] // b)
    tile = _tile_blocks(blocks_k, blocks_n, config)
    builder = ProgramBuilder(config)
    regions = _place_operands(builder, x, weight, bias, blocks_k, blocks_n)
    builder.emit(Load(memory=Mem.INP, sram_base=0, dram_base=regions["x"].base, y_size=1,
                      x_size=blocks_k, x_stride=blocks_k))  # fmt: skip
    starts = list(range(0, blocks_n, tile))
    for t, start in enumerate(starts):
        count = min(tile, blocks_n - start)
        _load_weights(builder, t, start, count, blocks_k, tile, regions)
        _compute(builder, t, start, count, blocks_k, tile, regions, requantize)
        _store(builder, t, start, count, tile, regions)
    builder.drain("compute", "load", min(2, len(starts)))  # the last two tiles' tokens
    builder.drain("store", "compute", min(2, len(starts)))
    return builder.finish()


def _tile_blocks(blocks_k: int, blocks_n: int, config: VTAConfig) -> int:
    """Output blocks per tile: two tiles of weights and of accumulators fit on chip."""
    if blocks_k > config.depth("inp"):
        raise VTAError(f"dense input of {blocks_k} blocks exceeds the input buffer "
                       f"({config.depth('inp')} blocks)")  # fmt: skip
    tile = min(blocks_n, config.depth("wgt") // (2 * blocks_k), config.depth("acc") // 2)
    if tile < 1:
        raise VTAError(f"one output block needs {blocks_k} weight blocks; two must fit the "
                       f"{config.depth('wgt')}-block weight buffer")  # fmt: skip
    return tile


def _place_operands(builder, x, weight, bias, blocks_k, blocks_n) -> dict:
    b = builder.config.block
    xs = np.zeros(blocks_k * b, np.int8)
    xs[: x.shape[-1]] = x.reshape(-1)
    ws = np.zeros((blocks_n * b, blocks_k * b), np.int8)
    ws[: weight.shape[0], : weight.shape[1]] = weight
    ws = ws.reshape(blocks_n, b, blocks_k, b).transpose(0, 2, 1, 3)  # (n, k, 16o, 16i)
    bs = np.zeros(blocks_n * b, np.int32)
    bs[: bias.shape[0]] = bias
    builder.reserve("y", Mem.OUT, blocks_n)
    return {
        "x": builder.place("x", Mem.INP, xs),
        "w": builder.place("w", Mem.WGT, np.ascontiguousarray(ws)),
        "bias": builder.place("bias", Mem.ACC, bs),
        "y": builder.regions["y"],
    }


def _load_weights(builder, t, start, count, blocks_k, tile, regions) -> None:
    if t >= 2:
        builder.pop("compute", "load")  # compute is done with this half
    builder.emit(Load(memory=Mem.WGT, sram_base=(t % 2) * tile * blocks_k,
                      dram_base=regions["w"].base + start * blocks_k, y_size=1,
                      x_size=count * blocks_k, x_stride=count * blocks_k))  # fmt: skip
    builder.push("load", "compute")


def _compute(builder, t, start, count, blocks_k, tile, regions, requantize) -> None:
    acc_base, wgt_base = (t % 2) * tile, (t % 2) * tile * blocks_k
    builder.pop("load", "compute")
    if t >= 2:
        builder.pop("store", "compute")  # store is done with this half of the accumulators
    builder.emit(Load(memory=Mem.ACC, sram_base=acc_base, dram_base=regions["bias"].base + start,
                      y_size=1, x_size=count, x_stride=count))  # fmt: skip
    bgn, end = builder.uop_kernel(f"gemm{t}", [Uop(dst=acc_base, src=0, wgt=wgt_base)])
    builder.emit(Gemm(uop_bgn=bgn, uop_end=end, iter_out=blocks_k, iter_in=count,
                      src_factor_out=1, wgt_factor_out=1, dst_factor_in=1,
                      wgt_factor_in=blocks_k))  # fmt: skip
    bgn, end = builder.uop_kernel(f"alu{t}", [Uop(dst=acc_base, src=acc_base)])
    for op, imm in requantize.alu_ops():
        builder.emit(Alu(op=op, uop_bgn=bgn, uop_end=end, iter_in=count, dst_factor_in=1,
                         src_factor_in=1, use_imm=True, imm=imm))  # fmt: skip
    builder.push("compute", "load")
    builder.push("compute", "store")


def _store(builder, t, start, count, tile, regions) -> None:
    builder.pop("compute", "store")
    builder.emit(Store(sram_base=(t % 2) * tile, dram_base=regions["y"].base + start, y_size=1,
                       x_size=count, x_stride=count))  # fmt: skip
    builder.push("store", "compute")
