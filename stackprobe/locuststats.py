"""Read Locust's output: report totals (`--json-file PREFIX`), stackprobe's listener windows and errors.

Totals come from Locust's own end-of-run JSON; the load over time and the failures and exceptions with
their times come from stackprobe's listener in Locust (stackprobe/locust_listener.py); `read_history`
reads Locust's history CSV (`--csv PREFIX`), whose percentiles are cumulative. For the open model
(LoadPlan.rate) the listener's figures add `read_arrivals` (the rate asked and achieved),
`read_arrival_windows` (arrivals per second, and latency from sending beside the windows' from due)
and `read_windows_latency` (the whole run's latency from due).
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, NamedTuple

from stackprobe.metrics import rates_from_totals
from stackprobe.report.model import Latency, LoadSeries, Requests

AGGREGATED = "Aggregated"


class LocustTotals(NamedTuple):
    """Request totals and latency of the whole run, as report sections."""

    requests: Requests
    latency: Latency


def stats_path(prefix: str | Path) -> Path:
    """Return the path of the exact end-of-run stats Locust writes for `--json-file prefix`."""
    return Path(f"{prefix}.json")


def history_path(prefix: str | Path) -> Path:
    """Return the path of the history CSV Locust writes for `--csv prefix --csv-full-history`."""
    return Path(f"{prefix}_stats_history.csv")


def read_totals(prefix: str | Path) -> LocustTotals:
    """Read request totals and latency of the whole run from `<prefix>.json` (Locust's `--json-file`).

    The JSON file is written once, at shutdown, from the final stats; `<prefix>_stats.csv` is rewritten
    every second and never at shutdown, so it misses up to the last second of the run.

    The figures are Locust's own for its Aggregated row: the entries' histograms (response times in ms,
    rounded by Locust) merged, and percentiles by Locust's rule (StatsEntry.get_response_time_percentile)
    over the requests that have a response time: Locust leaves `num_none_requests` out of the histogram
    and out of the count it divides by. avg is Locust's avg_response_time (total_response_time over the
    same count), max its max_response_time. Latency is all None when no request had a response time.
    The rate is requests over the span from the first entry's start to the last request.
    Raises FileNotFoundError when the file is missing, ValueError when it is not Locust's list.
    """
    path = stats_path(prefix)
    entries = json.loads(path.read_text())
    if not isinstance(entries, list):
        raise ValueError(f"{path}: expected Locust's list of stats entries")
    total = sum(int(e["num_requests"]) for e in entries)
    failures = sum(int(e["num_failures"]) for e in entries)
    timed = total - sum(int(e.get("num_none_requests") or 0) for e in entries)
    histogram: Counter[int] = Counter()
    for entry in entries:
        histogram.update({int(ms): int(count) for ms, count in entry["response_times"].items()})
    # Locust's own rate: requests over the span from the first start to the last request.
    span = max((e["last_request_timestamp"] or 0 for e in entries), default=0) - min(
        (e["start_time"] for e in entries), default=0
    )
    requests = Requests(
        total=total,
        failures=failures,
        rps=total / span if total and span > 0 else 0.0,
        failure_ratio=failures / total if total else 0.0,
    )
    if timed <= 0:
        return LocustTotals(requests, Latency())
    latency = Latency(
        p50=histogram_percentile(histogram, timed, 0.50),
        p95=histogram_percentile(histogram, timed, 0.95),
        p99=histogram_percentile(histogram, timed, 0.99),
        avg=sum(float(e["total_response_time"]) for e in entries) / timed,
        max=max(float(e["max_response_time"]) for e in entries),
    )
    return LocustTotals(requests, latency)


def histogram_percentile(histogram: Mapping[int, int], total: int, q: float) -> float | None:
    """Return the response time that a fraction q of requests finished within, as Locust computes it.

    Locust's rule (locust.stats.calculate_response_time_percentile): walk the rounded response times
    (ms) from the slowest down until no more than int(total * q) requests remain below. `total` counts
    the requests in the histogram (those with a response time). None when total is 0.
    """
    if total <= 0:
        return None
    allowed_above = total - int(total * q)
    seen = 0
    for response_time in sorted(histogram, reverse=True):
        seen += histogram[response_time]
        if seen >= allowed_above:
            return float(response_time)
    return 0.0


WINDOWS_SOURCE = "stackprobe's listener in Locust: 1-s windows, Locust's rounding"
OPEN_WINDOWS_SOURCE = (
    "stackprobe's listener in Locust: 1-s windows, Locust's rounding, each request timed from when its "
    "arrival was due (open model)"
)
WINDOWS_FORMAT = "stackprobe-locust-windows"
ERRORS_FORMAT = "stackprobe-locust-errors"
_WINDOW_COUNTS = ("num_requests", "num_failures", "num_none_requests")


class _Windows(NamedTuple):
    """The windows file added up by second: the header's arrival rate (None: closed model) and each window."""

    arrival_rate: float | None
    by_second: dict[int, dict[str, Any]]


