"""`--measure`: teacher and trained student compiled by tvmopt for the host, timed in one
interleaved run, and the compiled student's agreement with the compiled teacher on held-out
inputs, so the report says what the student costs and what it gives."""

from __future__ import annotations

import numpy as np
import onnx

from ..timing import interleaved_medians

ROUNDS = 15


def measure(teacher: onnx.ModelProto, student: onnx.ModelProto, held_out: list[dict]) -> dict:
    from ..api import compile as compile_model

    shapes = {name: value.shape for name, value in held_out[0].items()}
    teacher_c, student_c = (compile_model(m, input_shapes=shapes) for m in (teacher, student))
    same = [s for s in held_out if {k: v.shape for k, v in s.items()} == shapes]
    cosines = [_cosine(_first(student_c.run(s)), _first(teacher_c.run(s))) for s in same]
    runs = {"teacher": lambda: teacher_c.run(held_out[0]),
            "student": lambda: student_c.run(held_out[0])}  # fmt: skip
    medians = interleaved_medians(runs, ROUNDS)
    target = teacher_c.metadata.target
    return {"target": target.get("mcpu") or target.get("kind", "llvm"),
            "teacher_ms": medians["teacher"] * 1e3, "student_ms": medians["student"] * 1e3,
            "compiled_cosine": float(np.mean(cosines))}  # fmt: skip


def _first(outputs) -> np.ndarray:
    return np.asarray(next(iter(outputs.values()))).ravel()


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-30))


def describe(figures: dict) -> str:
    speedup = figures["teacher_ms"] / figures["student_ms"]
    return (f"tvmopt ({figures['target']}): teacher {figures['teacher_ms']:.3f} ms, student "
            f"{figures['student_ms']:.3f} ms (x{speedup:.2f}); compiled student vs compiled "
            f"teacher, held-out cosine {figures['compiled_cosine']:.4f}")  # fmt: skip
