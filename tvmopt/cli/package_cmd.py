"""tvmopt package OUT.so [-o DIR]"""

from __future__ import annotations

from pathlib import Path


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "package", help="a folder that runs a compiled library with no Python (C++ runner, runtime)"
    )
    parser.add_argument("library", help="a library written by `tvmopt compile`")
    parser.add_argument("-o", "--output", help="the folder to write (default: the library's stem)")
    parser.set_defaults(handler=run)


def run(args) -> int:
    from ..deploy.build import RUNNER
    from ..deploy.package import package

    library = Path(args.library)
    result = package(library, Path(args.output or library.stem))
    print(f"wrote {result.directory}/ ({result.size_mb:.1f} MiB): {', '.join(result.files)}")
    print(f"run: {result.directory / 'bin' / RUNNER} {result.directory / library.name}")
    return 0
