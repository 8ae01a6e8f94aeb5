"""tvmopt generate MODEL.so --prompt-ids 1,2,3 --max-new-tokens N [--top-k K | --top-p P]
[--temperature T] [--seed S]: continue a prompt with a compiled decoder and time each token."""

from __future__ import annotations

import argparse

from .arguments import float_where, positive_int


def token_ids(text: str) -> list[int]:
    """Comma-separated token ids, such as 1,2,3."""
    try:
        ids = [int(item) for item in text.split(",")]
    except ValueError:
        ids = []
    if not ids or min(ids) < 0:
        raise argparse.ArgumentTypeError(f"expected token ids such as 1,2,3, got {text!r}")
    return ids


def probability(text: str) -> float:
    return float_where(text, lambda p: 0 < p <= 1, "a probability in (0, 1]")


def positive_float(text: str) -> float:
    return float_where(text, lambda value: value > 0, "a number > 0")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "generate", help="generate tokens with a compiled decoder (KV cache) and time them"
    )
    parser.add_argument("library", help="a decoder compiled with its past dim from 0")
    parser.add_argument("--prompt-ids", type=token_ids, required=True, metavar="ID,ID,...")
    parser.add_argument(
        "--max-new-tokens", type=positive_int, default=20, metavar="N", help="(default 20)"
    )
    strategy = parser.add_mutually_exclusive_group()
    strategy.add_argument(
        "--top-k", type=positive_int, metavar="K", help="sample among the K most likely tokens"
    )
    strategy.add_argument(
        "--top-p", type=probability, metavar="P", help="sample among the likeliest of mass P"
    )
    parser.add_argument(
        "--temperature", type=positive_float, default=1.0, help="divides the logits (default 1)"
    )
    parser.add_argument("--seed", type=int, default=0, help="the sampler's seed (default 0)")
    parser.set_defaults(handler=run)


def run(args) -> int:
    from ..api import load

    strategy = "top_k" if args.top_k else "top_p" if args.top_p else "greedy"
    model = load(args.library)
    generation = model.generate(args.prompt_ids, args.max_new_tokens, strategy=strategy,
                                k=args.top_k, p=args.top_p, temperature=args.temperature,
                                seed=args.seed)  # fmt: skip
    print(f"prompt: {' '.join(map(str, generation.prompt_ids))}")
    print(f"tokens: {' '.join(map(str, generation.tokens))}")
    print(f"latency: {generation.latency()}")
    return 0
