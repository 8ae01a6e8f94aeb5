"""Held-out cosine of all-MiniLM-L6-v2 right after structured pruning, no training: one line per
spec CRITERION,SAMPLES,RECONSTRUCT(0|1),FFN,HEADS, e.g. obs,1024,1,0.5,0.333. Same sentences
as bench/distill_minilm.py (stdlib docstrings; the first SAMPLES training sentences, unpadded,
for the data-aware criteria; 300 held out); mean cosine of the sentence embedding to the dense
model's, both run by ONNX Runtime on 1 thread.

    PYTHONPATH=. python bench/minilm_prune_start.py activation,256,1,0.5,0.333 obs,256,1,0.5,0.333
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from distill_minilm import stdlib_sentences, unpadded_feeds  # noqa: E402


def embeddings(model, feeds: list[dict]) -> list[np.ndarray]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(model.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])  # fmt: skip
    return [session.run(None, feed)[0].ravel() for feed in feeds]


def mean_cosine(actual: list, expected: list) -> float:
    return float(np.mean([a @ b / np.linalg.norm(a) / np.linalg.norm(b)
                          for a, b in zip(actual, expected, strict=True)]))  # fmt: skip


def main() -> None:
    from tvmopt.benchmark.nets.minilm_real import export, model_folder
    from tvmopt.pruning.structured import prune_structured

    train, held = stdlib_sentences()
    random.Random(0).shuffle(train)
    random.Random(1).shuffle(held)
    teacher = export(64)
    held_feeds = unpadded_feeds(model_folder(), held[:300], 64)
    reference = embeddings(teacher, held_feeds)
    for spec in sys.argv[1:]:
        criterion, count, reconstruct, ffn, heads = spec.split(",")
        samples = unpadded_feeds(model_folder(), train[: int(count)], 64)
        started = time.perf_counter()
        pruned = prune_structured(teacher, ffn=float(ffn), heads=float(heads),
                                  criterion=criterion, samples=samples,
                                  reconstruct=reconstruct == "1").model  # fmt: skip
        seconds = time.perf_counter() - started
        cosine = mean_cosine(embeddings(pruned, held_feeds), reference)
        print(f"{spec}: cosine {cosine:.4f} (prune {seconds:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
