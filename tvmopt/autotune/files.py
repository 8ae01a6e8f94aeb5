"""`tvmopt db show` and `tvmopt db merge`: tuning databases read as files, every target's
records included (a database opened for tuning sees only its own target's)."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from ..errors import TuningDatabaseError
from .database import (
    FORMAT,
    HEADER,
    RECORDS,
    UNTUNED,
    WORKLOADS,
    check_format,
    mean_seconds,
    read_lines,
)


@dataclass(frozen=True)
class TaskSummary:
    target: str
    name: str
    trials: int
    failed: int
    best_s: float | None


def summarize(path) -> list[TaskSummary]:
    """One row per (target, kernel) that has trials, in file order."""
    path = Path(path)
    check_format(path)
    names = {line["id"]: line.get("name", "?") for _, line in read_lines(path / WORKLOADS)}
    times: dict[tuple[str, str], list] = {}
    for _, line in read_lines(path / RECORDS):
        key = (line["target"], line["workload"])
        times.setdefault(key, []).append(mean_seconds(_run_secs(line["record"])))
    return [_summary(target, names.get(workload, "?"), found)
            for (target, workload), found in times.items()]  # fmt: skip


def _run_secs(record_json):
    """The run times in a TuningRecord's JSON: [trace, run_secs, target, args_info]."""
    return record_json[1] if len(record_json) > 1 else None


def _summary(target: str, name: str, found: list) -> TaskSummary:
    measured = [seconds for seconds in found if seconds is not None]
    best = min(measured) if measured else None
    return TaskSummary(target, name, len(found), len(found) - len(measured), best)


def merge(sources, output) -> tuple[int, int]:
    """Write the union of the databases `sources` to the new directory `output`: (workloads,
    records). A record in several sources is kept once; the output appears whole or not at all."""
    output = Path(output)
    if output.exists():
        raise TuningDatabaseError(f"merge output {output} already exists")
    for source in sources:
        check_format(Path(source))
    workloads, records = _union(sources, WORKLOADS, "id"), _union(sources, RECORDS, None)
    untuned = _union(sources, UNTUNED, None)
    staged = output.with_name(output.name + ".partial")
    shutil.rmtree(staged, ignore_errors=True)
    staged.mkdir(parents=True)
    (staged / HEADER).write_text(json.dumps(FORMAT) + "\n")
    _write_lines(staged / WORKLOADS, workloads)
    _write_lines(staged / RECORDS, records)
    if untuned:
        _write_lines(staged / UNTUNED, untuned)
    staged.rename(output)
    return len(workloads), len(records)


def _union(sources, filename: str, key_field: str | None) -> list:
    seen, lines = set(), []
    for source in sources:
        for _, line in read_lines(Path(source) / filename):
            key = line[key_field] if key_field else json.dumps(line, sort_keys=True)
            if key not in seen:
                seen.add(key)
                lines.append(line)
    return lines


def _write_lines(path: Path, lines: list) -> None:
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
