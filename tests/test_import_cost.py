"""`import tvmopt` stays cheap: every CLI call and every test subprocess pays it. Parsing the int8
steps' TVMScript at import took 5.7 of its 7.9 s; the steps are registered on first use."""

import subprocess
import sys

CHECK = """
import tvmopt, tvmopt.cli
from tvm.s_tir import TensorIntrin
from tvmopt.backends.cuda.intrin_dp4a import DP4A_LOCAL_INTRIN
from tvmopt.backends.llvm.cpu import INT8_STEPS
names = [step.name for step in INT8_STEPS.values()] + [DP4A_LOCAL_INTRIN]
parsed = [name for name in names if TensorIntrin.get(name, allow_missing=True) is not None]
assert not parsed, f"registered at import: {parsed}"
from tvmopt.backends.llvm.intrin_int8 import register_int8_steps
register_int8_steps()
assert TensorIntrin.get(names[0], allow_missing=True) is not None
"""


def test_import_registers_no_tensor_intrinsic_until_one_is_needed():
    result = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
