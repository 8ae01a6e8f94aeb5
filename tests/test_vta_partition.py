"""Partitioning integer Relax between VTA and the CPU: offloaded conv layers give the same bytes
as the CPU build of the same module, and layers VTA cannot take stay on the CPU with a reason."""

import numpy as np
import pytest
from tvm import relax

from tvmopt._tvm import tvm
from tvmopt.backends import llvm
from tvmopt.backends.vta import runtime
from tvmopt.backends.vta.partition import partition

RNG = np.random.default_rng(2)


def int8_conv_layer(bb, x, cin, cout, k=3, stride=1, shift=10, relu=True, clip=(-127, 127)):
    """conv2d to int32, + bias, round-half-up shift, clip, [ReLU], int8: a VTA-style layer."""
    w = relax.const(RNG.integers(-128, 128, (cout, cin, k, k)).astype(np.int8))
    b = relax.const(RNG.integers(-20000, 20000, (1, cout, 1, 1)).astype(np.int32))
    y = bb.emit(relax.op.nn.conv2d(x, w, strides=stride, padding=k // 2, out_dtype="int32"))
    y = bb.emit(relax.op.add(y, b))
    y = bb.emit(relax.op.add(y, relax.const(1 << (shift - 1), "int32")))
    y = bb.emit(relax.op.right_shift(y, relax.const(shift, "int32")))
    y = bb.emit(relax.op.clip(y, relax.prim_value(clip[0]), relax.prim_value(clip[1])))
    if relu:
        y = bb.emit(relax.op.maximum(y, relax.const(0, "int32")))
    return bb.emit(relax.op.astype(y, "int8"))


def module(input_shape, layers):
    bb = relax.BlockBuilder()
    x = relax.Var("x", relax.TensorType(input_shape, "int8"))
    with bb.function("main", [x]):
        with bb.dataflow():
            y = x
            for options in layers:
                y = int8_conv_layer(bb, y, **options)
            out = bb.emit_output(y)
        bb.emit_func_output(out)
    return bb.get()


def run(mod, x):
    runtime.register()
    executable = tvm.compile(mod, target=llvm.host_target())
    return tvm.relax.VirtualMachine(executable, tvm.cpu())["main"](tvm.runtime.tensor(x)).numpy()


def test_offloaded_layers_match_the_cpu_build_bit_for_bit():
    mod = module((1, 3, 16, 16), [
        dict(cin=3, cout=32),  # like ResNet's first conv: stays on the CPU
        dict(cin=32, cout=48, stride=2, relu=False),
        dict(cin=48, cout=16, k=1, shift=7),
    ])  # fmt: skip
    offloaded, report = partition(mod)
    assert [p.device for p in report.layers] == ["cpu", "vta", "vta"]
    assert "3 input channels fill under half of a 16-lane block" in report.layers[0].reason
    assert "32x16x16 -> 48, 3x3 s2" in str(report)
    x = RNG.integers(-128, 128, (1, 3, 16, 16)).astype(np.int8)
    runtime.last_runs.clear()
    np.testing.assert_array_equal(run(offloaded, x), run(mod, x))
    assert [layer for layer, _ in runtime.last_runs] == [1, 2]
    assert all(counters.gemm_counter > 0 for _, counters in runtime.last_runs)


@pytest.mark.parametrize(
    "layer, reason",
    [
        (dict(cin=16, cout=16, clip=(-128, 127)), "clips to (-128, 127), not (-127, 127)"),
        (dict(cin=16, cout=16, k=1, stride=1, shift=1), None),  # shift 1: offloaded
    ],
)
def test_what_vta_cannot_compute_stays_on_the_cpu(layer, reason):
    mod = module((1, 16, 8, 8), [layer])
    offloaded, report = partition(mod)
    assert report.layers[0].device == ("cpu" if reason else "vta")
    assert reason is None or reason in report.layers[0].reason
    x = RNG.integers(-128, 128, (1, 16, 8, 8)).astype(np.int8)
    np.testing.assert_array_equal(run(offloaded, x), run(mod, x))


def test_an_exported_library_runs_its_offloaded_layers(tmp_path):
    mod = module((1, 16, 8, 8), [dict(cin=16, cout=32)])
    offloaded, _ = partition(mod)
    path = tmp_path / "vta.so"
    tvm.compile(offloaded, target=llvm.host_target()).export_library(str(path))
    runtime.register()
    loaded = tvm.relax.VirtualMachine(tvm.runtime.load_module(str(path)), tvm.cpu())
    x = RNG.integers(-128, 128, (1, 16, 8, 8)).astype(np.int8)
    np.testing.assert_array_equal(loaded["main"](tvm.runtime.tensor(x)).numpy(), run(mod, x))
