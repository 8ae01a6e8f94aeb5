"""Where tvmopt keeps what it builds once and reuses: C++ runners, the CUDA stand-in driver."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "tvmopt"
