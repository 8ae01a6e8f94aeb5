"""Which ONNX nodes each kernel covers, from the Relax calls' spans (passes/spans.py), which
TVM's fusion and legalization drop. A pass placed before each of them records each binding's
nodes and operands by its variable; one after the last fusion gives each kernel the nodes of the
bindings it took in.

Fusion and legalization keep the bindings' variables, except a fused group's last binding,
whose variable fusion replaces, the bindings of groups FuseOps merged with an identical one
(placed by data flow: `_adopt_lost_bindings`), and what legalization adds (which takes the
nodes of its reader)."""

from __future__ import annotations

from tvm import relax

from .._tvm import tvm
from ..passes.spans import node_names
from ..passes.uses import bindings, op_name, operands, relax_functions


class KernelNodes:
    def __init__(self):
        self._nodes: dict = {}  # binding variable -> its ONNX nodes
        self._operands: dict = {}  # binding variable -> the variables its value reads
        self._ops: dict = {}  # binding variable -> the op its value applies
        self._kernels: dict[str, list[str]] = {}  # kernel name -> its ONNX nodes
        self._callees: dict = {}  # main's binding variable -> the function it calls, fused

    def of(self, kernel: str) -> list[str]:
        return list(dict.fromkeys(self._kernels.get(kernel, [])))

    def spans_pass(self) -> tvm.transform.Pass:
        @tvm.transform.module_pass(opt_level=0, name="tvmopt.RecordNodeSpans")
        def spans(mod, _ctx):
            # the first record of a binding stands: later ones see a graph fusion has changed
            for _, func in relax_functions(mod):
                for var, value in bindings(func).items():
                    if value.span is not None and var not in self._nodes:
                        self._nodes[var] = node_names(value.span)
                        self._operands[var] = operands(value)
                        self._ops[var] = op_name(value)
            return mod

        return spans

    def nodes_pass(self) -> tvm.transform.Pass:
        @tvm.transform.module_pass(opt_level=0, name="tvmopt.MapKernelNodes")
        def nodes(mod, _ctx):
            self._name_new_bindings(mod["main"])
            owners, fused = _owners(mod)
            self._adopt_lost_bindings(mod["main"], owners, fused)
            self._kernels = {}
            for var, kernel in owners.items():
                self._kernels.setdefault(kernel, []).extend(self._nodes.get(var, []))
            self._callees = _callees(mod["main"])
            return mod

        return nodes

    def renamed_pass(self) -> tvm.transform.Pass:
        """After FuseTIR, which turns each fused function into one kernel and merges identical
        ones (a transformer's layers share each kernel): the nodes under the final names."""

        @tvm.transform.module_pass(opt_level=0, name="tvmopt.RenameKernelNodes")
        def renamed(mod, _ctx):
            final: dict[str, list[str]] = {}
            for var, callee in _callees(mod["main"]).items():
                before = self._callees.get(var)
                final.setdefault(callee, []).extend(self._kernels.get(before, []))
            self._kernels = {kernel: list(dict.fromkeys(nodes)) for kernel, nodes in final.items()}
            return mod

        return renamed

    def _name_new_bindings(self, main) -> None:
        """A kernel call legalization added (the reshape around a matmul, say) takes the nodes
        of the first binding after it that reads it; a fused group's new output does not (its
        group names it: `_adopt_lost_bindings`)."""
        bound = bindings(main)
        added = {var for var, value in bound.items()
                 if var not in self._nodes and isinstance(value, relax.Call)
                 and getattr(value.op, "name", None) == "relax.call_tir"}  # fmt: skip
        for reader, value in reversed(bound.items()):  # the first reader comes last
            for var in operands(value):
                if var in added and reader in self._nodes:
                    self._nodes[var] = self._nodes[reader]

    def _adopt_lost_bindings(self, main, owners: dict, fused: set) -> None:
        """Place each binding fusion took out of `main` in its fused kernel: by the kept
        binding that reads the group's call in its place (`_place_group_outputs`), then by
        its neighbours (`_place_by_neighbours`)."""
        kept = bindings(main)
        lost = {var for var in self._nodes if var not in owners}
        self._place_group_outputs(kept, owners, fused, lost)
        members = {var for var, kernel in owners.items() if kernel in fused and var not in kept}
        while lost := {var for var in lost if var not in owners}:
            placed = self._place_by_neighbours(lost, owners, fused, members, set(kept))
            if not placed:
                return
            owners.update(placed)

    def _place_group_outputs(self, kept: dict, owners: dict, fused: set, lost: set) -> None:
        """Where FuseOps merged identical groups into one function (a transformer's layers),
        only the first group's bindings are in it; a later group's last binding is found where
        a kept binding read it and now reads the group's call."""
        calls = {var: owners[var] for var in kept if owners.get(var) in fused}
        for reader, value in kept.items():
            for before, after in zip(self._operands.get(reader, []), operands(value), strict=False):
                if before in lost and after in calls:
                    owners[before] = calls[after]

    def _place_by_neighbours(self, lost, owners, fused, members, kept) -> dict:  # noqa: PLR0913
        """A binding joins the kernel whose function holds one of its operands, or else the
        kernel that took one of its readers out of `main`, where that kernel's function has a
        binding of its op (else it is the group before's output, which that reader reads)."""
        readers = _readers(self._operands)
        ops: dict = {}  # fused kernel -> the ops of its function's bindings
        for var in members:
            ops.setdefault(owners[var], set()).add(self._ops.get(var))

        def kernel_of(var):
            inner = [v for v in self._operands.get(var, []) if v in members]
            taken = _fused_owner([v for v in readers.get(var, []) if v not in kept], owners, fused)
            by_reader = taken if self._ops.get(var) in ops.get(taken, ()) else None
            return _fused_owner(inner, owners, fused) or by_reader

        placed = {var: kernel_of(var) for var in lost}
        return {var: kernel for var, kernel in placed.items() if kernel}


def _readers(operands: dict) -> dict:
    found: dict = {}
    for var, read in operands.items():
        for operand in read:
            found.setdefault(operand, []).append(var)
    return found


def _owners(mod) -> tuple[dict, set]:
    """{binding variable: the kernel its value runs in}, and the fused kernels' names."""
    owners, fused = {}, set()
    for var, value in bindings(mod["main"]).items():
        callee = _callee(value)
        if callee is None:
            continue
        owners[var] = callee.name_hint
        func = mod[callee]
        if isinstance(func, relax.Function):
            fused.add(callee.name_hint)
            owners.update(dict.fromkeys(bindings(func), callee.name_hint))
    return owners, fused


def _fused_owner(operands, owners: dict, fused: set) -> str | None:
    return next((owners[v] for v in operands if owners.get(v) in fused), None)


def _callees(main) -> dict:
    """Each of `main`'s bindings that calls a function -> that function's name."""
    calls = {var: _callee(value) for var, value in bindings(main).items()}
    return {var: callee.name_hint for var, callee in calls.items() if callee is not None}


def _callee(value):
    """The function a binding's value calls: a call_tir's kernel, or a fused Relax function."""
    if not isinstance(value, relax.Call):
        return None
    if isinstance(value.op, tvm.ir.GlobalVar):
        return value.op
    first = value.args[0] if value.args else None
    return first if isinstance(first, tvm.ir.GlobalVar) else None
