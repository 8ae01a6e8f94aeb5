"""One description of the target CPU, from LLVM's features for the target's mcpu and mattr:
what every CPU kernel emitter, schedule rule and weight packing sizes itself from.

Each instruction set is one row of ISAS (as ONNX Runtime's MLAS keeps one dispatch table per
ISA): its vector width, its vector registers, how many of them a register tile of accumulators
may take, and its int8 dot product. Nothing else in the CPU backend holds a lane count or a
register budget. (TVM's llvm_get_vector_width says 512 for every x86 CPU, AVX2 ones included,
so the width comes from the features here.)
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np

from ..._tvm import tvm
from ..cpu_features import required

# TVM 0.27 lowers a register tile of 1 KiB or more to a workspace allocated at every iteration of
# the loop it lives in (schedule_util.REGISTER_SCOPE): tiles stay under it
TILE_BYTES = 1024


@dataclass(frozen=True)
class Int8Step:
    """One int8 dot-product instruction, L lanes of int32 += A[D] x B[L, D] (intrin_int8.py):
    what the int8 GEMM's weight blocks and activations are laid out for."""

    name: str  # the TensorIntrin's
    lanes: int  # L
    depth: int  # D
    activation: str  # A's dtype
    weight: str  # B's dtype
    operand: str  # the LLVM intrinsic's operand elements
    operand_bits: int
    llvm_intrinsic: str
    accumulates: bool  # adds into its first operand (vpdpbusd), or returns the sums (vpmaddwd)
    # vpmaddubsw's: the instruction that adds its int16 pair sums into int32 lanes (vpmaddwd by
    # ones). Its pairs saturate unless |w0| + |w1| <= PAIR_LIMIT for adjacent input channels.
    pair_sum: str | None = None
    # the L x D block as `parts` blocks of L x D/parts, whose int16 pair sums add (vpaddw) before
    # the one pair_sum: each int16 lane then sums 2 x parts products (int8_quads_fit)
    parts: int = 1

    def admits(self, quantized) -> bool:
        """Whether this step is exact on the int8 weight [O, C, ...] (int8_pairs_fit,
        int8_quads_fit), with no more channel padding than a depth-4 block's."""
        if self.pair_sum is None:
            return True
        if self.parts == 1:
            return int8_pairs_fit(quantized)
        channels = np.shape(quantized)[1]
        padding_as_depth_4 = -(-channels // self.depth) * self.depth == -(-channels // 4) * 4
        return padding_as_depth_4 and int8_quads_fit(quantized)


# a uint8 activation (<= 255) times two weights with |w0| + |w1| <= 128 stays within int16
# (255 x 128 = 32640): 7-bit weights (|w| <= 63) always fit, ONNX Runtime's reduce_range ones too
PAIR_LIMIT = 128


def int8_pairs_fit(quantized) -> bool:
    """|w[:, 2m]| + |w[:, 2m + 1]| <= PAIR_LIMIT everywhere: the pairs vpmaddubsw adds in int16,
    as the packed blocks hold them (input channels in fours from 0, zero-padded)."""
    magnitude = np.abs(np.asarray(quantized, np.int32))
    if magnitude.shape[1] % 2:
        magnitude = np.concatenate([magnitude, np.zeros_like(magnitude[:, :1])], axis=1)
    return bool((magnitude[:, 0::2] + magnitude[:, 1::2]).max(initial=0) <= PAIR_LIMIT)


# an int16 lane of the depth-8 step sums a uint8 activation (<= 255) times the weights of input
# channels {0, 1, 4, 5} (or {2, 3, 6, 7}) of each 8: exact while the positive weights of such a
# quad sum to at most QUAD_LIMIT, and the negative ones too (255 x 128 = 32640 <= 32767)
QUAD_LIMIT = 128
QUAD_ACTIVATION_MAX = 255


def int8_quads(quantized) -> tuple[np.ndarray, np.ndarray]:
    """(positive, negative) weight sums per int16 lane of the depth-8 step: [O, quads] each
    (float64), the quads as the packed blocks hold them (input channels in eights from 0,
    zero-padded); of float weights too (int8_quads.py)."""
    weight = np.asarray(quantized)
    # integer weights sum exactly in int16 (4 x 128); float ones in float64, as they always did
    exact = np.int16 if weight.dtype.kind in "biu" else np.float64
    out, channels = weight.shape[:2]
    padded = np.zeros((out, -(-channels // 8) * 8, *weight.shape[2:]), exact)
    padded[:, :channels] = weight
    # [O, C/8, half, slot, pair element, ...]: a lane sums over the halves and the pair
    blocks = padded.reshape(out, -1, 2, 2, 2, *weight.shape[2:])
    positive = _lane_sums(np.maximum(blocks, 0)).reshape(out, -1)
    negative = _lane_sums(np.maximum(-blocks, 0)).reshape(out, -1)
    return positive.astype(np.float64), negative.astype(np.float64)


def _lane_sums(blocks: np.ndarray) -> np.ndarray:
    """blocks [O, C/8, half, slot, pair, ...] summed over half and pair by whole-array adds (a
    numpy sum over those axes took 0.2 s per BERT-base weight on a loaded Zen 4), in the order
    that sum added floats: pairwise for a 1x1 kernel, one by one otherwise (test_int8_quads.py
    checks them equal bit for bit)."""
    a, b = blocks[:, :, 0, :, 0], blocks[:, :, 0, :, 1]
    c, d = blocks[:, :, 1, :, 0], blocks[:, :, 1, :, 1]
    if np.prod(blocks.shape[5:], dtype=np.int64) == 1:
        return (a + b) + (c + d)
    return ((a + b) + c) + d


def int8_quads_fit(quantized) -> bool:
    """Whether every int16 lane of the depth-8 step stays within int16 for any uint8 input."""
    positive, negative = int8_quads(quantized)
    return bool(max(positive.max(initial=0), negative.max(initial=0)) <= QUAD_LIMIT)


INT8_STEPS = {
    "vpdpbusd-512": Int8Step("tvmopt_vnni_16x4", 16, 4, "uint8", "int8", "int8", 8,
                             "llvm.x86.avx512.vpdpbusd.512", True),
    "vpdpbusd-256": Int8Step("tvmopt_vnni_8x4", 8, 4, "uint8", "int8", "int8", 8,
                             "llvm.x86.avx512.vpdpbusd.256", True),
    # no VNNI: uint8 x int8 in int16 pairs, then summed into int32, where the weights' pairs fit
    # (7-bit weights: Int8Step.admits); else widened to int16, exact for any int8 weight
    # two vpmaddubsw added in int16, one vpmaddwd: 3 multiply-port instructions per 4L x 8 MACs
    # where vpmaddubsw-512/256 take 4, on weights whose quads fit (int8_quads_fit)
    "vpmaddubsw8-512": Int8Step("tvmopt_pmaddubsw_16x8", 16, 8, "uint8", "int8", "int8", 8,
                                "llvm.x86.avx512.pmaddubs.w.512", False,
                                "llvm.x86.avx512.pmaddw.d.512", 2),
    "vpmaddubsw8-256": Int8Step("tvmopt_pmaddubsw_8x8", 8, 8, "uint8", "int8", "int8", 8,
                                "llvm.x86.avx2.pmadd.ub.sw", False, "llvm.x86.avx2.pmadd.wd", 2),
    "vpmaddubsw-512": Int8Step("tvmopt_pmaddubsw_16x4", 16, 4, "uint8", "int8", "int8", 8,
                               "llvm.x86.avx512.pmaddubs.w.512", False,
                               "llvm.x86.avx512.pmaddw.d.512"),
    "vpmaddubsw-256": Int8Step("tvmopt_pmaddubsw_8x4", 8, 4, "uint8", "int8", "int8", 8,
                               "llvm.x86.avx2.pmadd.ub.sw", False, "llvm.x86.avx2.pmadd.wd"),
    "vpmaddwd-512": Int8Step("tvmopt_pmaddwd_16x2", 16, 2, "int16", "int16", "int16", 16,
                             "llvm.x86.avx512.pmaddw.d.512", False),
    "vpmaddwd-256": Int8Step("tvmopt_pmaddwd_8x2", 8, 2, "int16", "int16", "int16", 16,
                             "llvm.x86.avx2.pmadd.wd", False),
    # aarch64's dot product multiplies int8 by int8: activations are read shifted to int8
    "sdot-128": Int8Step("tvmopt_sdot_4x4", 4, 4, "int8", "int8", "int8", 8,
                         "llvm.aarch64.neon.sdot", True),
}  # fmt: skip


@dataclass(frozen=True)
class ISA:
    """An instruction set, as kernels are sized for it."""

    name: str
    vector_bits: int
    vector_registers: int
    accumulators: int  # vectors a register tile may hold: the rest carry operands
    int8_step: str | None  # its int8 dot product (INT8_STEPS); None: vectorized loops
    # faster steps exact only on weights they admit (vpmaddubsw on 7-bit weights, its depth-8
    # form on weights whose quads fit), tried first, in order
    int8_narrow_steps: tuple[str, ...] = ()

    @property
    def vector_bytes(self) -> int:
        return self.vector_bits // 8


# the first row whose features the target has; each row's accumulators leave registers for one
# weight vector per panel and the broadcast operand (AVX-512: 15 of 32, the 1 KiB tile bound;
# AVX2: 12 of 16, as MLAS's 6x16 SGEMM kernel)
ISAS = (
    (("avx512f", "avx512bw", "avx512vnni"), ISA("avx512-vnni", 512, 32, 15, "vpdpbusd-512")),
    (
        ("avx512f", "avx512bw"),
        ISA("avx512", 512, 32, 15, "vpmaddwd-512", ("vpmaddubsw8-512", "vpmaddubsw-512")),
    ),
    (("avx2", "fma", "avxvnni"), ISA("avx2-vnni", 256, 16, 12, "vpdpbusd-256")),
    (
        ("avx2", "fma"),
        ISA("avx2", 256, 16, 12, "vpmaddwd-256", ("vpmaddubsw8-256", "vpmaddubsw-256")),
    ),
    (("sse4.2",), ISA("sse4", 128, 16, 12, None)),
    (("neon", "dotprod"), ISA("neon-dotprod", 128, 32, 24, "sdot-128")),
    (("neon",), ISA("neon", 128, 32, 24, None)),
    ((), ISA("generic", 128, 16, 12, None)),
)
# independent accumulators a register tile needs for its FMAs not to wait on each other: an FMA's
# latency (4 cycles) times the FMAs issued per cycle (2) on x86 cores since Skylake and Zen 2 and
# on Neoverse; a tile of fewer leaves the FMA units idle (padded_positions.flat_positions)
FMA_CHAINS = 8
# the level-2 cache per core, where it is known: below it a weight stays put while positions
# stream past (panel_gemm.py); 1 MiB on Zen 4, 2 MiB on Sapphire Rapids, 512 KiB on Zen 3
DEFAULT_L2_BYTES = 1 << 20
L2_BYTES = {
    "znver2": 512 << 10, "znver3": 512 << 10, "haswell": 256 << 10, "skylake": 256 << 10,
    "icelake-server": 1280 << 10, "sapphirerapids": 2 << 20,
}  # fmt: skip


@dataclass(frozen=True)
class CPU:
    """The target CPU: its ISA row, LLVM's features, its L2 cache."""

    isa: ISA
    features: frozenset[str]
    l2_bytes: int
    arch: str = "x86_64"
    mcpu: str = "generic"

    def lanes(self, bits: int = 32) -> int:
        """Elements of `bits` per vector (16 float32 on AVX-512, 8 on AVX2, 4 on NEON)."""
        return max(self.isa.vector_bits // bits, 1)

    @property
    def accumulators(self) -> int:
        """Vectors of 32-bit accumulators a register tile may hold."""
        return min(self.isa.accumulators, TILE_BYTES // self.isa.vector_bytes - 1)

    @property
    def int8_step(self) -> Int8Step | None:
        return INT8_STEPS.get(self.isa.int8_step)

    @property
    def int8_steps(self) -> tuple[Int8Step, ...]:
        """The int8 steps its GEMMs may run on: the narrow ones first, where the ISA has them."""
        names = (*self.isa.int8_narrow_steps, self.isa.int8_step)
        return tuple(INT8_STEPS[name] for name in names if name)

    @property
    def narrow_weights(self) -> bool:
        """Whether its fast int8 steps want 7-bit weights (Int8Step.admits)."""
        return bool(self.isa.int8_narrow_steps)

    @property
    def quad_weights(self) -> bool:
        """Whether its fastest int8 step wants weights whose quads fit (int8_quads_fit)."""
        return any(INT8_STEPS[name].parts > 1 for name in self.isa.int8_narrow_steps)

    def int8_block(self, quantized=None) -> tuple[int, int, str, int]:
        """(L, D, weight dtype, parts) of the int8 GEMM's packed weight blocks for the int8
        weight `quantized` (any weight when None): the first step that is exact on it, or L x 4
        int8 for the vectorized loops."""
        steps = [s for s in self.int8_steps if quantized is not None and s.admits(quantized)]
        step = steps[0] if steps else self.int8_step
        if step is None:
            return self.lanes(32), 4, "int8", 1
        return step.lanes, step.depth, step.weight, step.parts

    def has(self, *features: str) -> bool:
        return all(feature in self.features for feature in features)

    def record(self) -> dict:
        """What a library records of it: the features its code needs (cpu_features.py)."""
        return {"arch": self.arch, "mcpu": self.mcpu, "isa": self.isa.name,
                "features": required(self.arch, self.features)}  # fmt: skip


def cpu_of(target) -> CPU:
    """The CPU a (complete) llvm target compiles for."""
    return _cpu(str(target))


@cache
def _cpu(target_text: str) -> CPU:
    target = tvm.target.Target(target_text)
    features = frozenset(str(f) for f in tvm.target.codegen.llvm_get_cpu_features(target))
    isa = next(isa for needed, isa in ISAS if all(f in features for f in needed))
    mcpu = str(target.attrs.get("mcpu", "generic"))
    arch = str(target.attrs.get("mtriple", "x86_64")).split("-")[0]
    return CPU(isa, features, L2_BYTES.get(mcpu, DEFAULT_L2_BYTES), arch, mcpu)
