"""The `llm` bench suite (issue 29): one library for every sequence length against a library per
length and ONNX Runtime, on encoders exported with dynamic batch and sequence axes.

Each encoder (nets/bert.py, seeded weights) is compiled three ways: once as the dynamic artifact
the docs recommend (symbolic dims batch 1..8, sequence 1..512, plus static buckets at sequence
16/32/64/128/256/512 in the same library), once per measured length (a static library), and run by
ONNX Runtime. Every output is checked against ONNX Runtime's before anything is timed; then all
the (length, contender) calls run interleaved, one call each per round, in one process: compare
the ratios, not the times (tvmopt.timing).
"""

from __future__ import annotations

import csv
import io
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from ..errors import InputError

LENGTHS = (16, 64, 128, 384)
DIMS = {"batch": (1, 8), "sequence": (1, 512)}
BUCKETS = {"sequence": [16, 32, 64, 128, 256, 512]}  # docs/language-models.md
TOLERANCE = 1e-3  # max abs error against ONNX Runtime on hidden states of unit scale
CONTENDERS = ("dynamic", "static", "onnxruntime")
COLUMNS = ["model", "tokens", "contender", "median_ms", "vs_static", "vs_ort", "max_abs_error",
           "compile_s"]  # fmt: skip


@dataclass(frozen=True)
class Encoder:
    name: str
    description: str
    shape: dict  # BertEncoder's keyword arguments


ENCODERS = {
    e.name: e
    for e in [
        Encoder(
            "minilm",
            "MiniLM-L6-sized encoder: hidden 384, 6 layers, 12 heads, FFN 1536",
            {"hidden": 384, "layers": 6, "heads": 12, "ffn": 1536},
        ),  # fmt: skip
        Encoder(
            "bert_base",
            "BERT-base-sized encoder: hidden 768, 12 layers, 12 heads, FFN 3072",
            {"hidden": 768, "layers": 12, "heads": 12, "ffn": 3072},
        ),  # fmt: skip
        Encoder(
            "tiny_encoder",
            "a 1-layer encoder (hidden 32, 2 heads), for tests",
            {"vocab": 1000, "hidden": 32, "layers": 1, "heads": 2, "ffn": 64},
        ),  # fmt: skip
    ]
}


def check_encoders(names) -> None:
    unknown = [name for name in names if name not in ENCODERS]
    if unknown:
        known = ", ".join(ENCODERS)
        raise InputError(f"unknown llm bench model '{unknown[0]}'; choose from {known}")


def export_dynamic(encoder: Encoder, cache_dir: Path) -> Path:
    """The encoder as ONNX with dynamic batch and sequence axes, cached under `cache_dir`."""
    path = Path(cache_dir) / f"llm_{encoder.name}.onnx"
    if path.exists():
        return path
    import torch

    from .nets.bert import BertEncoder

    torch.manual_seed(0)
    module = BertEncoder(**encoder.shape).eval()
    ids = torch.randint(1, module.tokens.num_embeddings, (1, 16))
    buffer = io.BytesIO()
    with torch.no_grad():
        torch.onnx.export(module, (ids,), buffer, input_names=["input_ids"],
                          output_names=["hidden"], dynamo=False, opset_version=17,
                          dynamic_axes={"input_ids": {0: "batch", 1: "sequence"}})  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buffer.getvalue())
    return path


def token_ids(encoder: Encoder, length: int) -> dict:
    vocab = encoder.shape.get("vocab", 30522)
    return {"input_ids": np.random.default_rng(length).integers(1, vocab, (1, length))}


