"""Turn a user's target (a name, JSON text, a dict or a tvm Target) into a complete TVM target."""

from __future__ import annotations

import json

from .._tvm import tvm
from ..errors import TargetError
from . import cuda, llvm, vta

# Short names users type, each mapped to the function that completes it for this machine.
NAMED_TARGETS = {
    "llvm": llvm.host_target, "cpu": llvm.host_target, "host": llvm.host_target,
    "cuda": cuda.cuda_target,  # the architecture of the GPU present
    "vta": vta.vta_target,  # this CPU, plus the VTA simulator for the int8 convs it can run
}  # fmt: skip
KINDS = ("llvm", "cuda", "vta")


def resolve_target(target=None) -> tvm.target.Target:
    """Resolve `target`; None means the host CPU. Raise TargetError naming what was wrong."""
    if target is None:
        return llvm.host_target()
    if isinstance(target, tvm.target.Target):
        return _complete(target)
    if isinstance(target, str):
        return _from_string(target.strip())
    if isinstance(target, dict):
        return _complete(_build(target))
    raise TargetError(
        f"expected a target name, JSON string, dict or tvm Target, got {type(target).__name__}"
    )


def _from_string(text: str) -> tvm.target.Target:
    if text.startswith("{"):
        try:
            spec = json.loads(text)
        except json.JSONDecodeError as err:
            raise TargetError(f"target {text!r} is not valid JSON: {err}") from None
        return resolve_target(spec)
    if text in NAMED_TARGETS:
        return NAMED_TARGETS[text]()
    known = ", ".join(NAMED_TARGETS)
    raise TargetError(
        f"unknown target '{text}'; known targets: {known}, or a JSON dict like {llvm.EXAMPLE} "
        f"or {cuda.EXAMPLE}"
    )


def _build(spec: dict) -> tvm.target.Target:
    kind = spec.get("kind")
    if kind not in KINDS:
        raise TargetError(
            f"unknown target kind {kind!r} in {json.dumps(spec)}; supported kinds: llvm, cuda, vta"
        )
    if kind == "cuda":
        return cuda.cuda_target(spec=spec)
    if kind == "vta":
        if set(spec) != {"kind"}:
            raise TargetError(f"{json.dumps(spec)}: the vta target takes no options yet")
        return vta.vta_target()
    try:
        return tvm.target.Target(spec)
    except Exception as err:  # noqa: BLE001 - TVM reports bad keys with several error types
        raise TargetError(
            f"invalid target {json.dumps(spec)}: {str(err).strip().splitlines()[-1]}"
        ) from None


def _complete(target: tvm.target.Target) -> tvm.target.Target:
    if target.kind.name == "llvm":
        return llvm.complete(target)
    if target.kind.name == "cuda":
        return target if target.host is not None else cuda.cuda_target(spec=dict(target.export()))
    raise TargetError(f"unknown target kind '{target.kind.name}'; supported kinds: llvm, cuda")


def target_record(target: tvm.target.Target) -> dict:
    """The target as plain JSON data, for metadata records and messages."""
    return json.loads(str(target))
