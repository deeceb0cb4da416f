"""history.jsonl: the write log's events merged by time into Jepsen's history shape, checked by its schema."""

from __future__ import annotations

import json
import tracemalloc
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from stackprobe.history import wall, write_history

START = 1_764_493_200.0  # the load's start, Unix seconds


def _schema() -> dict[str, Any]:
    return json.loads((resources.files("stackprobe.report") / "history.schema.json").read_text(encoding="utf-8"))


def _log(tmp_path: Path, lines: list[dict[str, Any]]) -> Path:
    path = tmp_path / "writes.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def _op(kind: str, op: str, process: str, t: float, name: str, **more: Any) -> dict[str, Any]:
    line = {"type": kind, "op": op, "process": process, "time": START + t, "name": name, **more}
    if kind == "invoke":
        line |= {"f": "create", "lookup": f"/users?name={name}"}
    return line


def _read(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_two_processes_batches_are_merged_into_one_history_in_time_order(tmp_path: Path) -> None:
    # Process 11 flushed its batch before process 22, although 22's events came first.
    log = _log(
        tmp_path,
        [
            _op("invoke", "11-1", "11-1", 0.5, "b"),
            _op("ok", "11-1", "11-1", 0.7, "b", status=201, location="/users/2", expect={"id": 2, "name": "b"}),
            _op("invoke", "22-1", "22-1", 0.1, "a"),
            _op("fail", "22-1", "22-1", 0.6, "a", status=503, error="HTTP 503"),
        ],
    )
    summary = write_history(log, tmp_path / "history.jsonl", start=START)
    assert summary is not None
    history = _read(summary.path)
    assert [(e["index"], e["type"], e["value"]["name"]) for e in history] == [
        (0, "invoke", "a"),
        (1, "invoke", "b"),
        (2, "fail", "a"),
        (3, "ok", "b"),
    ]
    assert summary.events == {"invoke": 2, "ok": 1, "fail": 1, "info": 0}


def test_an_event_carries_its_time_on_the_runs_axis_in_ns_and_s_the_wall_clock_and_the_id_once_known(
    tmp_path: Path,
) -> None:
    log = _log(
        tmp_path,
        [
            _op("invoke", "1-1", "1-1", 1.25, "ada"),
            _op("ok", "1-1", "1-1", 1.5, "ada", status=201, location="/users/7", expect={"id": 7, "name": "ada"}),
        ],
    )
    summary = write_history(log, tmp_path / "history.jsonl", start=START)
    assert summary is not None
    invoke, ok = _read(summary.path)
    assert invoke == {
        "index": 0,
        "type": "invoke",
        "f": "create",
        "process": 0,
        "time": 1_250_000_000,
        "t": 1.25,
        "wall": "2025-11-30T09:00:01.250000Z",
        "value": {"name": "ada", "id": None},
    }
    assert (ok["f"], ok["time"], ok["value"], ok["status"]) == ("create", 1_500_000_000, {"name": "ada", "id": 7}, 201)


def test_a_process_is_never_reused_after_an_info_as_in_jepsen(tmp_path: Path) -> None:
    log = _log(
        tmp_path,
        [
            _op("invoke", "1-1", "1-1", 0.1, "a"),
            _op("info", "1-1", "1-1", 10.1, "a", status=0, error="no response: Timeout"),
            _op("invoke", "1-2", "1-1", 10.2, "b"),
            _op("fail", "1-2", "1-1", 10.3, "b", status=400, error="HTTP 400"),
            _op("invoke", "1-3", "1-1", 10.4, "c"),
        ],
    )
    summary = write_history(log, tmp_path / "history.jsonl", start=START)
    assert summary is not None
    assert [(e["type"], e["process"]) for e in _read(summary.path)] == [
        ("invoke", 0),
        ("info", 0),
        ("invoke", 1),
        ("fail", 1),
        ("invoke", 1),
    ]


def test_every_line_matches_the_history_schema_and_the_schema_refuses_a_status_on_an_invoke(tmp_path: Path) -> None:
    log = _log(
        tmp_path,
        [
            _op("invoke", "1-1", "1-1", 0.1, "a"),
            _op("info", "1-1", "1-1", 0.2, "a", status=0, error="no response: ConnectionResetError"),
            _op("invoke", "1-2", "1-2", 0.3, "b"),
            _op("ok", "1-2", "1-2", 0.4, "b", status=201, location="/users/1", expect={"id": 1, "name": "b"}),
            _op("invoke", "1-3", "1-3", 0.5, "c"),
        ],
    )
    summary = write_history(log, tmp_path / "history.jsonl", start=START)
    assert summary is not None
    validator = jsonschema.Draft202012Validator(_schema())
    history = _read(summary.path)
    for event in history:
        validator.validate(event)
    with pytest.raises(jsonschema.ValidationError):
        validator.validate({**history[0], "status": 201})


def test_first_format_lines_have_no_place_in_the_history_and_are_counted_as_skipped(tmp_path: Path) -> None:
    log = _log(tmp_path, [{"location": "/users/1", "expect": {"id": 1}}, _op("invoke", "1-1", "1-1", 0.1, "a")])
    summary = write_history(log, tmp_path / "history.jsonl", start=START)
    assert summary is not None
    assert (summary.skipped, summary.events["invoke"]) == (1, 1)


def test_no_write_log_writes_no_history_and_a_broken_line_is_named(tmp_path: Path) -> None:
    assert write_history(tmp_path / "absent.jsonl", tmp_path / "history.jsonl", start=START) is None
    assert not (tmp_path / "history.jsonl").exists()
    log = tmp_path / "writes.jsonl"
    log.write_text(json.dumps(_op("invoke", "1-1", "1-1", 0.1, "a")) + "\n{oops\n")
    with pytest.raises(ValueError, match=r"writes.jsonl:2: not a write record"):
        write_history(log, tmp_path / "history.jsonl", start=START)
    assert not (tmp_path / "history.jsonl").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["writes.jsonl"]


def test_memory_stays_flat_for_a_long_log(tmp_path: Path) -> None:
    lines = []
    for i in range(2_000):
        source = i % 4
        lines.append(_op("invoke", f"{source}-{i}", f"{source}-{i % 50}", i / 1000, f"n{i}"))
        lines.append(
            _op("fail", f"{source}-{i}", f"{source}-{i % 50}", i / 1000 + 0.0005, f"n{i}", status=400, error="x")
        )
    log = _log(tmp_path, lines)
    tracemalloc.start()
    try:
        summary = write_history(log, tmp_path / "history.jsonl", start=START)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert summary is not None
    assert summary.events["invoke"] == 2_000
    assert peak < 1 * 2**20, f"peak {peak / 2**20:.1f} MiB"


def test_the_listing_a_log_declares_is_no_operation_and_not_skipped(tmp_path: Path) -> None:
    scan = {"type": "scan", "url": "/users?limit=500", "key": "id", "time": 0.05}
    log = _log(tmp_path, [scan, _op("invoke", "1-1", "1-1", 0.1, "a"), scan])
    summary = write_history(log, tmp_path / "history.jsonl", start=START)
    assert summary is not None
    assert (summary.skipped, summary.events) == (0, {"invoke": 1, "ok": 0, "fail": 0, "info": 0})


@pytest.mark.parametrize(
    "moment",
    [
        START,
        START + 0.0000005,  # half a microsecond: rounded to even, as datetime rounds it
        START + 0.0000015,
        START + 0.9999995,  # rounds up into the next second
        START + 0.9999994,
        1_796_039_365.88455,
        1_796_039_365.0000005,
        0.0,
        0.5e-6,
        2.5e-6,
        -1.25,  # before 1970: datetime's own text
    ],
)
def test_the_wall_time_is_datetimes_own_text_to_the_microsecond(moment: float) -> None:
    expected = datetime.fromtimestamp(moment, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
    assert wall(moment) == expected


def test_each_line_is_the_text_json_dumps_writes_whatever_the_values(tmp_path: Path) -> None:
    odd = 'quote " backslash \\ newline \n tab \t bell \x07 é 李 \u2028'
    log = _log(
        tmp_path,
        [
            _op("invoke", "9-1", "9-1", 0.001, odd),
            _op("ok", "9-1", "9-1", 0.002, odd, status=True, expect={"id": 10**30}),
            {**_op("invoke", "9-2", "9-2", 0.003, "n"), "f": {"nested": [1, 2.5, None]}, "name": None},
            _op("info", "9-2", "9-2", 0.004, "n", status=False, error=odd, expect={"id": 2.5}),
            _op("fail", "9-3", "9-3", 0.005, "m", error=None, status=503),
        ],
    )
    summary = write_history(log, tmp_path / "history.jsonl", start=START)
    assert summary is not None
    # One object a "\n" line (json leaves U+2028 as it is, which str.splitlines would split on).
    lines = summary.path.read_text(encoding="utf-8").removesuffix("\n").split("\n")
    assert len(lines) == 5
    for line in lines:
        assert line == json.dumps(json.loads(line), ensure_ascii=False)
    assert json.loads(lines[1])["status"] is True
    assert json.loads(lines[3])["error"] == odd
