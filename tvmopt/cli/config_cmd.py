"""tvmopt config [--cflags] [--libs] [--cmake-dir]: how a C++ build finds tvmopt's headers and TVM's
runtime libraries, pkg-config style."""

from __future__ import annotations


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "config", help="compiler and linker flags, or a CMake package, for C++ apps"
    )
    parser.add_argument("--cflags", action="store_true", help="compiler flags (-std, -I)")
    parser.add_argument("--libs", action="store_true", help="linker flags (-L, rpath, -l)")
    parser.add_argument(
        "--cmake-dir", action="store_true", help="write the CMake package; print its tvmopt_DIR"
    )
    parser.set_defaults(handler=run)


def run(args) -> int:
    from ..deploy import config

    if not (args.cflags or args.libs or args.cmake_dir):
        args.cflags = args.libs = True
    flags = [config.cflags()] if args.cflags else []
    flags += [config.libs()] if args.libs else []
    if flags:
        print(" ".join(flags))
    if args.cmake_dir:
        print(config.cmake_dir())
    return 0
