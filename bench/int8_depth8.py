"""The int8 GEMM kernel on the depth-4 and the depth-8 vpmaddubsw steps (cpu.py), one layer at a
time, on ResNet-50's conv shapes and BERT-base's matmuls: the same 7-bit weights packed for each
step (their quads fitted: int8_quads.py, so that both steps are exact on them), the kernels
timed in alternating rounds on the AVX2 build (or `--target`), GOP/s of each at its fastest
round (the minimum filters a loaded host's other processes out).

    TVM_NUM_THREADS=1 python bench/int8_depth8.py [--target x86-64-v3] [--rounds 40]
"""

import argparse
import time

import numpy as np
from tvm import te

from tvmopt._tvm import tvm
from tvmopt.backends import resolve_target
from tvmopt.backends.llvm.int8_quads import fit_quads
from tvmopt.backends.llvm.kernel_int8_gemm import int8_conv2d, pack_weight
from tvmopt.backends.llvm.rule_int8_gemm import Int8Gemm
from tvmopt.passes.conv_geometry import ConvGeometry
from tvmopt.passes.quantize.convert import quantize_weight

# (name, channels in, channels out, kernel, map height, map width): a matmul is a 1 x M map
SHAPES = [
    ("conv 64->64 3x3 @56", 64, 64, 3, 56, 56), ("conv 128->128 3x3 @28", 128, 128, 3, 28, 28),
    ("conv 256->256 3x3 @14", 256, 256, 3, 14, 14), ("conv 512->512 3x3 @7", 512, 512, 3, 7, 7),
    ("conv 256->64 1x1 @56", 256, 64, 1, 56, 56), ("conv 1024->256 1x1 @14", 1024, 256, 1, 14, 14),
    ("conv 64->256 1x1 @56", 64, 256, 1, 56, 56), ("matmul 128x768x3072", 768, 3072, 1, 1, 128),
    ("matmul 128x3072x768", 3072, 768, 1, 1, 128), ("matmul 128x768x768", 768, 768, 1, 1, 128),
]  # fmt: skip


def layer(shape, target, depth_8: bool):
    """(compiled kernel, its arguments) of one int8 layer, its weight on the chosen step."""
    _, cin, cout, kernel, height, width = shape
    rng = np.random.default_rng(0)
    weight = rng.standard_normal((cout, cin, kernel, kernel)).astype(np.float32)
    quantized, scale = fit_quads(weight, *quantize_weight(weight, 63))
    lanes = 16 if "avx512" in str(target) or "v4" in str(target) else 8
    packed = pack_weight(quantized, lanes, 8, parts=2) if depth_8 else pack_weight(quantized, lanes)
    pad = kernel // 2
    geometry = ConvGeometry((kernel, kernel), (1, 1), (pad, pad), (1, 1), (height, width))
    x = rng.integers(0, 256, (1, height, width, cin), dtype=np.uint8)
    arrays = [x, packed, np.zeros(cout, np.int32), np.ones(cout, np.float32)]
    placeholders = [te.placeholder(a.shape, str(a.dtype)) for a in arrays]
    y = int8_conv2d(*placeholders, geometry=geometry, channels=cout, inv_scale=1.0, zero_point=0)
    scheduled = Int8Gemm().apply(te.create_prim_func([*placeholders, y]), target, False)
    lib = tvm.compile(scheduled.mod, target=target)
    tensors = [tvm.runtime.tensor(a) for a in arrays]
    tensors.append(tvm.runtime.tensor(np.zeros((1, height, width, cout), np.float32)))
    return lib, tensors


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="x86-64-v3", help="an mcpu: x86-64-v3 (AVX2)")
    parser.add_argument("--rounds", type=int, default=40)
    args = parser.parse_args()
    target = resolve_target({"kind": "llvm", "mcpu": args.target})
    print("| layer | depth 4 GOP/s | depth 8 GOP/s | depth 8 / depth 4 time |")
    print("|---|--:|--:|--:|")
    for shape in SHAPES:
        kernels = {depth: layer(shape, target, depth == 8) for depth in (4, 8)}
        outputs = []
        for lib, tensors in kernels.values():
            lib(*tensors)
            outputs.append(tensors[-1].numpy())
        np.testing.assert_array_equal(outputs[0], outputs[1])  # both exact: the same sums
        seconds = {depth: [] for depth in kernels}
        for _ in range(args.rounds):
            for depth, (lib, tensors) in kernels.items():
                start = time.perf_counter()
                lib(*tensors)
                seconds[depth].append(time.perf_counter() - start)
        seconds = {depth: min(values) for depth, values in seconds.items()}
        _, cin, cout, kernel, height, width = shape
        ops = 2 * cin * cout * kernel * kernel * height * width
        rates = {depth: ops / s / 1e9 for depth, s in seconds.items()}
        print(f"| {shape[0]} | {rates[4]:.0f} | {rates[8]:.0f} | {seconds[8] / seconds[4]:.2f} |")


if __name__ == "__main__":
    main()
