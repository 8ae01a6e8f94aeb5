"""What makes the CPU kernels' inner loops fast, checked in the code they compile to: register
tiles that are neither heap-allocated per iteration (schedule_util.REGISTER_SCOPE) nor too big
for the registers of each ISA (cpu.py: no vector register spilled to the stack, counted in the
assembly for AVX-512, AVX2, SSE4 and NEON), and requantization that rounds in vectors
(passes/vector_round.py)."""

from __future__ import annotations

import re
from collections import Counter

import numpy as np
import pytest
from onnx import TensorProto, helper
from tvm import te, tirx

import tvmopt
from tvmopt._tvm import tvm
from tvmopt.backends import resolve_target
from tvmopt.backends.llvm.cpu import INT8_STEPS, cpu_of
from tvmopt.backends.llvm.kernel_conv_nhwc import conv2d_nhwc
from tvmopt.backends.llvm.kernel_depthwise_nhwc import depthwise_conv2d_nhwc
from tvmopt.backends.llvm.kernel_int8_gemm import int8_conv2d
from tvmopt.backends.llvm.rule_conv_nhwc import Conv2dNHWC
from tvmopt.backends.llvm.rule_depthwise_nhwc import DepthwiseNHWC
from tvmopt.backends.llvm.rule_int8_gemm import Int8Gemm
from tvmopt.backends.llvm.rule_matmul import Matmul
from tvmopt.backends.llvm.transposed_matmul import nt_matmul
from tvmopt.passes.conv_geometry import ConvGeometry
from tvmopt.passes.vector_round import round_te

from .helpers import assert_matches_ort, make_model

HOST = resolve_target(None)
POINTWISE = ConvGeometry((1, 1), (1, 1), (0, 0), (1, 1), (28, 28))
SAME_3X3 = ConvGeometry((3, 3), (1, 1), (1, 1), (1, 1), (28, 28))
ISAS = {  # each runs its own register file: AVX2's 16 ymm, not the host's 32 zmm
    "avx512": {"kind": "llvm", "mtriple": "x86_64-linux-gnu", "mcpu": "x86-64-v4"},
    "avx2": {"kind": "llvm", "mtriple": "x86_64-linux-gnu", "mcpu": "x86-64-v3"},
    "sse4": {"kind": "llvm", "mtriple": "x86_64-linux-gnu", "mcpu": "x86-64-v2"},
    "neon": {"kind": "llvm", "mtriple": "aarch64-linux-gnu", "mcpu": "neoverse-n1"},
}
# a vector register moved to or from a stack slot: a spill or its reload
SPILLS = {
    "x86_64": re.compile(r"^\s*v?mov\w*\s+(%[xyz]mm\d+,\s*-?\d*\(%r[sb]p\)"
                         r"|-?\d*\(%r[sb]p\),\s*%[xyz]mm)"),
    "aarch64": re.compile(r"^\s*(ldr|str|ldp|stp)\s+q\d+.*\[sp"),
}


def _requantized(y):
    """An int8 layer's epilogue as requantize.py writes it and the CPU pipeline legalizes it:
    scale, round, zero point, clip."""
    scaled = te.compute(y.shape, lambda *i: y(*i) * 3.0, name="scale")
    rounded = round_te(scaled)
    return te.compute(
        y.shape,
        lambda *i: tirx.Cast("uint8", tirx.max(tirx.min(rounded(*i) + 7.0, 255.0), 0.0)),
        name="requantize",
    )


