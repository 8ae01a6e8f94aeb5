"""Generate tokens with a compiled decoder: one prompt pass, then one step per new token, the
KV cache kept in the VM's own tensors from step to step.

Each step feeds the present keys and values the last step returned as its past, as tvm
tensors: the cache never goes through numpy. A library compiled with kv_cache="in-place"
(kv_cache.py) gets its caches allocated once, at their capacity, and the same buffers every
step with the number of rows filled (past_length): it writes the new rows where they go.
Only the last position's logits are read back, to pick the next token (sampling.py).
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import numpy as np

from .decoder import DecoderLayout, decoder_layout
from .sampling import Sampling
from .vm_results import numpy_viewable


@dataclass(frozen=True)
class Generation:
    """The new tokens, and how long each took: the prompt pass gives the first, each step one
    more (milliseconds, the model's run and the pick of the token)."""

    prompt_ids: tuple[int, ...]
    tokens: tuple[int, ...]
    prompt_ms: float
    step_ms: tuple[float, ...]

    def latency(self) -> str:
        prompt = f"prompt pass ({len(self.prompt_ids)} tokens) {self.prompt_ms:.3f} ms"
        if not self.step_ms:
            return prompt
        mean, median = statistics.fmean(self.step_ms), statistics.median(self.step_ms)
        return (f"{prompt}; per new token mean {mean:.3f} ms, median {median:.3f} ms "
                f"({len(self.step_ms)} steps)")  # fmt: skip


def generate(model, prompt_ids, max_new_tokens: int, *, strategy: str = "greedy", k=None,
             p=None, temperature: float = 1.0, seed=None) -> Generation:  # fmt: skip
    """Continue `prompt_ids` (a sequence of token ids, batch 1) by `max_new_tokens` tokens.

    Parameters
    ----------
    model : CompiledModel
        A decoder (decoder.py), its past dim compiled from 0.
    strategy : {"greedy", "top_k", "top_p"}
        With `k`, `p`, `temperature` and `seed` as sampling.Sampling takes them.

    Returns
    -------
    Generation
    """
    pick = Sampling(strategy, k, p, temperature, seed).picker()  # options before the model
    layout = decoder_layout(model)
    prompt = ids = layout.check_request(prompt_ids, max_new_tokens)
    cache = _empty_cache(model, layout)
    model._main  # noqa: B018 - creates the VM (a second or more) before the clock starts
    tokens, times, filled = [], [], 0
    for _ in range(max_new_tokens):
        start = time.perf_counter()
        logits, cache = _step(model, layout, ids, cache, filled)
        filled += ids.shape[1]
        tokens.append(pick(logits))
        times.append((time.perf_counter() - start) * 1e3)
        ids = np.array([[tokens[-1]]], dtype=layout.ids_dtype)
    return Generation(tuple(prompt[0].tolist()), tuple(tokens), times[0], tuple(times[1:]))


def _empty_cache(model, layout: DecoderLayout) -> list:
    """An empty past per past input; in place, the caches at their capacity (zeros: rows past
    the filled ones are never read, but a cache is not left with whatever memory held)."""
    rows = layout.capacity or 0
    return [model.tensor(np.zeros((1, heads, rows, width), layout.cache_dtype))
            for heads, width in layout.cache_shapes]  # fmt: skip


def _step(model, layout: DecoderLayout, ids: np.ndarray, cache: list, filled: int):
    """One run: the last position's logits (numpy) and the new cache (tvm tensors; in place,
    the same ones, `filled` rows of them before the run)."""
    inputs = [None] * len(model.inputs)
    inputs[layout.ids_position] = model.tensor(ids)
    for position, tensor in zip(layout.past, cache, strict=True):
        inputs[position] = tensor
    if layout.position is not None:
        inputs[layout.position] = model.tensor(np.array([filled], np.int64))
    outputs = model.run_tensors(inputs)
    if layout.position is not None:  # the presents are these caches, written: keep them
        return _last_row(outputs[layout.logits]), cache
    return _last_row(outputs[layout.logits]), [outputs[i] for i in layout.present]


def _last_row(logits) -> np.ndarray:
    """(1, seq, vocab) -> the last position's (vocab,), copied: the tensor's memory is the VM's."""
    if numpy_viewable(logits):
        return np.from_dlpack(logits)[0, -1].copy()
    return logits.numpy()[0, -1]
