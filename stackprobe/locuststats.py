"""Read Locust's output into report totals (`--json-file PREFIX`) and a load series (`--csv PREFIX`)."""

from __future__ import annotations

import csv
import json
from collections import Counter
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import NamedTuple

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
    """
    path = stats_path(prefix)
    entries = json.loads(path.read_text())
    if not isinstance(entries, list):
        raise ValueError(f"{path}: expected Locust's list of stats entries")
    total = sum(int(e["num_requests"]) for e in entries)
    failures = sum(int(e["num_failures"]) for e in entries)
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
    if total == 0:
        return LocustTotals(requests, Latency())
    latency = Latency(
        p50=histogram_percentile(histogram, total, 0.50),
        p95=histogram_percentile(histogram, total, 0.95),
        p99=histogram_percentile(histogram, total, 0.99),
        avg=sum(float(e["total_response_time"]) for e in entries) / total,
        max=max(float(e["max_response_time"]) for e in entries),
    )
    return LocustTotals(requests, latency)


def histogram_percentile(histogram: Mapping[int, int], total: int, q: float) -> float | None:
    """Return the response time that a fraction q of requests finished within, as Locust computes it."""
    if total <= 0:
        return None
    allowed_above = total - int(total * q)
    seen = 0
    for response_time in sorted(histogram, reverse=True):
        seen += histogram[response_time]
        if seen >= allowed_above:
            return float(response_time)
    return 0.0


def read_history(prefix: str | Path, start: float) -> LoadSeries:
    """Read the Aggregated rows of `<prefix>_stats_history.csv` as a series, t in seconds since `start`.

    Rates come from the running totals, interval by interval: Locust's own Requests/s column averages
    a window that ends two seconds before the row, which would shift load against container samples.
    Latency percentiles are Locust's (a window of about ten seconds), None where none was measured.
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
