"""Calibration data: an .npz file (one sample), a directory of them, or an iterable of input
dicts, streamed one sample at a time and checked against the model's inputs as it goes."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np

from ...errors import InputError
from ...frontend.signature import TensorSpec
from ...inputs import check_inputs, read_npz


def calibration_samples(data, specs: Sequence[TensorSpec]) -> Iterator[list[np.ndarray]]:
    """Yield each sample's arrays in signature order; raise InputError on the first mismatch
    (naming the sample) or when there is no sample at all."""
    count = 0
    for origin, sample in _raw_samples(data):
        try:
            yield check_inputs(specs, sample)
        except InputError as err:
            raise InputError(f"calibration sample {origin}: {err}") from None
        count += 1
    if count == 0:
        raise InputError(f"calibration data {_describe(data)} holds no samples")


def sample_dicts(data, specs: Sequence[TensorSpec]) -> list[dict[str, np.ndarray]]:
    """Every sample as {input name: array}, checked as calibration_samples checks them."""
    names = [spec.name for spec in specs]
    return [dict(zip(names, arrays, strict=True)) for arrays in calibration_samples(data, specs)]


def check_source(data) -> None:
    """Fail early on a calibration path that does not exist."""
    if isinstance(data, (str, Path)) and not Path(data).exists():
        raise InputError(f"calibration data not found: {data}")


def _raw_samples(data) -> Iterator[tuple[str, Mapping]]:
    if isinstance(data, (str, Path)):
        yield from _samples_at(Path(data))
    elif isinstance(data, Mapping):
        yield "0", data
    elif isinstance(data, Iterable):
        for index, sample in enumerate(data):
            if not isinstance(sample, Mapping):
                raise InputError(f"calibration sample {index} must map input names to arrays, "
                                 f"got {type(sample).__name__}")  # fmt: skip
            yield str(index), sample
    else:
        raise InputError(f"calibration data must be an .npz path, a directory of .npz files or "
                         f"an iterable of input dicts, got {type(data).__name__}")  # fmt: skip


def _samples_at(path: Path) -> Iterator[tuple[str, Mapping]]:
    if path.is_dir():
        for file in sorted(path.glob("*.npz")):
            yield file.name, read_npz(file, "calibration file")
    elif path.is_file():
        yield path.name, read_npz(path, "calibration file")
    else:
        raise InputError(f"calibration data not found: {path}")


def _describe(data) -> str:
    return str(data) if isinstance(data, (str, Path)) else f"({type(data).__name__})"