def bench_encoder(encoder: Encoder, lengths, threads: int, rounds: int, cache_dir: Path,
                  log=print, buckets=BUCKETS) -> list[dict]:  # fmt: skip
    """One row per (length, contender): the median latency, its ratios, the error vs ORT."""
    import onnx

    import tvmopt

    model = onnx.load(str(export_dynamic(encoder, cache_dir)))
    session = _ort_session(model, threads)
    compiled, compile_s = {}, {}
    compiled["dynamic"], compile_s["dynamic"] = _timed(
        tvmopt.compile, model, dims=DIMS, buckets=buckets
    )
    for length in lengths:
        shapes = {"input_ids": (1, length)}
        compiled[length], compile_s[length] = _timed(tvmopt.compile, model, input_shapes=shapes)
    log(f"{encoder.name}: compiled in {sum(compile_s.values()):.0f} s")
    calls, errors = {}, {}
    for length in lengths:
        feeds = token_ids(encoder, length)
        reference = session.run(None, feeds)[0]
        for contender, library in (("dynamic", compiled["dynamic"]), ("static", compiled[length])):
            errors[length, contender] = _checked_error(library, feeds, reference, encoder, length)
            calls[length, contender] = partial(library.run, feeds)
        calls[length, "onnxruntime"] = partial(session.run, None, feeds)
    medians = _interleaved(calls, rounds)
    return [_row(encoder.name, length, contender, medians, errors, compile_s)
            for length in lengths for contender in CONTENDERS]  # fmt: skip


def _timed(function, *args, **kwargs):
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - start


def _ort_session(model, threads: int):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    return ort.InferenceSession(model.SerializeToString(), options,
                                providers=["CPUExecutionProvider"])  # fmt: skip


def _checked_error(library, feeds, reference, encoder, length) -> float:
    """Max abs error against ONNX Runtime; a mismatch stops the bench (no timing of wrong code)."""
    error = float(np.abs(library.run(feeds)["hidden"] - reference).max())
    if not error <= TOLERANCE:
        raise AssertionError(
            f"{encoder.name} at {length} tokens: max abs error {error:.3g} vs ONNX Runtime "
            f"exceeds {TOLERANCE}"
        )
    return error


def _interleaved(calls: dict, rounds: int) -> dict:
    from ..timing import interleaved_medians

    for run in calls.values():  # warm-up: first-call allocations and page faults
        run()
    return interleaved_medians(calls, rounds, calls=1)


def _row(model, length, contender, medians, errors, compile_s) -> dict:
    seconds = medians[length, contender]
    compile_key = "dynamic" if contender == "dynamic" else length
    return {
        "model": model,
        "tokens": length,
        "contender": contender,
        "median_ms": f"{seconds * 1e3:.3f}",
        "vs_static": f"{seconds / medians[length, 'static']:.2f}",
        "vs_ort": f"{seconds / medians[length, 'onnxruntime']:.2f}",
        "max_abs_error": f"{errors[length, contender]:.2e}" if contender != "onnxruntime" else "",
        "compile_s": f"{compile_s[compile_key]:.1f}" if contender != "onnxruntime" else "",
    }


def run_llm_suite(models, lengths, threads: int, rounds: int, out_dir, command,
                  log=print, buckets=BUCKETS) -> Path:  # fmt: skip
    """Bench each encoder; write results.md and results.csv under `out_dir`; the .md's path."""
    import os

    os.environ["TVM_NUM_THREADS"] = str(threads)  # read when TVM's thread pool first starts
    check_encoders(models)
    out = Path(out_dir)
    rows = []
    for name in models:
        rows += bench_encoder(ENCODERS[name], lengths, threads, rounds, out / "cache", log, buckets)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "results.csv", "w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    report = out / "results.md"
    report.write_text(markdown(rows, models, threads, rounds, command))
    return report


def markdown(rows: list[dict], models, threads: int, rounds: int, command: str) -> str:
    from .report import machine

    isa = machine()
    lines = ["# llm suite: one dynamic library vs a static library per length vs ONNX Runtime",
             "", f"    {command}", "",
             f"{isa['cpu']} ({isa['llvm_cpu']}, {isa['isa']} host build); "
             f"{threads} thread(s) for tvmopt and ONNX Runtime; medians of {rounds} interleaved "
             "rounds. vs_static and vs_ort: the latency over the static library's and ONNX "
             "Runtime's at that length (below 1: faster).", ""]  # fmt: skip
    lines += [f"- {name}: {ENCODERS[name].description}" for name in models]
    lines += ["", "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(str(row[c]) for c in COLUMNS) + " |" for row in rows]
    return "\n".join(lines) + "\n"
