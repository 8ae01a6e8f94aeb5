"""A user's target (a name, JSON text, a dict or a tvm Target) made into a Backend. This is the
one place a target is parsed: the CLI and the Python API both come through here."""

from __future__ import annotations

import json

from .._tvm import tvm
from ..errors import TargetError
from .base import Backend, BuildOptions
from .registry import ARCH_DEFAULT, BACKENDS, DEFAULT


def resolve(target=None, options: BuildOptions | None = None) -> Backend:
    """The Backend for `target` (None: the host CPU), with build `options`. Raise TargetError
    naming what was wrong; a Backend passes through (its options are its own)."""
    if isinstance(target, Backend):
        return target
    resolved = resolve_target(target)
    return backend_class(resolved)(resolved, options)


def resolve_target(target=None) -> tvm.target.Target:
    """`target` as a complete TVM target."""
    if target is None:
        return BACKENDS[DEFAULT].named_target(DEFAULT)
    if isinstance(target, Backend):
        return target.target
    if isinstance(target, tvm.target.Target):
        return backend_class(target).complete(target)
    if isinstance(target, str):
        spec = parse(target)
        return _named(spec) if isinstance(spec, str) else resolve_target(spec)
    if isinstance(target, dict):
        return _of_kind(target).target_from_spec(target)
    raise TargetError(
        f"expected a target name, JSON string, dict or tvm Target, got {type(target).__name__}"
    )


def parse(text: str) -> str | dict:
    """A target as typed: a name, or JSON text (parsed into its dict)."""
    text = text.strip()
    if not text.startswith("{"):
        return text
    try:
        return json.loads(text)  # an object: the text starts with "{"
    except json.JSONDecodeError as err:
        raise TargetError(f"target {text!r} is not valid JSON: {err}") from None


def target_argument(text: str | None, arch: str | None = None) -> str | dict | None:
    """--target TEXT [--arch SM] as one target for `resolve`, parsed once."""
    spec = None if text is None else parse(text)
    if arch is None:
        return spec
    if not isinstance(spec, dict):
        spec = {"kind": ARCH_DEFAULT if spec is None else _aliased(spec).name}
    return _of_kind(spec).with_arch(spec, arch)


def backend_class(target: tvm.target.Target) -> type[Backend]:
    """The backend a TVM target belongs to."""
    return _backend_of(str(target.kind.name), [str(key) for key in target.keys])


def recorded_backend(metadata) -> type[Backend]:
    """The backend an artifact's metadata records."""
    if metadata.backend not in BACKENDS:
        raise TargetError(f"unknown backend '{metadata.backend}'; this tvmopt has: {_kinds()}")
    return BACKENDS[metadata.backend]


def _backend_of(kind: str, keys: list[str]) -> type[Backend]:
    """The first of a target's keys that names a backend (vta's targets are llvm ones with "vta"
    first among their keys), else its kind's."""
    name = next((key for key in keys if key in BACKENDS), kind)
    if name not in BACKENDS:
        raise TargetError(f"unknown target kind '{name}'; supported kinds: {_kinds()}")
    return BACKENDS[name]


def target_record(target) -> dict:
    """A target (or a Backend's) as plain JSON data, for metadata records and messages."""
    return json.loads(str(resolve_target(target) if isinstance(target, Backend) else target))


def _named(name: str) -> tvm.target.Target:
    return _aliased(name).named_target(name)


def _aliased(name: str) -> type[Backend]:
    for cls in BACKENDS.values():
        if name in cls.aliases:
            return cls
    known = ", ".join(alias for cls in BACKENDS.values() for alias in cls.aliases)
    examples = " or ".join(cls.example for cls in BACKENDS.values() if cls.example)
    raise TargetError(f"unknown target '{name}'; known targets: {known}, or a JSON dict like "
                      f"{examples}")  # fmt: skip


def _of_kind(spec: dict) -> type[Backend]:
    kind = spec.get("kind")
    if kind not in BACKENDS:
        raise TargetError(
            f"unknown target kind {kind!r} in {json.dumps(spec)}; supported kinds: {_kinds()}"
        )
    return BACKENDS[kind]


def _kinds() -> str:
    return ", ".join(BACKENDS)
