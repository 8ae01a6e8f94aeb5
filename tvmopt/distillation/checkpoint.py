"""Training checkpoints: everything a killed run needs to go on exactly where it stopped.

One file holds the student's parameters, the projections, the optimizer and schedule state, the
step and a fingerprint of the run's configuration; it is written to a temporary file and renamed,
so a kill mid-write leaves the previous checkpoint whole. The batch order is a function of the
seed and the step (trainer.py), so no data-loader state is needed."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import torch

from ..errors import ArtifactError, InputError

FILE_NAME = "distill_state.pt"


def fingerprint(*parts) -> str:
    """A digest of what must not change between a run and its resumption."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part if isinstance(part, bytes) else json.dumps(part, sort_keys=True,
                                                                       default=str).encode())
    return digest.hexdigest()[:16]


def save(directory: Path, step: int, key: str, modules: dict, extra: dict) -> None:
    state = {"step": step, "fingerprint": key, **extra,
             **{name: m.state_dict() for name, m in modules.items()}}  # fmt: skip
    fd, tmp = tempfile.mkstemp(prefix=".distill.", suffix=".tmp", dir=directory)
    os.close(fd)
    try:
        torch.save(state, tmp)
        os.replace(tmp, directory / FILE_NAME)
    except OSError as err:
        raise ArtifactError(f"cannot write checkpoint in {directory}: {err.strerror}") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def load(directory: Path, key: str) -> dict | None:
    """The checkpoint in `directory`, None where there is none; an InputError where it belongs to
    another run (other models, data or options)."""
    path = directory / FILE_NAME
    if not path.is_file():
        return None
    state = torch.load(path, weights_only=False)
    if state.get("fingerprint") != key:
        raise InputError(f"checkpoint {path} is from a run with other models, data or options; "
                         "remove it or give another --checkpoint-dir")  # fmt: skip
    return state


def prepare_directory(directory) -> Path:
    path = Path(directory)
    try:
        path.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=path).close()
    except OSError as err:
        raise ArtifactError(f"cannot write checkpoints in {path}: {err.strerror}") from None
    return path
