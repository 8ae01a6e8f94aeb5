"""tvmopt prune MODEL.onnx -o OUT.onnx [--sparsity S] [--block RxC | --nm N:M]
[--scope layer|global] [--norm l2|l1] [--include GLOB...] [--exclude GLOB...]
[--inputs FILE.npz] [--measure]
tvmopt prune MODEL.onnx -o OUT.onnx [--ffn F] [--heads F] [--channels F]
[--norm l2|l1|activation|obs] [--samples DIR|FILE.npz] [--reconstruct]
(structured: tensors shrink; docs/pruning-structured.md)"""

from __future__ import annotations

import argparse

from ..errors import OptionError
from ..pruning.spec import NM, Block, parse_block, parse_nm
from .arguments import float_where, layer_list


def sparsity(text: str) -> float:
    return float_where(text, lambda value: 0 <= value < 1, "a sparsity in [0, 1) such as 0.5")


def _argument(parse, text: str):
    """`parse(text)`, its OptionError made argparse's one-line error."""
    try:
        return parse(text)
    except OptionError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def block(text: str) -> Block:
    return _argument(parse_block, text)


def nm(text: str) -> NM:
    return _argument(parse_nm, text)


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "prune", help="zero the smallest MatMul/Gemm/Conv weights; report the output error"
    )
    parser.add_argument("model", help="the ONNX model file")
    parser.add_argument("-o", "--output", required=True, help="the pruned ONNX model to write")
    parser.add_argument(
        "--sparsity", type=sparsity, help="the share of zeros, in [0, 1) (default 0.5)"
    )
    pattern = parser.add_mutually_exclusive_group()
    pattern.add_argument(
        "--block", type=block, metavar="RxC",
        help="zero whole blocks of R rows along K (the reduction axis) by C columns along N "
        "(the outputs) of the weight as the op reads it, (K, N): 1x8, 1x4, 16x1, 32x1...",
    )  # fmt: skip
    pattern.add_argument(
        "--nm", type=nm, metavar="N:M",
        help="keep the N largest of every M consecutive weights along K, e.g. 2:4",
    )  # fmt: skip
    parser.add_argument(
        "--scope", choices=["layer", "global"], default="layer",
        help="layer: each weight to the sparsity (default); global: one threshold over all",
    )  # fmt: skip
    parser.add_argument(
        "--norm", choices=["l2", "l1", "activation", "obs"], default="l2",
        help="how blocks, neurons and heads are scored: the l2 or l1 norm of their weights "
        "(default l2), or (structured --ffn/--heads only) their output on --samples; obs: "
        "greedy least-squares removal on --samples, refitting the next projection and its bias",
    )  # fmt: skip
    for kind, verb in (("include", "prune only"), ("exclude", "leave alone")):
        parser.add_argument(
            f"--{kind}", action="append", default=[], metavar="GLOB",
            help=f"{verb} the weights whose name or node's name matches GLOB; repeatable",
        )  # fmt: skip
    parser.add_argument(
        "--inputs", metavar="FILE.npz", help="sample inputs for the output error (default: random)"
    )
    parser.add_argument(
        "--measure", action="store_true",
        help="also compile both models with tvmopt for this host and time them side by side",
    )  # fmt: skip
    for kind, what in STRUCTURED.items():
        parser.add_argument(
            f"--{kind}", type=fraction, metavar="F",
            help=f"structured: remove this fraction of {what} (smallest --norm first)",
        )  # fmt: skip
    parser.add_argument(
        "--samples", metavar="DIR|FILE.npz",
        help="structured: input sets (the calibration format) that --norm activation|obs and "
        "--reconstruct run the model on; a few hundred sentences for a transformer, unpadded",
    )  # fmt: skip
    parser.add_argument(
        "--drop-layers", type=layer_list, metavar="I,J,...",
        help="structured: remove these whole transformer layers (0-based, as the node names "
        "number them: layer.3, h.3), e.g. every other one for a shallower student",
    )  # fmt: skip
    parser.add_argument(
        "--round-to", type=int, metavar="N",
        help="structured --channels: keep a multiple of N channels per group (the vector width "
        "in floats: 16 for AVX-512, 8 for AVX2), so that no kernel carries a partial vector",
    )  # fmt: skip
    parser.add_argument(
        "--reconstruct", action="store_true",
        help="structured: refit each pruned FFN's and attention's output projection by least "
        "squares on --samples",
    )  # fmt: skip
    parser.set_defaults(handler=run)