def _read_window_lines(path: Path) -> _Windows:
    """Read the listener's windows file, lines with the same t added up; see read_windows for the errors."""
    arrival_rate: float | None = None
    windows: dict[int, dict[str, Any]] = {}
    lines = path.read_text(encoding="utf-8").splitlines()
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        try:
            data = json.loads(text)
        except ValueError:
            if number == len(lines):
                continue
            raise ValueError(f"{path}:{number}: not a JSON line") from None
        if not isinstance(data, dict):
            raise ValueError(f"{path}:{number}: not a window")
        if "format" in data:
            if data["format"] != WINDOWS_FORMAT:
                raise ValueError(f"{path}:{number}: format {data['format']!r}, not {WINDOWS_FORMAT!r}")
            rate = data.get("arrival_rate")
            arrival_rate = float(rate) if isinstance(rate, int | float) else None
            continue
        try:
            second = int(data["t"])
            window = windows.setdefault(
                second,
                {
                    "users": 0,
                    "histogram": Counter(),
                    "uncorrected": Counter(),
                    "arrivals": 0,
                    "lateness_max_ms": None,
                    "total_response_time": 0.0,
                    "max_response_time": None,
                    **dict.fromkeys(_WINDOW_COUNTS, 0),
                },
            )
            window["users"] = max(window["users"], int(data["users"]))
            window["total_response_time"] += float(data.get("total_response_time") or 0.0)
            slowest = data.get("max_response_time")
            if slowest is not None:
                window["max_response_time"] = max(float(slowest), window["max_response_time"] or 0.0)
            for key in _WINDOW_COUNTS:
                window[key] += int(data[key])
            window["histogram"].update({int(ms): int(count) for ms, count in data["response_times"].items()})
            uncorrected = data.get("uncorrected")
            if uncorrected is not None:
                window["uncorrected"].update(
                    {int(ms): int(count) for ms, count in uncorrected["response_times"].items()}
                )
            window["arrivals"] += int(data.get("arrivals") or 0)
            lateness = data.get("lateness_max_ms")
            if lateness is not None:
                window["lateness_max_ms"] = max(float(lateness), window["lateness_max_ms"] or 0.0)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ValueError(f"{path}:{number}: not a window ({exc!r})") from None
    return _Windows(arrival_rate, windows)


def read_windows(path: str | Path, start: float) -> LoadSeries:
    """Read the listener's one-second windows (stackprobe's listener in Locust: 1-s windows, Locust's rounding).

    Each window [s, s+1) of wall clock holds the requests Locust logged in it (the second in which the
    request event fired, as Locust's own per-second counts). One point per window, at its end:
    t = s + 1 - start seconds (start: epoch seconds, e.g. when the load started); users = the most
    users Locust ran at the window's end (runner.user_count); rps and failures_per_s = the window's
    requests and failures (per second: the window is one second; the first and last may cover only
    part of it); p50_ms/p95_ms/p99_ms = Locust's percentile rule over the window's histogram of rounded
    response times in ms, requests without a response time left out as Locust leaves them out; None
    where no request in the window had a response time. In an open-model run (LoadPlan.rate) each
    response time counts from when its arrival was due, not from when it was sent (corrected for
    coordinated omission; the source says so): read_arrival_windows has the times from sending and the
    arrivals per second. Lines with the same t (a worker's report that came late) are added up; a last
    line cut short (Locust killed while writing) is skipped.
    Raises FileNotFoundError when the file is missing, ValueError (naming file and line) for a line
    that is not a window.
    """
    read = _read_window_lines(Path(path))
    series = LoadSeries(source=WINDOWS_SOURCE if read.arrival_rate is None else OPEN_WINDOWS_SOURCE)
    for second in sorted(read.by_second):
        window = read.by_second[second]
        timed = window["num_requests"] - window["num_none_requests"]
        series.t.append(second + 1 - start)
        series.users.append(window["users"])
        series.rps.append(float(window["num_requests"]))
        series.failures_per_s.append(float(window["num_failures"]))
        series.p50_ms.append(histogram_percentile(window["histogram"], timed, 0.50))
        series.p95_ms.append(histogram_percentile(window["histogram"], timed, 0.95))
        series.p99_ms.append(histogram_percentile(window["histogram"], timed, 0.99))
    return series


