"""Deploying compiled models without Python: build flags, the C++ runner, packaged folders and
per-model headers. The C++ sources live in the repository's `deploy/cpp/`."""

import re


def npy_file_name(tensor_name: str) -> str:
    """The .npy file `tvmopt-run` reads or writes for an input or output: its name with anything
    but letters, digits, '.', '-' and '_' replaced by '_' (ONNX names may hold '/' or ':')."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", tensor_name) + ".npy"