def _int8_pointwise(channels=32):
    x = te.placeholder((1, 28, 28, 32), "uint8")
    w = te.placeholder((channels // 16, 1, 1, 8, 16, 4), "int8")
    correction, scale = te.placeholder((channels,), "int32"), te.placeholder((channels,), "float32")
    y = int8_conv2d(x, w, correction, scale, geometry=POINTWISE, channels=channels,
                    inv_scale=1.0, zero_point=0)  # fmt: skip
    return Int8Gemm(), [x, w, correction, scale, _requantized(y)]


def _float_pointwise():
    x, w = te.placeholder((1, 28, 28, 32), "float32"), te.placeholder((2, 1, 1, 32, 16))
    bias = te.placeholder((32,))
    y = conv2d_nhwc(x, w, bias, geometry=POINTWISE, channels=32)
    return Conv2dNHWC(), [x, w, bias, y]


def _matmul():
    a, b = te.placeholder((64, 96)), te.placeholder((96, 64))
    k = te.reduce_axis((0, 96), name="k")
    y = te.compute((64, 64), lambda i, j: te.sum(a[i, k] * b[k, j], axis=k), name="matmul")
    return Matmul(), [a, b, y]


def _attention_scores():
    """ViT's Q @ K^T: 197 tokens (a prime), rows and columns padded to whole register tiles."""
    q, k = te.placeholder((1, 12, 197, 64)), te.placeholder((1, 12, 197, 64))
    return Matmul(), [q, k, nt_matmul(q, k, [0, 1, 3, 2])]


def _assembly(rule, tensors, target=HOST) -> str:
    func = te.create_prim_func(tensors).with_attr("global_symbol", "main")
    scheduled = rule.apply(func, target, False)
    assert scheduled is not None, f"{type(rule).__name__} did not fire"
    return tvm.compile(scheduled.mod, target=target).mod.inspect_source("asm")


def _float_conv(target, geometry=POINTWISE):
    """A 64 -> 128 channel conv over 28x28, its weight in panels of the target's vector."""
    lanes = cpu_of(target).lanes()
    x = te.placeholder((1, 28, 28, 64))
    w = te.placeholder((128 // lanes, *geometry.kernel, 64, lanes))
    return Conv2dNHWC(), [x, w, conv2d_nhwc(x, w, None, geometry=geometry, channels=128)]


def _depthwise(target):
    lanes = cpu_of(target).lanes()
    x, w = te.placeholder((1, 28, 28, 64)), te.placeholder((3, 3, -(-64 // lanes) * lanes))
    return DepthwiseNHWC(), [x, w, depthwise_conv2d_nhwc(x, w, None, geometry=SAME_3X3,
                                                         channels=64)]  # fmt: skip


# the arithmetic of a kernel's inner loop (SSE4 has no FMA), and the branches that close loops
ARITHMETIC = {"x86_64": re.compile(r"^\s*(\{vex\}\s*)?(vfmadd|mulps|vpdpbusd|vpmaddwd|vpmaddubsw)"),
              "aarch64": re.compile(r"^\s*(fmla|sdot|udot)")}  # fmt: skip
BRANCH = {"x86_64": re.compile(r"^\s*j\w+\s+(\.L\w+)"),
          "aarch64": re.compile(r"^\s*(?:b\.\w+|b|cbnz|cbz)\s+(?:\w+,\s*)?(\.L\w+)")}  # fmt: skip


def _inner_loop_spills(asm: str, arch: str) -> int:
    """Vector spills and reloads in the kernel's innermost loop."""
    return sum(1 for line in _inner_loop(asm, arch) if SPILLS[arch].match(line))


def _inner_loop(asm: str, arch: str) -> list[str]:
    """The kernel's innermost loop: the shortest span from a label to a branch back to it with
    the kernel's arithmetic inside."""
    lines, labels, loops = asm.splitlines(), {}, []
    for index, line in enumerate(lines):
        label = re.match(r"^(\.L\w+):", line)
        if label:
            labels[label.group(1)] = index
        branch = BRANCH[arch].match(line)
        if branch and branch.group(1) in labels:
            loops.append((labels[branch.group(1)], index))
    hot = [(a, b) for a, b in loops if any(ARITHMETIC[arch].match(x) for x in lines[a:b])]
    assert hot, "no loop with the kernel's arithmetic"
    first, last = min(hot, key=lambda loop: loop[1] - loop[0])
    return lines[first:last]


@pytest.mark.parametrize("kernel", [_int8_pointwise, _float_pointwise, _matmul])
def test_register_tiles_are_not_allocated_per_tile(kernel):
    # these kernels have no intermediate buffer: any workspace call would be the register tile's,
    # made at every iteration of the parallel loop
    assert "TVMBackendAllocWorkspace" not in _assembly(*kernel())


@pytest.mark.parametrize("channels", [16, 32])
def test_requantizing_epilogue_is_vectorized(channels):
    # a scalarized epilogue converts each lane on its own: 16 cvtsi2ss per vector
    assembly = _assembly(*_int8_pointwise(channels))
    assert "cvtsi2ss" not in assembly and "cvttss2si" not in assembly


def test_spill_count_sees_spills():
    """The count below can fail: a spill and a reload in the inner loop are seen; moves to
    memory elsewhere, and spills outside the inner loop, are not."""
    asm = ("\tvmovups\t%ymm3, 96(%rsp)\n.LBB0_1:\n.LBB0_2:\n\tvmovups\t%ymm3, 64(%rsp)\n"
           "\tvfmadd231ps\t%ymm1, %ymm2, %ymm3\n\tvmovaps\t32(%rsp), %zmm1\n"
           "\tvmovups\t%ymm3, (%rdi)\n\tjne\t.LBB0_2\n\tjmp\t.LBB0_1\n")  # fmt: skip
    assert _inner_loop_spills(asm, "x86_64") == 2
    asm = ".LBB1_3:\n\tstp\tq0, q1, [sp, #16]\n\tfmla\tv0.4s, v1.4s, v2.4s\n\tb.ne\t.LBB1_3\n"
    assert _inner_loop_spills(asm, "aarch64") == 1


@pytest.mark.parametrize("isa", sorted(ISAS))
@pytest.mark.parametrize("kernel", ["conv1x1", "conv3x3", "matmul", "depthwise", "scores"])
def test_register_tiles_fit_each_isa(isa, kernel):
    """The tiles are sized from the target (cpu.py): on AVX2 the 7x2 AVX-512 tile of 16-lane
    vectors took 28 of 16 ymm registers: this conv spilled 42 times in its inner loop, the
    matmul 20 times. The attention scores spilled 4 accumulators on AVX2 while the row test of
    Q's padding sat in their loop (rule_matmul._pad_to_blocks)."""
    target = resolve_target(ISAS[isa])
    make = {"conv1x1": _float_conv, "conv3x3": lambda t: _float_conv(t, SAME_3X3),
            "matmul": lambda t: _matmul(), "depthwise": _depthwise,
            "scores": lambda t: _attention_scores()}[kernel]  # fmt: skip
    asm = _assembly(*make(target), target=target)
    assert _inner_loop_spills(asm, ISAS[isa]["mtriple"].split("-")[0]) == 0


def _requantize_model():
    """uint8(clip(round(x * 2.5) + 7, 0, 255)), as float: requantize.py's arithmetic. x * 2.5
    lands on many exact halves, which ONNX rounds to even."""
    nodes = [
        helper.make_node("Mul", ["x", "k"], ["m"]),
        helper.make_node("Round", ["m"], ["r"]),
        helper.make_node("Add", ["r", "zero_point"], ["s"]),
        helper.make_node("Clip", ["s", "low", "high"], ["c"]),
        helper.make_node("Cast", ["c"], ["q"], to=TensorProto.UINT8),
        helper.make_node("Cast", ["q"], ["y"], to=TensorProto.FLOAT),
    ]
    constants = {"k": 2.5, "zero_point": 7.0, "low": 0.0, "high": 255.0}
    return make_model(
        nodes,
        [("x", TensorProto.FLOAT, [4, 64])],
        [("y", TensorProto.FLOAT, [4, 64])],
        {name: np.float32(value) for name, value in constants.items()},
    )


def test_round_legalized_for_vectors_still_rounds_halves_to_even():
    x = (np.arange(256, dtype=np.float32).reshape(4, 64) - 128) / 5  # x * 2.5: every n + 0.5
    model = tvmopt.compile(_requantize_model())
    assert_matches_ort(_requantize_model(), model, {"x": x}, tolerance=0)


@pytest.mark.parametrize(
    "triple, mcpu, step, instruction",
    [("x86_64", "icelake-server", "vpdpbusd-512", "vpdpbusd\t%zmm"),
     ("x86_64", "alderlake", "vpdpbusd-256", "vpdpbusd\t%ymm"),
     ("x86_64", "x86-64-v4", "vpmaddwd-512", "vpmaddwd\t%zmm"),
     ("x86_64", "x86-64-v4", "vpmaddubsw-512", "vpmaddubsw\t%zmm"),
     ("x86_64", "x86-64-v3", "vpmaddwd-256", "vpmaddwd\t%ymm"),
     ("x86_64", "x86-64-v3", "vpmaddubsw-256", "vpmaddubsw\t%ymm"),
     ("x86_64", "x86-64-v3", "vpmaddubsw8-256", "vpmaddubsw\t%ymm"),
     ("x86_64", "skylake-avx512", "vpmaddubsw8-512", "vpmaddubsw\t%zmm"),
     ("aarch64", "neoverse-n1", "sdot-128", "sdot\tv")],
)  # fmt: skip
def test_int8_tiles_fit_the_registers_on_each_int8_step(triple, mcpu, step, instruction):
    """The int8 GEMM on each ISA's dot products (cpu.py's INT8_STEPS), no spill in its loop."""
    target = resolve_target({"kind": "llvm", "mtriple": f"{triple}-linux-gnu", "mcpu": mcpu})
    assert INT8_STEPS[step] in cpu_of(target).int8_steps
    asm = _int8_step_assembly(INT8_STEPS[step], target)
    assert instruction in asm and _inner_loop_spills(asm, triple) == 0


def _int8_step_assembly(step, target) -> str:
    """A 256 -> 128 channel pointwise int8 conv over 28x28 on `step`, its weight packed for it
    (kernel_int8_gemm.pack_weight's layout: the depth-8 step's blocks in 2 halves)."""
    lanes, depth, parts = step.lanes, step.depth, step.parts
    block = (parts, lanes, depth // parts) if parts > 1 else (lanes, depth)
    x = te.placeholder((1, 28, 28, 256), step.activation)  # a loop over the reduction
    w = te.placeholder((128 // lanes, 1, 1, 256 // depth, *block), step.weight)
    correction, scale = te.placeholder((128,), "int32"), te.placeholder((128,), "float32")
    y = int8_conv2d(x, w, correction, scale, geometry=POINTWISE, channels=128, inv_scale=1.0,
                    zero_point=0, signed=step.activation == "int8")  # fmt: skip
    return _assembly(Int8Gemm(), [x, w, correction, scale, y], target=target)


def _mnemonics(lines: list[str]) -> Counter:
    return Counter(line.split()[0] for line in lines if re.match(r"^\s+v?p", line))


@pytest.mark.parametrize("mcpu, depth_4, depth_8", [
    ("x86-64-v3", "vpmaddubsw-256", "vpmaddubsw8-256"),
    ("skylake-avx512", "vpmaddubsw-512", "vpmaddubsw8-512"),
])  # fmt: skip
def test_depth_8_step_takes_3_multiplies_per_8_channels_where_depth_4_takes_4(
    mcpu, depth_4, depth_8
):
    """Per accumulator and 8 input channels: 2 vpmaddubsw, 1 vpaddw, 1 vpmaddwd, 1 vpaddd on
    the depth-8 step; 2 vpmaddubsw, 2 vpmaddwd, 2 vpaddd on the depth-4 one: 12 instead of 16
    multiply-port instructions per 256 MACs (of ymm's 8 lanes; zmm's 16 do 512), counted in the
    inner loop, no spill in either."""
    target = resolve_target({"kind": "llvm", "mtriple": "x86_64-linux-gnu", "mcpu": mcpu})
    rates = []
    for name in (depth_4, depth_8):
        step = INT8_STEPS[name]
        loop = _inner_loop(_int8_step_assembly(step, target), "x86_64")
        counts = _mnemonics(loop)
        updates = counts["vpaddd"]  # one per accumulator and step
        assert not any(SPILLS["x86_64"].match(line) for line in loop)
        assert counts["vpmaddwd"] == updates and counts["vpmaddubsw"] == step.parts * updates
        assert counts["vpaddw"] == (updates if step.parts > 1 else 0)
        ymm_macs = updates * 8 * step.depth  # per 8 lanes: a zmm does twice a ymm's MACs
        rates.append((counts["vpmaddubsw"] + counts["vpmaddwd"]) * 256 / ymm_macs)
    assert rates == [16, 12]


def test_register_tile_takes_the_most_accumulators_that_divide_the_map():
    from tvmopt.backends.llvm.panel_gemm import DEFAULT_TILES, register_tile

    assert register_tile(49, 64, DEFAULT_TILES, 12) == (7, 1)  # AVX2, 7x7 map: not 1 x 2
    assert register_tile(49, 32, DEFAULT_TILES, 15) == (7, 2)  # AVX-512
    assert register_tile(3136, 16, DEFAULT_TILES, 12) == (4, 2)  # 8 x 1 also holds 8: more loads
    assert register_tile(81, 4, DEFAULT_TILES, 15) == (9, 1)  # 9 x 1 over 3 x 2


def test_a_7x7_map_fits_avx2_registers():
    target = resolve_target(ISAS["avx2"])
    x, w = te.placeholder((1, 7, 7, 256)), te.placeholder((64, 1, 1, 256, 8))
    geometry = ConvGeometry((1, 1), (1, 1), (0, 0), (1, 1), (7, 7))
    asm = _assembly(Conv2dNHWC(), [x, w, conv2d_nhwc(x, w, None, geometry=geometry,
                                                     channels=512)], target=target)  # fmt: skip
    assert _inner_loop_spills(asm, "x86_64") == 0
