"""Check run-time inputs against a compiled model's signature before they reach the VM."""

from __future__ import annotations

import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from .dims import check_sizes
from .errors import InputError
from .frontend.signature import TensorSpec


def check_inputs(specs: Sequence[TensorSpec], inputs, dims: Mapping | None = None) -> list:
    """Return the inputs as arrays in signature order; raise InputError on any mismatch.
    `dims` maps symbolic dim names to the DimRange each may take (dims.py)."""
    if not isinstance(inputs, Mapping):
        inputs = _by_position(specs, inputs)
    if len(inputs) != len(specs) or any(spec.name not in inputs for spec in specs):
        _raise_unknown_or_missing(specs, inputs)  # the names, checked apart: 1 us of a 7 us run
    bound = {}  # symbolic dim -> (its size, the input that set it): every input must agree
    return [_check_one(spec, inputs[spec.name], dims or {}, bound) for spec in specs]


def check_tensors(specs: Sequence[TensorSpec], tensors: Sequence, dims: Mapping) -> None:
    """What check_inputs checks, for tvm tensors in signature order (CompiledModel.run_tensors):
    their count, dtypes and sizes, without reading them into numpy."""
    if len(tensors) != len(specs):
        raise InputError(f"expected {len(specs)} inputs, got {len(tensors)}")
    bound = {}
    for spec, tensor in zip(specs, tensors, strict=True):
        if str(tensor.dtype) != spec.dtype:
            raise InputError(
                f"input '{spec.name}' must have dtype {spec.dtype}, got {tensor.dtype}"
            )
        check_sizes(spec, tuple(tensor.shape), dims, bound)


def _raise_unknown_or_missing(specs: Sequence[TensorSpec], inputs: Mapping) -> None:
    names = {spec.name for spec in specs}
    unknown = [name for name in inputs if name not in names]
    if unknown:
        raise InputError(f"unknown input '{unknown[0]}'; the model's inputs are: {_list(specs)}")
    missing = [spec.name for spec in specs if spec.name not in inputs]
    raise InputError(f"missing input '{missing[0]}'; the model's inputs are: {_list(specs)}")


def _list(specs: Sequence[TensorSpec]) -> str:
    return ", ".join(spec.describe() for spec in specs)


def _by_position(specs: Sequence[TensorSpec], inputs) -> dict:
    values = [inputs] if isinstance(inputs, np.ndarray) else list(inputs)
    if len(values) != len(specs):
        raise InputError(f"expected {len(specs)} inputs, got {len(values)}")
    return {spec.name: value for spec, value in zip(specs, values, strict=True)}


def _check_one(spec: TensorSpec, value, dims: Mapping, bound: dict) -> np.ndarray:
    array = np.asarray(value)
    # dtype.name takes 3 us, a tenth of a small model's run: read only where the fast test fails
    # (a dtype numpy cannot parse from its name, such as ml_dtypes' extension types)
    if array.dtype != spec.dtype and array.dtype.name != spec.dtype:
        raise InputError(
            f"input '{spec.name}' must have dtype {spec.dtype}, got {array.dtype.name}"
        )
    if not spec.is_static:
        check_sizes(spec, array.shape, dims, bound)
    elif tuple(array.shape) != tuple(spec.shape):
        raise InputError(
            f"input '{spec.name}' must have shape {tuple(spec.shape)}, got {tuple(array.shape)}"
        )
    if array.flags.c_contiguous:
        return array
    return np.require(array, requirements="C")  # ascontiguousarray would make 0-d arrays 1-d


def random_inputs(specs: Sequence[TensorSpec], seed: int = 0, sizes: Mapping | None = None):
    """Inputs of the right shapes and dtypes: normal floats, small non-negative ints, bools.
    `sizes` gives each symbolic dim its size; one without is an InputError naming it."""
    rng = np.random.default_rng(seed)
    return {spec.name: _random_array(rng, spec, sizes or {}) for spec in specs}


def _random_array(rng: np.random.Generator, spec: TensorSpec, sizes: Mapping) -> np.ndarray:
    shape = tuple(_size(spec, dim, sizes) for dim in spec.shape)
    dtype = np.dtype(spec.dtype)
    if dtype.kind == "f":
        return rng.standard_normal(shape).astype(dtype)
    if dtype.kind == "b":
        return rng.integers(0, 2, shape).astype(dtype)
    return rng.integers(0, 4, shape).astype(dtype)


def _size(spec: TensorSpec, dim, sizes: Mapping) -> int:
    if isinstance(dim, int):
        return dim
    if dim not in sizes:
        raise InputError(f"input {spec.describe()} has the symbolic dim '{dim}': give inputs "
                         "of the sizes to run (--inputs FILE.npz)")  # fmt: skip
    return sizes[dim]


def read_npz(path, what: str = "inputs file") -> dict[str, np.ndarray]:
    """The arrays of an .npz file; an InputError naming `what` and the file when it is missing,
    not a zip of arrays, or holds pickled objects."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{what} not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as data:
            return {name: data[name] for name in data.files}
    except (ValueError, OSError, zipfile.BadZipFile) as err:
        raise InputError(f"{what} {path} is not a .npz of arrays: {err}") from None
