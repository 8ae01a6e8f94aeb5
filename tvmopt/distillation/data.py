"""Training data for distillation: unlabeled input sets, each a dict {input name: array}.

Two sources: a folder of .npz files (one input set each, the format calibration uses), or a text
file of one sentence per line plus a tokenizer folder (Hugging Face `tokenizer.json`), tokenized
to the model's token inputs. Every sample is checked against the model's inputs up front.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..frontend.signature import TensorSpec
from ..passes.quantize.data import calibration_samples

DEFAULT_MAX_LENGTH = 128


def load_samples(data, specs: Sequence[TensorSpec], tokenizer=None,
                 max_length: int = DEFAULT_MAX_LENGTH) -> list[dict[str, np.ndarray]]:  # fmt: skip
    """Every input set of `data`, checked against `specs`: an InputError names the first that
    does not match (or says that there is none)."""
    if tokenizer is not None:
        return tokenize_file(data, tokenizer, specs, max_length)
    if isinstance(data, (str, Path)) and not Path(data).exists():
        raise InputError(f"distillation data not found: {data}")
    if isinstance(data, (str, Path)) and Path(data).is_file() and Path(data).suffix != ".npz":
        raise InputError(f"distillation data {data} is not a .npz file or a folder of them "
                         "(a text file needs --tokenizer)")  # fmt: skip
    names = [spec.name for spec in specs]
    try:
        return [dict(zip(names, arrays, strict=True)) for arrays in
                calibration_samples(data, specs)]  # fmt: skip
    except InputError as err:
        raise InputError(str(err).replace("calibration", "distillation")) from None


def tokenize_file(path, tokenizer, specs: Sequence[TensorSpec], max_length: int) -> list[dict]:
    """One input set per non-empty line of `path`, at most `max_length` tokens: padded to the
    model's sequence length where it is static; else left at its own length (batches pad)."""
    lines = _read_lines(path)
    encoder = load_tokenizer(tokenizer)
    length = _sequence_length(specs, max_length)
    encoder.enable_truncation(length or max_length)
    if length:
        encoder.enable_padding(length=length)
    else:
        encoder.no_padding()
    return [_token_inputs(specs, e) for e in encoder.encode_batch(lines)]


def load_tokenizer(source):
    from tokenizers import Tokenizer

    if not isinstance(source, (str, Path)):
        return source  # a tokenizers.Tokenizer already
    path = Path(source)
    file = path / "tokenizer.json" if path.is_dir() else path
    if not file.is_file():
        raise InputError(f"tokenizer not found: {file} (give a folder with tokenizer.json)")
    try:
        return Tokenizer.from_file(str(file))
    except Exception as err:  # tokenizers raises its own Exception subclass
        raise InputError(f"tokenizer {file} cannot be read: {err}") from None


def _read_lines(path) -> list[str]:
    if not Path(path).is_file():
        raise InputError(f"distillation text not found: {path}")
    try:
        lines = [line.strip() for line in Path(path).read_text(encoding="utf-8").splitlines()]
    except UnicodeDecodeError as err:
        raise InputError(f"distillation text {path} is not UTF-8: {err.reason}") from None
    lines = [line for line in lines if line]
    if not lines:
        raise InputError(f"distillation text {path} holds no sentences")
    return lines


def _sequence_length(specs: Sequence[TensorSpec], max_length: int) -> int | None:
    for spec in specs:
        if len(spec.shape) != 2 or np.dtype(spec.dtype).kind not in "iu":
            raise InputError(f"text data needs token inputs of shape (batch, sequence) and an "
                             f"integer dtype; the model takes {spec.describe()}")  # fmt: skip
    static = {spec.shape[1] for spec in specs if isinstance(spec.shape[1], int)}
    return min(static) if static else None


def _token_inputs(specs: Sequence[TensorSpec], encoding) -> dict[str, np.ndarray]:
    """Inputs named *mask* get the attention mask, *type*/*segment* the type ids (zeros for one
    sentence), any other the token ids."""
    sample = {}
    for spec in specs:
        name = spec.name.lower()
        if "mask" in name:
            values = encoding.attention_mask
        elif "type" in name or "segment" in name:
            values = encoding.type_ids
        else:
            values = encoding.ids
        sample[spec.name] = np.asarray([values], dtype=spec.dtype)
    return sample


def split_held_out(samples: list, fraction: float) -> tuple[list, list]:
    """The last `fraction` of the samples (at least one) are held out for evaluation."""
    if len(samples) < 2:
        raise InputError(f"distillation needs at least 2 input sets (one held out for "
                         f"evaluation), got {len(samples)}")  # fmt: skip
    count = min(max(1, round(len(samples) * fraction)), len(samples) - 1)
    return samples[:-count], samples[-count:]


def batchable(specs: Sequence[TensorSpec]) -> bool:
    """Input sets stack into one batch when every input's first dim is symbolic."""
    return all(spec.shape and not isinstance(spec.shape[0], int) for spec in specs)


def batches(samples: Sequence[Mapping], stack: bool) -> Iterable[dict[str, np.ndarray]]:
    """`samples` concatenated along the batch dim (`stack`) or one at a time. Token inputs of
    different lengths (a symbolic sequence dim) are right-padded with zeros to the longest:
    token id 0 is BERT's [PAD], and mask 0 keeps the padding out of attention and pooling."""
    if not stack:
        yield from samples
        return
    yield {name: np.concatenate(_padded([s[name] for s in samples])) for name in samples[0]}


def _padded(arrays: list[np.ndarray]) -> list[np.ndarray]:
    shapes = {a.shape[1:] for a in arrays}
    if len(shapes) == 1:
        return arrays
    longest = [max(sizes) for sizes in zip(*shapes, strict=True)]
    return [np.pad(a, [(0, 0)] + [(0, n - d) for n, d in zip(longest, a.shape[1:], strict=True)])
            for a in arrays]  # fmt: skip
