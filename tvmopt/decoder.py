"""Which of a compiled model's inputs and outputs make it a decoder with a KV cache, and the
limits its compiled dims put on a generation.

A decoder takes `input_ids` (batch, seq) and `past_*` tensors (batch, heads, past, head_dim),
and returns `logits` (batch, seq, vocab) and one `present_*` per `past_*` (the past with seq
appended), as tvmopt.benchmark.nets.gpt2 exports them (`past_key_0`, `past_value_0`, ...).
The prompt pass runs with an empty past, so the past dim must be compiled from 0
(`--dim past=0..1023`); its upper limit bounds the cache. A library compiled with
kv_cache="in-place" (kv_cache.py) takes each past_* as a cache of `capacity` rows and one more
input, past_length: its layout records the capacity and where that input goes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .dims import DimRange
from .errors import InputError
from .kv_cache import IDS, POSITION, record_of

LOGITS, PAST, PRESENT = "logits", "past_", "present_"  # IDS: kv_cache.py names the ids input


@dataclass(frozen=True)
class DecoderLayout:
    past: tuple[int, ...]  # the past inputs' positions in the signature (input_ids is the other)
    present: tuple[int, ...]  # the output each past input's next value comes from, in that order
    logits: int
    ids_position: int
    cache_shapes: tuple[tuple, ...]  # (heads, head_dim) per past input
    seq: DimRange
    past_range: DimRange
    vocab: int | None
    ids_dtype: str = "int64"
    cache_dtype: str = "float32"
    capacity: int | None = None  # rows of an in-place cache; None: the concat contract
    position: int | None = None  # the past_length input's position, in place

    def check_request(self, prompt_ids, max_new_tokens: int) -> np.ndarray:
        """The prompt as a (1, P) array, once the generation fits the compiled limits."""
        prompt = _one_prompt(prompt_ids).astype(self.ids_dtype).reshape(1, -1)
        length = prompt.shape[1]
        if length == 0:
            raise InputError("the prompt is empty: give at least one token id")
        if not self.seq.holds(length):
            raise InputError(f"the prompt has {length} tokens; the model was compiled for "
                             f"{self.seq.describe()} tokens a pass (its seq dim)")  # fmt: skip
        if max_new_tokens < 1:
            raise InputError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
        self._check_cache(length, max_new_tokens)
        self._check_vocabulary(prompt)
        return prompt

    def _check_cache(self, length: int, max_new_tokens: int) -> None:
        # the last token is sampled from a step whose past holds every token before it
        largest_past = length + max_new_tokens - 2
        if self.past_range.hi is not None and largest_past > self.past_range.hi:
            raise InputError(f"a prompt of {length} tokens + {max_new_tokens} new tokens needs "
                             f"a past of {largest_past} tokens; the model was compiled for a past "
                             f"of up to {self.past_range.hi} (prompt + new tokens <= "
                             f"{self.past_range.hi + 2})")  # fmt: skip

    def _check_vocabulary(self, prompt: np.ndarray) -> None:
        # an id past the embedding table would be read out of its bounds, not refused
        outside = prompt[(prompt < 0) | (prompt >= (self.vocab or np.iinfo(np.int64).max))]
        if outside.size:
            raise InputError(f"prompt token id {int(outside[0])} is outside the vocabulary "
                             f"0..{self.vocab - 1 if self.vocab else ''}")  # fmt: skip


def _one_prompt(prompt_ids) -> np.ndarray:
    """Token ids of one prompt (batch 1): a list, or a (1, P) array as input_ids are."""
    prompt = np.asarray(prompt_ids)
    if prompt.size and prompt.dtype.kind not in "iu":
        raise InputError(f"prompt token ids must be integers, got {prompt.dtype.name}")
    if prompt.ndim > 2 or (prompt.ndim == 2 and prompt.shape[0] != 1):
        raise InputError(f"generate takes one prompt (batch 1), got ids of shape {prompt.shape}")
    return prompt


def decoder_layout(model) -> DecoderLayout:
    """The layout of `model` (a CompiledModel); an InputError when it is not a decoder."""
    inputs = {spec.name: i for i, spec in enumerate(model.inputs)}
    outputs = {spec.name: i for i, spec in enumerate(model.outputs)}
    in_place = record_of(model.metadata)
    position = inputs.get(POSITION) if in_place else None
    past = [name for name in inputs if name.startswith(PAST) and inputs[name] != position]
    present = [PRESENT + name[len(PAST) :] for name in past]
    others = 1 + (position is not None)
    if IDS not in inputs or LOGITS not in outputs or not past or len(inputs) != len(past) + others:
        _not_a_decoder(model)
    if any(name not in outputs for name in present):
        _not_a_decoder(model)
    ids, past_spec = model.inputs[inputs[IDS]], model.inputs[inputs[past[0]]]
    if len(ids.shape) != 2 or any(len(model.inputs[inputs[n]].shape) != 4 for n in past):
        _not_a_decoder(model)
    return DecoderLayout(
        past=tuple(inputs[name] for name in past),
        present=tuple(outputs[name] for name in present),
        logits=outputs[LOGITS],
        ids_position=inputs[IDS],
        cache_shapes=tuple(_heads_and_width(model.inputs[inputs[name]]) for name in past),
        seq=_range(model, ids.shape[1]),
        past_range=DimRange(0, in_place["capacity"] - 1) if in_place else _past_range(model,
                                                                                      past_spec),
        vocab=_vocabulary(model.outputs[outputs[LOGITS]]),
        ids_dtype=ids.dtype,
        cache_dtype=past_spec.dtype,
        capacity=in_place["capacity"] if in_place else None,
        position=position,
    )


def _not_a_decoder(model) -> None:
    inputs = ", ".join(spec.describe() for spec in model.inputs)
    outputs = ", ".join(spec.describe() for spec in model.outputs)
    raise InputError(f"generate needs a decoder with inputs {IDS} (batch, seq) and {PAST}* "
                     f"(batch, heads, past, head_dim), outputs {LOGITS} and one {PRESENT}* per "
                     f"{PAST}*; the model has inputs {inputs} and outputs {outputs}")  # fmt: skip


def _heads_and_width(spec) -> tuple:
    heads, width = spec.shape[1], spec.shape[3]
    if not (isinstance(heads, int) and isinstance(width, int)):
        raise InputError(f"input {spec.describe()}: a KV cache's heads and head width must be "
                         "static")  # fmt: skip
    return heads, width


def _range(model, dim) -> DimRange:
    if isinstance(dim, int):
        return DimRange(dim, dim)
    return DimRange(*model.metadata.dims.get(dim, [1, None]))


def _past_range(model, spec) -> DimRange:
    allowed = _range(model, spec.shape[2])
    if allowed.lo != 0:
        raise InputError(f"input {spec.describe()}: the prompt pass needs an empty past, but "
                         f"the model was compiled for a past of {allowed.describe()}; compile "
                         f"with --dim {spec.shape[2]}=0..N")  # fmt: skip
    return allowed


def _vocabulary(logits) -> int | None:
    return logits.shape[-1] if isinstance(logits.shape[-1], int) else None