class WindowStats(NamedTuple):
    """One of the listener's 1-s windows with its histogram, for figures over spans of windows.

    start: the window's start in seconds on the run's axis (its end is start + 1); requests, failures: its
    counts; timed: requests with a response time; histogram: response times in ms as Locust rounds them,
    with their counts; total_response_time, max_response_time: ms (max None: no timed request).
    """

    start: float
    requests: int
    failures: int
    timed: int
    histogram: Counter[int]
    total_response_time: float
    max_response_time: float | None


def read_window_stats(path: str | Path, start: float) -> list[WindowStats]:
    """Read the listener's windows as WindowStats, one per second from the first to the last, in order.

    start: epoch seconds of the run's axis origin, as for read_windows. A second the file lacks is an empty
    window (no request ended in it). Raises as read_windows does.
    """
    by_second = _read_window_lines(Path(path)).by_second
    if not by_second:
        return []
    windows = []
    for second in range(min(by_second), max(by_second) + 1):
        window = by_second.get(second)
        if window is None:
            windows.append(WindowStats(second - start, 0, 0, 0, Counter(), 0.0, None))
            continue
        windows.append(
            WindowStats(
                start=second - start,
                requests=window["num_requests"],
                failures=window["num_failures"],
                timed=window["num_requests"] - window["num_none_requests"],
                histogram=window["histogram"],
                total_response_time=window["total_response_time"],
                max_response_time=window["max_response_time"],
            )
        )
    return windows


def read_windows_latency(path: str | Path) -> Latency:
    """Return the whole run's latency from the listener's windows: their histograms merged.

    For the closed model it is Locust's own (read_totals) up to the requests Locust logged after the
    last window was written. For the open model it is the run's latency measured from when each
    arrival was due, corrected for coordinated omission, where Locust's totals time each request from
    when it was sent. Percentiles by Locust's rule, avg over the requests with a response time, max the
    slowest; all None when no request had a response time. Raises as read_windows does.
    """
    histogram: Counter[int] = Counter()
    timed = 0
    total = 0.0
    slowest: float | None = None
    for window in _read_window_lines(Path(path)).by_second.values():
        histogram.update(window["histogram"])
        timed += window["num_requests"] - window["num_none_requests"]
        total += window["total_response_time"]
        if window["max_response_time"] is not None:
            slowest = max(window["max_response_time"], slowest or 0.0)
    if timed <= 0:
        return Latency()
    return Latency(
        p50=histogram_percentile(histogram, timed, 0.50),
        p95=histogram_percentile(histogram, timed, 0.95),
        p99=histogram_percentile(histogram, timed, 0.99),
        avg=total / timed,
        max=slowest,
    )


class ArrivalSeries(NamedTuple):
    """The open model per one-second window, on read_windows' time axis (t: each window's end).

    arrival_rate: the arrivals per second asked for (the target line; None: a closed-model file, whose
    lists are empty); arrivals_per_s: arrivals started in the window (the achieved rate, second by
    second); lateness_max_ms: the latest of them after its due time (None: none started);
    uncorrected_p50_ms/p95_ms/p99_ms: the window's requests timed from when they were sent, as Locust
    times them (read_windows has them from when they were due).
    """

    arrival_rate: float | None
    t: list[float]
    arrivals_per_s: list[float]
    lateness_max_ms: list[float | None]
    uncorrected_p50_ms: list[float | None]
    uncorrected_p95_ms: list[float | None]
    uncorrected_p99_ms: list[float | None]


