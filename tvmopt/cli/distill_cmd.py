"""tvmopt distill --teacher T.onnx (--student S.onnx | --drop-layers I,J) --data DIR -o OUT.onnx
[--tokenizer DIR]
[--steps N] [--layerwise-steps N] [--batch-size B] [--lr LR] [--loss kl|mse|cosine]
[--temperature T]
[--hidden NAME|S=T ...] [--attention-weight W] [--fake-quant] [--checkpoint-dir DIR] [--resume]
(docs/distillation.md)"""

from __future__ import annotations

from .arguments import float_where, layer_list, positive_int


def positive(text: str) -> float:
    return float_where(text, lambda v: v > 0, "a positive number")


def non_negative(text: str) -> float:
    return float_where(text, lambda v: v >= 0, "a number >= 0")


def non_negative_int(text: str) -> int:
    value = float_where(text, lambda v: v >= 0 and v == int(v), "an integer >= 0")
    return int(value)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "distill", help="train a pruned or shallower student to match its teacher (unlabeled)"
    )
    parser.add_argument("--teacher", required=True, help="the teacher ONNX model")
    student = parser.add_mutually_exclusive_group(required=True)
    student.add_argument("--student", help="the student ONNX model (same I/O)")
    student.add_argument("--drop-layers", type=layer_list, metavar="I,J,...",
                         help="the student is the teacher without these layers (0-based, as "
                         "its node names number them), e.g. every other one")  # fmt: skip
    parser.add_argument("--data", required=True,
                        help="a folder of .npz input sets, or a text file with --tokenizer")
    parser.add_argument("-o", "--output", required=True, help="the trained student to write")
    parser.add_argument("--tokenizer", metavar="DIR", help="a folder with tokenizer.json")
    parser.add_argument("--max-length", type=positive_int, default=128,
                        help="tokens per sentence at most (default 128)")
    _training(parser)
    _losses(parser)
    parser.add_argument("--checkpoint-dir", metavar="DIR",
                        help="where checkpoints go (default: OUTPUT.ckpt)")
    parser.add_argument("--resume", action="store_true",
                        help="go on from the checkpoint of a killed run with the same options")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--measure", action="store_true",
                        help="then compile teacher and student with tvmopt and time them")
    parser.set_defaults(handler=run)  # fmt: skip


def _training(parser) -> None:
    parser.add_argument("--steps", type=positive_int, default=200, help="default 200")
    parser.add_argument("--batch-size", type=positive_int, default=8, help="default 8")
    parser.add_argument("--lr", type=positive, default=1e-4, help="AdamW's peak rate (1e-4)")
    parser.add_argument("--warmup", type=non_negative, default=0.1,
                        help="the share of steps that warm up (default 0.1)")
    parser.add_argument("--clip", type=positive, default=1.0, help="gradient norm (default 1)")
    parser.add_argument("--eval-every", type=positive_int, default=50, help="default 50")
    parser.add_argument("--checkpoint-every", type=positive_int, default=50, help="default 50")
    parser.add_argument("--held-out", type=positive, default=0.1,
                        help="the share of input sets kept for evaluation (default 0.1)")
    parser.add_argument("--seed", type=int, default=0, help="default 0")
    parser.add_argument("--threads", type=positive_int, help="torch threads (default: torch's)")
    parser.add_argument("--fake-quant", action="store_true",
                        help="train with fake int8 (for --quantize int8 afterwards)")
    parser.add_argument("--layerwise-steps", type=non_negative_int, default=0, metavar="N",
                        help="the first N of --steps train each block alone: fed the teacher's "
                        "hidden state where it enters, taught the teacher's where it leaves "
                        "(the hidden states matched by name; default 0)")
    parser.add_argument("--layerwise-lr", type=positive, metavar="LR",
                        help="the layer-wise phase's peak rate (default --lr)")  # fmt: skip


def _losses(parser) -> None:
    parser.add_argument("--loss", choices=["kl", "mse", "cosine"], default="kl",
                        help="on the outputs: kl (logits, default), mse, cosine (embeddings)")
    parser.add_argument("--temperature", type=positive, default=2.0, help="KL's (default 2)")
    parser.add_argument("--output-weight", type=non_negative, default=1.0)
    parser.add_argument("--hidden", action="append", metavar="NAME|S=T",
                        help="a hidden state to match (default: LayerNorm outputs both name "
                        "alike); S=T pairs differently named tensors; repeatable")
    parser.add_argument("--hidden-weight", type=non_negative, default=1.0)
    parser.add_argument("--attention-weight", type=non_negative, default=0.0,
                        help="attention-map loss on Softmax outputs both name alike (default 0)")
    # fmt: skip


def run(args) -> int:
    from ..distillation import distill
    from ..distillation.compatible import parse_map

    result = distill(
        args.teacher, _student(args), args.data, args.output, tokenizer=args.tokenizer,
        max_length=args.max_length, held_out=args.held_out,
        checkpoint_dir=args.checkpoint_dir or f"{args.output}.ckpt", resume=args.resume,
        progress=not args.quiet, measure=args.measure, steps=args.steps,
        batch_size=args.batch_size, lr=args.lr,
        warmup=args.warmup, clip=args.clip, eval_every=args.eval_every,
        checkpoint_every=args.checkpoint_every, seed=args.seed, threads=args.threads,
        fake_quant=args.fake_quant, layerwise_steps=args.layerwise_steps,
        layerwise_lr=args.layerwise_lr, output_loss=args.loss, temperature=args.temperature,
        output_weight=args.output_weight,
        hidden=parse_map(args.hidden) if args.hidden else "auto",
        hidden_weight=args.hidden_weight, attention_weight=args.attention_weight,
    )  # fmt: skip
    print(result.describe())
    print(f"wrote {args.output}")
    return 0


def _student(args):
    """--student as given, or the teacher without --drop-layers (ONNX, in memory)."""
    if args.student is not None:
        return args.student
    from ..frontend.onnx import load_model
    from ..pruning.structured import drop_layers

    return drop_layers(load_model(args.teacher), args.drop_layers)
