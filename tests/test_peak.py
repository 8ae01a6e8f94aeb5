"""The measured float32 peak the profile puts kernels against (tvmopt/peak.py): measured once
per CPU model, ISA and thread count, then read from the cache; None where it cannot be."""

from __future__ import annotations

import pytest

from tvmopt import peak
from tvmopt.backends.cpu_features import host_arch


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    return tmp_path / "tvmopt" / "peak.json"


@pytest.mark.skipif(host_arch() != "x86_64", reason="SSE4 code runs on every x86-64 CPU")
def test_the_peak_is_measured_once_then_read(cache, monkeypatch):
    monkeypatch.setattr(peak, "_busy", lambda: False)
    first = peak.isa_peak("sse4", 1)
    assert first is not None and first > 1.0 and cache.exists()

    def measure_again(*_):
        raise AssertionError("measured again")

    monkeypatch.setattr(peak, "_measure", measure_again)
    assert peak.isa_peak("sse4", 1) == first


def test_no_peak_where_the_code_cannot_be_built(cache):
    assert peak.measured_peak("no-such-cpu", 1) is None
    assert not cache.exists()  # nothing cached: a later compiler may build it
    assert peak.isa_peak("an unknown ISA", 1) is None


def test_a_peak_measured_beside_other_work_is_not_kept(cache, monkeypatch):
    """Measured at a load above the core count, the figure is used once and measured again
    next time, so a busy moment does not stay the machine's peak."""
    monkeypatch.setattr(peak, "_measure", lambda *_: 45.0)
    monkeypatch.setattr(peak.os, "getloadavg", lambda: (8.0, 8.0, 8.0))
    assert peak.measured_peak("x86-64-v4", 2) == 45.0 and not cache.exists()
    monkeypatch.setattr(peak.os, "getloadavg", lambda: (0.5, 0.5, 0.5))
    monkeypatch.setattr(peak, "_measure", lambda *_: 231.0)
    assert peak.measured_peak("x86-64-v4", 2) == 231.0 and cache.exists()
    assert peak.measured_peak("x86-64-v4", 2) == 231.0
