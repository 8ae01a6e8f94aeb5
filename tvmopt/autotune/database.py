"""The tuning database: MetaSchedule's records in a directory that survives being killed.

    DIR/tvmopt-db.json    {"format": "tvmopt-tuning-db", "version": 1}
    DIR/workloads.jsonl   one kernel per line: {"id", "name", "workload"}
    DIR/records.jsonl     one measured trial per line: {"workload": id, "target": key, "record"}
    DIR/untuned.jsonl     a kernel's untuned time where its schedule is not a record (dlight's
                          traces hold index maps, which MetaSchedule's JSON cannot write):
                          {"workload": id, "target": key, "seconds"}; slower records are ignored

Each line goes out in one write() and is fsync'd before the trial counts as done, so a process
killed at any moment leaves at most a torn last line: readers skip it and the next writer cuts it
off. A record is loaded only into a database opened for its target (`target_key`): a kernel tuned
for one CPU is never applied to another, though its lines stay in the files.
"""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path

import tvm_ffi
from tvm.ir.utils import derived_object
from tvm.s_tir import meta_schedule as ms
from tvm.s_tir.meta_schedule.database import PyDatabase, TuningRecord, Workload

from .._tvm import tvm
from ..errors import TuningDatabaseError

FORMAT = {"format": "tvmopt-tuning-db", "version": 1}
HEADER, WORKLOADS, RECORDS, LOCK = "tvmopt-db.json", "workloads.jsonl", "records.jsonl", ".lock"
UNTUNED = "untuned.jsonl"
# what makes two targets run a kernel alike: the ISA and the CPU or GPU it was measured on
TARGET_FIELDS = ("kind", "mtriple", "mcpu", "mattr", "arch")
FAILED_S = 1e9  # MetaSchedule records a candidate that failed to build or run as 1e10 s


def target_key(target) -> str:
    spec = dict(tvm.target.Target(target).export())
    fields = {name: spec[name] for name in TARGET_FIELDS if spec.get(name) not in (None, "", [])}
    if "mattr" in fields:
        fields["mattr"] = sorted(fields["mattr"])
    return json.dumps(fields, sort_keys=True)


def open_database(path, target, create: bool = False) -> TuningDatabase:
    """The database at `path`, seeing only `target`'s records. With `create`, a missing
    directory becomes a new database and this process takes the writer's lock."""
    path = Path(path)
    if create and not path.exists():
        initialize(path)
    check_format(path)
    return TuningDatabase(path, target, writer=create)


def initialize(path: Path) -> None:
    path.mkdir(parents=True)
    staged = path / (HEADER + ".tmp")
    staged.write_text(json.dumps(FORMAT) + "\n")
    staged.rename(path / HEADER)


def check_format(path: Path) -> None:
    if not path.is_dir():
        raise TuningDatabaseError(f"tuning database not found: {path}")
    header = path / HEADER
    if not header.is_file():
        raise TuningDatabaseError(f"{path} is not a tvmopt tuning database (no {HEADER})")
    try:
        found = json.loads(header.read_text())
    except (ValueError, OSError) as err:
        raise TuningDatabaseError(f"broken tuning database {header}: {err}") from None
    if found != FORMAT:
        raise TuningDatabaseError(f"{path} is not a tvmopt tuning database of version "
                                  f"{FORMAT['version']} ({header} says {found})")  # fmt: skip


def read_lines(path: Path):
    """(line number, JSON object) for every complete line; a torn last line (a writer killed
    mid-write) is skipped, any other unreadable line is an error."""
    if not path.exists():
        return
    data = path.read_bytes()
    lines = data.split(b"\n")
    for number, line in enumerate(lines[:-1], start=1):  # the part after the last \n is torn
        try:
            yield number, json.loads(line)
        except ValueError as err:
            message = f"broken tuning database {path}, line {number}: {err}"
            raise TuningDatabaseError(message) from None


class Appender:
    """Appends whole lines durably; first cuts off a torn tail left by a killed writer."""

    def __init__(self, path: Path):
        self.path = path
        self.fd = None

    def write(self, obj) -> None:
        if self.fd is None:
            _cut_torn_tail(self.path)
            self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        os.write(self.fd, (json.dumps(obj) + "\n").encode())
        os.fsync(self.fd)


def _cut_torn_tail(path: Path) -> None:
    if not path.exists():
        return
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        os.truncate(path, data.rfind(b"\n") + 1)


def workload_id(mod) -> str:
    return str(tvm_ffi.structural_hash(mod))


def lock_for_writing(path: Path):
    """An exclusive lock held while the returned file stays open: two tuning runs appending
    to one database would interleave their lines."""
    handle = open(path / LOCK, "w")  # noqa: SIM115 - held for the database's lifetime
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        message = f"tuning database {path} is in use by another tuning run"
        raise TuningDatabaseError(message) from None
    return handle


