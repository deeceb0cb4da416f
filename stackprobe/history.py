"""The run's operation history (`history.jsonl`): every write the load made, in the shape of Jepsen's history.

One JSON object a line, ordered by time, each an event of one operation:

    {"index": 0, "type": "invoke", "f": "create", "process": 0, "time": 1250000, "t": 0.00125,
     "wall": "2026-11-30T09:00:00.001250Z", "value": {"name": "ada 3f2a", "id": null}}
    {"index": 1, "type": "ok", "f": "create", "process": 0, "time": 7400000, "t": 0.0074,
     "wall": "2026-11-30T09:00:00.007400Z", "value": {"name": "ada 3f2a", "id": 123}, "status": 201}

status: the HTTP status of a completion (0: no response), where the load recorded it; error: why a fail
or info was one.

type: invoke (before the request was sent), ok (acknowledged), fail (definitely not applied), info
(unknown). process: an integer per simulated user; as in Jepsen, a process whose operation ended in info
is never reused (its next operation gets a new number), since the first may still take effect. time:
nanoseconds since the load started (Jepsen's unit); t: the same in seconds, the report's time axis;
wall: the wall clock, UTC. value: the name sent and the id the service gave (null until known). An
invoke with no completion (the load stopped while it was out) has none in the history either: a checker
treats it as info, as Jepsen's do. The JSON Schema is stackprobe/report/history.schema.json.

The load's write log (loadtests/_write_log.py) holds the same events as each Locust process recorded
them: each process's lines in order, batches of several processes interleaved. write_history merges
them by time without holding the log in memory: one temporary file per process, then a k-way merge.
Each line is decoded once; the temporary files hold the decoded records in `marshal`'s format, which is
read back several times faster than JSON (a 60-s load writes some 30k lines).
"""

from __future__ import annotations

import functools
import heapq
import itertools
import json
import marshal
import math
import os
import struct
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from stackprobe.fastjson import loads

_TYPES = ("invoke", "ok", "fail", "info")
# A record in the temporary files: its length (4 bytes, little-endian), then marshal.dumps of it.
_LENGTH = struct.Struct("<I")
# json.dumps(..., ensure_ascii=False) makes an encoder per call; one made once writes the same text.
_ENCODE = json.JSONEncoder(ensure_ascii=False).encode
# How that encoder writes a string (json.encoder's C function where there is one).
_STRING = json.encoder.encode_basestring


@dataclass(frozen=True)
class HistorySummary:
    """What write_history wrote: the file, its events by type, and the write-log lines it could not place.

    skipped: lines of the first write-log format ({"location", "expect"}, no type or time): they say a
    write was acknowledged but not when, so they have no place in a history.
    """

    path: Path
    events: dict[str, int]
    skipped: int


def write_history(write_log: Path, target: Path, *, start: float) -> HistorySummary | None:
    """Write the history of the write log at `write_log` to `target` (history.jsonl), on the run's time axis.

    start: the wall-clock time (Unix seconds) the load started, the report's t = 0. Returns None, writing
    nothing, when there is no write log. Memory holds one line per Locust process and one process number
    per simulated user, never the log. The file is written beside `target` and renamed, so it is whole or
    absent. Raises ValueError naming file:line for a line that is not JSON.
    """
    if not write_log.is_file():
        return None
    events = dict.fromkeys(_TYPES, 0)
    skipped = 0
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".history-") as scratch:
        runs: dict[str, IO[bytes]] = {}
        try:
            with write_log.open("rb") as log:
                for number, line in enumerate(log, start=1):
                    if not line.strip():
                        continue
                    try:
                        record = loads(line)
                        kind, moment = record.get("type"), record.get("time")
                    except (ValueError, AttributeError):
                        raise ValueError(f"{write_log}:{number}: not a write record") from None
                    if kind == "scan":  # where the records are listed: not an operation
                        continue
                    if kind not in _TYPES or not isinstance(moment, int | float):
                        skipped += 1
                        continue
                    # A process's lines are in the order it recorded them: one sorted run per process.
                    source = str(record.get("op", "")).split("-", 1)[0]
                    run = runs.get(source)
                    if run is None:
                        run = runs[source] = open(Path(scratch) / f"{len(runs)}.marshal", "w+b")  # noqa: SIM115 - closed in the finally below
                    blob = marshal.dumps(record)
                    run.write(_LENGTH.pack(len(blob)) + blob)
            for run in runs.values():
                run.seek(0)
            partial = target.with_name(f".{target.name}.partial")
            with partial.open("w", encoding="utf-8") as out:
                merged = heapq.merge(*(_records(run) for run in runs.values()), key=_time)
                for event in _events(merged, start):
                    events[event["type"]] += 1
                    out.write(_line(event))
            os.replace(partial, target)
        finally:
            for run in runs.values():
                run.close()
    return HistorySummary(path=target, events=events, skipped=skipped)