def read_arrival_windows(path: str | Path, start: float) -> ArrivalSeries:
    """Read the open model's figures of the listener's windows, t in seconds since `start` (as read_windows).

    Raises as read_windows does.
    """
    read = _read_window_lines(Path(path))
    series = ArrivalSeries(read.arrival_rate, [], [], [], [], [], [])
    if read.arrival_rate is None:
        return series
    for second in sorted(read.by_second):
        window = read.by_second[second]
        timed = window["num_requests"] - window["num_none_requests"]
        series.t.append(second + 1 - start)
        series.arrivals_per_s.append(float(window["arrivals"]))
        series.lateness_max_ms.append(window["lateness_max_ms"])
        for values, q in (
            (series.uncorrected_p50_ms, 0.50),
            (series.uncorrected_p95_ms, 0.95),
            (series.uncorrected_p99_ms, 0.99),
        ):
            values.append(histogram_percentile(window["uncorrected"], timed, q))
    return series


class Arrivals(NamedTuple):
    """The open model's run: the arrival rate asked for and what was delivered (the listener's summary).

    arrival_rate: arrivals per second asked for, over all workers; load_s: seconds from the load's start
    (Locust's test start, when the first arrival was due) to its end (when Locust began to stop, or the
    summary's last writing for a run killed before); started: arrivals started meanwhile; due: arrivals
    that came due meanwhile (floor(load_s x rate) + 1); waiting_at_end: due but not started when the
    load ended (all users busy); achieved_rate: started / load_s (None: no load); lateness_*_ms: how
    long after its due time an arrival started (Locust's rounding and percentile rule; None: none
    started), the time the windows' response times add; workers: processes the rate was split among;
    final: the summary Locust wrote as it quit (False: Locust was killed, the figures are from the last
    few seconds).

    Arrivals are due from the load's start, users or not: while the pool is still spawning, or while
    Locust's event loop is blocked, they wait and their lateness counts. Locust's own stop blocks its
    loop about 0.1 s before it says the test is stopping, so a few arrivals of the last 0.1 s show as
    waiting at the end (0.2 % of a 60-s run).
    """

    arrival_rate: float
    achieved_rate: float | None
    started: int
    due: int
    waiting_at_end: int
    load_s: float
    lateness_p50_ms: float | None
    lateness_p95_ms: float | None
    lateness_p99_ms: float | None
    lateness_max_ms: float | None
    workers: int
    final: bool


def read_arrivals(path: str | Path) -> Arrivals | None:
    """Read the open model's summary from the listener's errors file (LoadPlan.errors); None for the closed model.

    Raises FileNotFoundError when the file is missing, ValueError when it is not the listener's file or
    its summary lacks a field.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        raise ValueError(f"{path}: not JSON") from None
    if not isinstance(data, dict) or data.get("format") != ERRORS_FORMAT:
        raise ValueError(f"{path}: not stackprobe's Locust errors file")
    summary = data.get("arrivals")
    if summary is None:
        return None
    try:
        lateness = summary["lateness_ms"]
        return Arrivals(
            arrival_rate=float(summary["arrival_rate"]),
            achieved_rate=_optional_float(summary["achieved_rate"]),
            started=int(summary["started"]),
            due=int(summary["due"]),
            waiting_at_end=int(summary["waiting_at_end"]),
            load_s=float(summary["load_s"]),
            lateness_p50_ms=_optional_float(lateness["p50"]),
            lateness_p95_ms=_optional_float(lateness["p95"]),
            lateness_p99_ms=_optional_float(lateness["p99"]),
            lateness_max_ms=_optional_float(lateness["max"]),
            workers=int(summary["workers"]),
            final=bool(data.get("final")),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{path}: an arrivals summary without its fields ({exc!r})") from None


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)


class LocustErrors(NamedTuple):
    """Locust's failures and the exceptions raised in tasks, with times; unpacks as (failures, exceptions).

    failures: [{"method": str, "name": str, "error": str, "occurrences": int, "first_t": float,
        "last_t": float}], as Locust's failures table groups and words them (the error is
        StatsError.parse_error of the exception, e.g. "CatchResponseError('...')"), most frequent first.
    exceptions: [{"type": str, "message": str, "count": int, "first_t": float, "last_t": float,
        "traceback": str}], grouped by traceback as Locust groups them, with the first message and the
        last frames of the traceback, most frequent first.
    first_t and last_t are seconds since the `start` given to read_errors.
    """

    failures: list[dict[str, Any]]
    exceptions: list[dict[str, Any]]

    @property
    def failure_count(self) -> int:
        """Return the number of failed requests."""
        return sum(int(f["occurrences"]) for f in self.failures)

    @property
    def exception_count(self) -> int:
        """Return the number of exceptions raised in tasks."""
        return sum(int(e["count"]) for e in self.exceptions)


def read_errors(path: str | Path, start: float) -> LocustErrors:
    """Read the listener's failures and exceptions, times as t seconds since `start` (epoch seconds).

    The file is rewritten every few seconds during the run and at quit, so a run killed before the end
    still has what it had a few seconds earlier. Raises FileNotFoundError when it is missing,
    ValueError when it is not the listener's file.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        raise ValueError(f"{path}: not JSON") from None
    if not isinstance(data, dict) or data.get("format") != ERRORS_FORMAT:
        raise ValueError(f"{path}: not stackprobe's Locust errors file")
    try:
        failures = [
            {
                "method": str(f["method"]),
                "name": str(f["name"]),
                "error": str(f["error"]),
                "occurrences": int(f["occurrences"]),
                "first_t": float(f["first_seen"]) - start,
                "last_t": float(f["last_seen"]) - start,
            }
            for f in data["failures"]
        ]
        exceptions = [
            {
                "type": str(e["type"]),
                "message": str(e["message"]),
                "count": int(e["count"]),
                "first_t": float(e["first_seen"]) - start,
                "last_t": float(e["last_seen"]) - start,
                "traceback": str(e["traceback"]),
            }
            for e in data["exceptions"]
        ]
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{path}: a failure or exception without its fields ({exc!r})") from None
    failures.sort(key=lambda f: (-f["occurrences"], f["first_t"]))
    exceptions.sort(key=lambda e: (-e["count"], e["first_t"]))
    return LocustErrors(failures, exceptions)


