"""The bench model suite: ResNet-18, ResNet-50, MobileNetV2, a BERT-base-like encoder (seq 128)
and an MLP, written in plain PyTorch with seeded weights and exported to ONNX once, cached under
bench/results/cache/. The definitions live in `tvmopt.benchmark.models`, so `tvmopt bench` can
use them from anywhere. Run this file to export (or list) them:

    python bench/models.py              # export the default suite
    python bench/models.py --list
"""

import argparse
from pathlib import Path

from tvmopt.benchmark.models import DEFAULT_SUITE, SUITE, export

CACHE = Path(__file__).parent / "results" / "cache"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # names checked by hand: Python 3.11's argparse checks an empty "*" against `choices` as
    # one value and refuses it, so `python bench/models.py` with no names failed
    parser.add_argument("models", nargs="*", help=f"from {', '.join(SUITE)}")
    parser.add_argument("--list", action="store_true", help="list the suite and exit")
    args = parser.parse_args()
    unknown = [name for name in args.models if name not in SUITE]
    if unknown:
        parser.error(f"unknown model {unknown[0]!r}; choose from {', '.join(SUITE)}")
    for name in SUITE if args.list else args.models or DEFAULT_SUITE:
        if args.list:
            print(f"{name:<14} {SUITE[name].description}")
        else:
            print(f"{name:<14} {export(SUITE[name], CACHE)}")


if __name__ == "__main__":
    main()