def _records(run: IO[bytes]) -> Iterator[dict[str, Any]]:
    """Read back the records written to `run` (each its length, then marshal.dumps of it), in order."""
    # marshal.load on a file reads it a few bytes at a time; one read per record and marshal.loads do not.
    while header := run.read(_LENGTH.size):
        (length,) = _LENGTH.unpack(header)
        yield marshal.loads(run.read(length))


def _time(record: dict[str, Any]) -> Any:
    return record["time"]


def _line(event: dict[str, Any]) -> str:
    """Return json.dumps(event, ensure_ascii=False) and a newline, for an event as _events makes it.

    The same text as json's, written from the event's known keys in their order, in half the time: index,
    process and time are ints, type one of _TYPES, t a finite float (time, from the same float, would not
    have converted otherwise) and wall ASCII; the other values are whatever the write log held.
    """
    value = event["value"]
    text = (
        f'{{"index": {event["index"]}, "type": "{event["type"]}", "f": {_json(event["f"])}, '
        f'"process": {event["process"]}, "time": {event["time"]}, "t": {float.__repr__(event["t"])}, '
        f'"wall": "{event["wall"]}", "value": {{"name": {_json(value["name"])}, "id": {_json(value["id"])}}}'
    )
    if "status" in event:
        text += f', "status": {_json(event["status"])}'
    if "error" in event:
        text += f', "error": {_json(event["error"])}'
    return text + "}\n"


def _json(value: Any) -> str:
    """Return a value's JSON text as _ENCODE writes it, with the write log's usual str, int and None quickly."""
    kind = type(value)
    if kind is str:
        return _STRING(value)
    if kind is int:
        return int.__repr__(value)
    if value is None:
        return "null"
    return _ENCODE(value)


def wall(moment: float) -> str:
    """Return a Unix time in seconds as UTC ISO 8601 to the microsecond, "2026-11-30T09:00:00.001250Z".

    The text of datetime.fromtimestamp(moment, UTC).isoformat(timespec="microseconds") with "Z" for
    "+00:00", microseconds rounded half to even as fromtimestamp rounds them; the part down to the second
    is formatted once per second (a history has thousands of events a second).
    """
    if not (math.isfinite(moment) and moment >= 0):
        return datetime.fromtimestamp(moment, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
    second = int(moment)
    micro = round((moment - second) * 1e6)  # round(): half to even, as fromtimestamp
    if micro >= 1_000_000:
        second, micro = second + 1, micro - 1_000_000
    return f"{_second(second)}.{micro:06d}Z"


@functools.lru_cache(maxsize=4)
def _second(second: int) -> str:
    return datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")


def _events(records: Iterator[dict[str, Any]], start: float) -> Iterator[dict[str, Any]]:
    """Turn write-log records, in time order, into history events with Jepsen's index and processes."""
    numbers = itertools.count()
    processes: dict[str, int] = {}
    for index, record in enumerate(records):
        kind, moment = record["type"], float(record["time"])
        client = str(record.get("process", ""))
        process = processes.get(client)
        if process is None:
            process = processes[client] = next(numbers)
        expect = record.get("expect")
        ident = expect.get("id") if isinstance(expect, dict) else None
        event: dict[str, Any] = {
            "index": index,
            "type": kind,
            "f": record.get("f", "create"),
            "process": process,
            "time": round((moment - start) * 1e9),
            "t": round(moment - start, 6),
            "wall": wall(moment),
            "value": {"name": record.get("name"), "id": ident},
        }
        if kind != "invoke":
            if isinstance(record.get("status"), int):
                event["status"] = record["status"]
            if kind != "ok":
                event["error"] = str(record.get("error", ""))
        if kind == "info":
            # Jepsen's rule: the process may still be acting, so its next operation is another process's.
            del processes[client]
        yield event
