"""Names that reach generated code are identifiers. TVM's importer names `main`'s parameters after
the ONNX inputs, and those names become kernel parameters: a CUDA kernel declared a parameter
`gpu_0/data_0_ptr` for the model zoo's ResNet-50 and nvcc failed on it. ONNX allows any string
('/', ':', '.', a leading digit, unicode); the artifact's metadata keeps the ONNX names, and
inputs are passed by position, so only the IR's names change."""

from __future__ import annotations

import re

from tvm import relax

NOT_IDENTIFIER = re.compile(r"[^A-Za-z0-9_]")


def identifier(name: str) -> str:
    """`name` with every character C does not allow in an identifier as '_', never empty, never
    starting with a digit."""
    text = NOT_IDENTIFIER.sub("_", name)
    return text if text and not text[0].isdigit() else f"v_{text}"


def unique_identifiers(names: list[str]) -> list[str]:
    """identifier() of each name, suffixed where two would collide ('a/b' and 'a:b')."""
    taken: set[str] = set()
    result = []
    for name in names:
        base = candidate = identifier(name)
        count = 1
        while candidate in taken:
            candidate, count = f"{base}_{count}", count + 1
        taken.add(candidate)
        result.append(candidate)
    return result


def with_identifier_params(func: relax.Function) -> relax.Function:
    """`func` with its parameters renamed to unique identifiers (the same ones if they are)."""
    names = [param.name for param in func.params]
    safe = unique_identifiers(names)
    if safe == names:
        return func
    renamed = [relax.Var(new, param.ty) for new, param in zip(safe, func.params, strict=True)]
    body = func.bind_params(dict(zip(func.params, renamed, strict=True))).body
    return relax.Function(renamed, body, func.ret_ty, func.is_pure, func.attrs, func.span)
