"""What a library records of its kernels, for `tvmopt run --profile`: each TIR function's
floating-point (or integer) operations, counted before scheduling, the schedule rule that
scheduled it, read after, and the ONNX nodes it covers (kernel_nodes.py). Passes placed along a
backend's lowering fill one dict."""

from __future__ import annotations

from tvm.s_tir.analysis import estimate_tir_flops

from .._tvm import tvm
from .kernel_nodes import KernelNodes

FLOPS_ATTR = "tvmopt.flops"  # a hand-scheduled kernel's own count (sparse_weights.py)
RULE_KEY = "tvmopt.rule"  # the root block's annotation a CPU rule leaves (schedule_util.py)
KERNELS_RECORD = "kernels"  # the metadata record's key


class KernelRecord:
    """{kernel name: {"flops": per call, "rule": the rule's name, "nodes": ONNX node names}},
    filled as the module is lowered: `nodes.spans_pass` before legalization, `nodes.nodes_pass`
    after fusion, `count_pass` before scheduling, `rules_pass` after it."""

    def __init__(self):
        self.kernels: dict[str, dict] = {}
        self.nodes = KernelNodes()

    def count_pass(self) -> tvm.transform.Pass:
        @tvm.transform.module_pass(opt_level=0, name="tvmopt.CountKernelFlops")
        def count(mod, _ctx):
            for gvar, func in _kernels(mod):
                name = gvar.name_hint
                self.kernels[name] = {"flops": _flops(func), "rule": None,
                                      "nodes": self.nodes.of(name)}  # fmt: skip
            return mod

        return count

    def rules_pass(self) -> tvm.transform.Pass:
        @tvm.transform.module_pass(opt_level=0, name="tvmopt.RecordKernelRules")
        def rules(mod, _ctx):
            for gvar, func in _kernels(mod):
                entry = self.kernels.setdefault(gvar.name_hint, {"flops": None, "rule": None})
                entry["rule"] = _rule(func)
            return mod

        return rules

    def record(self) -> dict:
        return {KERNELS_RECORD: self.kernels} if self.kernels else {}


def _kernels(mod):
    return [(gv, f) for gv, f in mod.functions.items() if isinstance(f, tvm.tirx.PrimFunc)]


def _flops(func) -> float | None:
    if func.attrs is not None and FLOPS_ATTR in func.attrs:
        return float(func.attrs[FLOPS_ATTR])
    try:
        return float(estimate_tir_flops(tvm.IRModule({"main": func})))
    except Exception:  # noqa: BLE001 - the estimator gives up on some loop nests: no figure
        return None


def _rule(func) -> str:
    """The CPU rule that scheduled `func`, "tuning record" for a database's schedule, else
    "none" (TVM's code as legalized)."""
    root = getattr(func.body, "block", None)
    annotations = getattr(root, "annotations", None) or {}
    if RULE_KEY in annotations:
        return str(annotations[RULE_KEY])
    attrs = func.attrs or {}
    return "tuning record" if "tirx.is_scheduled" in attrs else "none"