HISTORY_SOURCE = "Locust's history CSV: Aggregated rows, percentiles cumulative since the start"


def read_history(prefix: str | Path, start: float) -> LoadSeries:
    """Read the Aggregated rows of `<prefix>_stats_history.csv` as a series, t in seconds since `start`.

    Rates come from the running totals, interval by interval: Locust's own Requests/s column averages
    a window that ends two seconds before the row, which would shift load against container samples.
    Latency percentiles are what Locust wrote: without `--csv-full-history` (stackprobe's LoadPlan) they
    are cumulative since the start, so a late stall barely moves them; with it, a window of about ten
    seconds. None where none was measured. For latency over time use read_windows.
    """
    path = history_path(prefix)
    t: list[float] = []
    users: list[int] = []
    totals: list[int] = []
    failure_totals: list[int] = []
    p50: list[float | None] = []
    p95: list[float | None] = []
    p99: list[float | None] = []
    for row in _rows(path):
        if row.get("Name") != AGGREGATED or None in row.values():
            # A row cut short (Locust stopped while writing it) has None for its missing cells.
            continue
        t.append(_int(row, "Timestamp", path) - start)
        users.append(_int(row, "User Count", path))
        totals.append(_int(row, "Total Request Count", path))
        failure_totals.append(_int(row, "Total Failure Count", path))
        p50.append(_window_percentile(row, "50%", path))
        p95.append(_window_percentile(row, "95%", path))
        p99.append(_window_percentile(row, "99%", path))
    return LoadSeries(
        source=HISTORY_SOURCE,
        t=t,
        users=users,
        rps=rates_from_totals(t, totals),
        failures_per_s=rates_from_totals(t, failure_totals),
        p50_ms=p50,
        p95_ms=p95,
        p99_ms=p99,
    )


def _rows(path: Path) -> Iterator[dict[str, str | None]]:
    with path.open(newline="", encoding="utf-8") as handle:
        yield from csv.DictReader(handle)


def _cell(row: dict[str, str | None], column: str, path: Path) -> str:
    if column not in row:
        raise ValueError(f"{path}: no column {column!r}")
    return (row[column] or "").strip()


def _number(row: dict[str, str | None], column: str, path: Path) -> float | None:
    text = _cell(row, column, path)
    if text in ("", "N/A"):
        return None
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{path}: column {column!r} holds {text!r}, not a number") from None


def _int(row: dict[str, str | None], column: str, path: Path) -> int:
    value = _number(row, column, path)
    if value is None:
        raise ValueError(f"{path}: column {column!r} is empty")
    return int(value)


def _window_percentile(row: dict[str, str | None], column: str, path: Path) -> float | None:
    value = _number(row, column, path)
    # Locust writes 0 (not N/A) when its ten-second window holds no response yet; a real 0 ms would
    # need every response in the window under half a millisecond, so 0 is read as "not measured".
    return value or None