@derived_object
class TuningDatabase(PyDatabase):
    """MetaSchedule's database interface over the files above, for one target. Lookups go to
    an in-memory MetaSchedule database; commits also go to disk."""

    def __init__(self, path: Path, target, writer: bool = False):
        super().__init__()
        self.path = Path(path)
        self.target_key = target_key(target)
        self.memory = ms.database.MemoryDatabase()
        self.names: dict[str, str] = {}
        self.applied = 0  # kernels the last compile took from this database (pipeline.py)
        self.records: dict[str, list[TuningRecord]] = {}  # per workload id, this target's
        self.untuned: dict[str, float] = {}  # per workload id, where the record is not kept
        self._lock = lock_for_writing(self.path) if writer else None
        self._workloads = Appender(self.path / WORKLOADS)
        self._records = Appender(self.path / RECORDS)
        self._untuned = Appender(self.path / UNTUNED)
        self._load()

    def _load(self) -> None:
        workloads = {}
        for number, line in read_lines(self.path / WORKLOADS):
            workloads[line["id"]] = self._parse_workload(line, number)
            self.names[line["id"]] = line.get("name", "?")
        for number, line in read_lines(self.path / RECORDS):
            if line.get("target") != self.target_key:
                continue
            workload = workloads.get(line.get("workload"))
            if workload is None:
                raise TuningDatabaseError(f"broken tuning database {self.path / RECORDS}, line "
                                          f"{number}: unknown workload")  # fmt: skip
            self._remember(line["workload"], TuningRecord.from_json(line["record"], workload))
        for _, line in read_lines(self.path / UNTUNED):
            if line.get("target") == self.target_key:
                self.untuned[line["workload"]] = float(line["seconds"])

    def _remember(self, key: str, record: TuningRecord) -> None:
        self.memory.commit_tuning_record(record)
        self.records.setdefault(key, []).append(record)

    def _parse_workload(self, line, number) -> Workload:
        try:
            return self.memory.commit_workload(Workload.from_json(line["workload"]).mod)
        except Exception as err:  # noqa: BLE001 - TVM's JSON reader raises several types
            raise TuningDatabaseError(f"broken tuning database {self.path / WORKLOADS}, line "
                                      f"{number}: {type(err).__name__}") from None  # fmt: skip

    def register(self, mod, name: str) -> str:
        """Commit the workload `mod` under a readable `name` (the kernel's function name)."""
        key = workload_id(mod)
        if key not in self.names:
            workload = self.memory.commit_workload(mod)
            self._workloads.write({"id": key, "name": name, "workload": workload.as_json()})
            self.names[key] = name
        return key

    def records_of(self, mod) -> list[TuningRecord]:
        """Every trial of the workload `mod` on this target, failed ones included."""
        return self.records.get(workload_id(mod), [])

    def commit_untuned(self, mod, seconds: float) -> None:
        key = self.register(mod, "?")
        self._untuned.write({"workload": key, "target": self.target_key, "seconds": seconds})
        self.untuned[key] = seconds

    def untuned_of(self, mod) -> float | None:
        return self.untuned.get(workload_id(mod))

    def trials_of(self, mods) -> int:
        return sum(len(self.records_of(mod)) for mod in mods)

    # MetaSchedule's interface

    def has_workload(self, mod) -> bool:
        return self.memory.has_workload(mod)

    def commit_workload(self, mod) -> Workload:
        self.register(mod, "?")
        return self.memory.commit_workload(mod)

    def commit_tuning_record(self, record: TuningRecord) -> None:
        key = self.register(record.workload.mod, "?")
        try:
            line = record.as_json()
        except TypeError:  # a trace MetaSchedule's JSON cannot write (an index map): dropped,
            return  # as a record that could not be read back would be
        self._records.write({"workload": key, "target": self.target_key, "record": line})
        self._remember(key, record)

    def get_top_k(self, workload: Workload, top_k: int) -> list[TuningRecord]:
        """The fastest `top_k` records that built and ran, and beat the untuned time when it is
        kept apart: a failed trial, or one slower than no tuning, is never applied."""
        ranked = self.memory.get_top_k(workload, len(self.records_of(workload.mod)))
        untuned = self.untuned_of(workload.mod) or FAILED_S
        faster = [r for r in ranked if _succeeded(r) and mean_seconds(r.run_secs) < untuned]
        return faster[:top_k]

    def get_all_tuning_records(self) -> list[TuningRecord]:
        return list(self.memory.get_all_tuning_records())

    def __len__(self) -> int:
        return len(self.memory)


def _succeeded(record: TuningRecord) -> bool:
    return mean_seconds(record.run_secs) is not None


def mean_seconds(run_secs) -> float | None:
    """A trial's measured time, or None when it failed to build or run."""
    if not run_secs:
        return None
    mean = sum(float(s) for s in run_secs) / len(run_secs)
    return mean if mean < FAILED_S else None