STRUCTURED = {"ffn": "FFN neurons", "heads": "attention heads per layer",
              "channels": "conv output channels per dependency group"}  # fmt: skip
MAGNITUDE_ONLY = ("sparsity", "block", "nm", "include", "inputs", "measure")
STRUCTURED_ONLY = ("samples", "reconstruct", "drop_layers", "round_to")


def fraction(text: str) -> float:
    return float_where(text, lambda value: 0 <= value < 1, "a fraction in [0, 1)")


def run(args) -> int:
    if args.drop_layers or any(getattr(args, kind) is not None for kind in STRUCTURED):
        return run_structured(args)
    _refuse(args, STRUCTURED_ONLY, "structured pruning (--ffn/--heads/--channels/--drop-layers)")
    if args.norm in ("activation", "obs"):
        raise OptionError(f"--norm {args.norm} scores structured units (--ffn/--heads); magnitude "
                          "pruning scores weights by l2 or l1")  # fmt: skip
    from ..pruning import prune

    result = prune(
        args.model, args.sparsity, block=args.block, nm=args.nm, scope=args.scope,
        norm=args.norm, include=args.include, exclude=args.exclude, inputs=args.inputs,
        measure=args.measure, output=args.output,
    )  # fmt: skip
    print(result.report.table())
    print(f"wrote {args.output}")
    return 0


def run_structured(args) -> int:
    """--ffn/--heads/--channels: whole neurons, heads and channels removed (no zeros left);
    --drop-layers: whole layers, before the rest."""
    import onnx

    from ..artifact import atomic_output, check_writable
    from ..frontend.onnx import load_model
    from ..pruning.structured import drop_layers, find_layers, prune_structured

    _refuse(args, MAGNITUDE_ONLY, "magnitude pruning, not to --ffn/--heads/--channels/"
            "--drop-layers (structured pruning)")  # fmt: skip
    check_writable(args.output)
    model = load_model(args.model)
    if args.drop_layers:
        layers = list(find_layers(model.graph))
        model = drop_layers(model, args.drop_layers)
        print(f"dropped layers {_numbers(args.drop_layers)} of {_numbers(layers)}")
    fractions = {kind: getattr(args, kind) or 0.0 for kind in STRUCTURED}
    result = prune_structured(model, **fractions, criterion=args.norm, exclude=args.exclude,
                              samples=_samples(args.samples, model), reconstruct=args.reconstruct,
                              round_to=args.round_to or 1)  # fmt: skip
    with atomic_output(args.output) as tmp:
        onnx.save(result.model, tmp)
    if result.rows:
        print(result.describe())
    print(f"wrote {args.output}")
    return 0


def _numbers(indices: list[int]) -> str:
    return ", ".join(map(str, indices))


def _refuse(args, names: tuple, mode: str) -> None:
    """One line naming the given options that belong to the other kind of pruning."""
    given = [f"--{name}" for name in names if getattr(args, name) not in (None, [], False)]
    if given:
        raise OptionError(f"{', '.join(given)} apply to {mode}")


def _samples(path, model) -> list | None:
    """--samples as input dicts, each checked against the model's inputs (one line if not)."""
    if path is None:
        return None
    from ..frontend.signature import graph_inputs
    from ..passes.quantize.data import check_source, sample_dicts

    check_source(path)
    return sample_dicts(path, graph_inputs(model.graph))
