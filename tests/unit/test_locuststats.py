"""Locust's output and stackprobe's listener files, read from what a real run wrote (see data/README.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from stackprobe.locuststats import (
    OPEN_WINDOWS_SOURCE,
    WINDOWS_SOURCE,
    Arrivals,
    histogram_percentile,
    history_path,
    read_arrival_windows,
    read_arrivals,
    read_errors,
    read_history,
    read_totals,
    read_windows,
    read_windows_latency,
    stats_path,
)
from stackprobe.report.model import Latency, Requests

DATA = Path(__file__).parent / "data"
# One run of 2 users for 5 s: GETs of a page, GETs of a missing path (404: failures), request events
# without a response time, and a task that raises now and then. Locust's own figures at quit are in
# locust_expected.json; its windows and errors as stackprobe's listener wrote them.
RUN = DATA / "locust"
EXPECTED: dict[str, Any] = json.loads((DATA / "locust_expected.json").read_text())
WINDOWS = DATA / "locust_windows.jsonl"
ERRORS = DATA / "locust_errors.json"
EMPTY = DATA / "locust_empty"  # 2 users that never sent a request, 3 s
EMPTY_WINDOWS = DATA / "locust_empty_windows.jsonl"


def _first_history_second(prefix: Path) -> float:
    """Return the Timestamp of Locust's first history row: a run's start, just before its first request."""
    return float(history_path(prefix).read_text().splitlines()[1].split(",")[0])


RUN_START = _first_history_second(RUN)
EMPTY_START = _first_history_second(EMPTY)


def _window_lines(path: Path) -> list[dict[str, Any]]:
    return [line for line in map(json.loads, path.read_text().splitlines()) if "format" not in line]


def _window(t: int, response_times: dict[str, int], **counts: Any) -> str:
    line = {
        "t": t,
        "users": 1,
        "num_requests": sum(response_times.values()),
        "num_failures": 0,
        "num_none_requests": 0,
        "total_response_time": 0.0,
        "max_response_time": None,
        "response_times": response_times,
        **counts,
    }
    return json.dumps(line) + "\n"


def test_paths_follow_locusts_prefixes(tmp_path: Path) -> None:
    assert stats_path(tmp_path / "locust") == tmp_path / "locust.json"
    assert history_path(tmp_path / "locust") == tmp_path / "locust_stats_history.csv"


def test_totals_are_locusts_own_aggregated_figures() -> None:
    # Locust's stats.total at quit, written by the recording locustfile: what Locust itself reports.
    totals = read_totals(RUN)
    assert EXPECTED["num_none_requests"] > 0, "the fixture must hold requests without a response time"
    assert totals.requests.total == EXPECTED["num_requests"]
    assert totals.requests.failures == EXPECTED["num_failures"]
    assert totals.latency.p50 == EXPECTED["percentile_0.5"]
    assert totals.latency.p95 == EXPECTED["percentile_0.95"]
    assert totals.latency.p99 == EXPECTED["percentile_0.99"]
    assert totals.latency.avg == pytest.approx(EXPECTED["avg_response_time"], rel=1e-12)
    assert totals.latency.max == EXPECTED["max_response_time"]


def test_totals_leave_requests_without_a_response_time_out_of_latency(tmp_path: Path) -> None:
    # 10 requests, 5 of them without a response time: Locust divides by the 5 that have one.
    entry = {
        "name": "/",
        "method": "GET",
        "num_requests": 10,
        "num_none_requests": 5,
        "num_failures": 0,
        "total_response_time": 230.0,
        "max_response_time": 101.0,
        "response_times": {"10": 3, "100": 2},
        "start_time": 100.0,
        "last_request_timestamp": 105.0,
    }
    (tmp_path / "none.json").write_text(json.dumps([entry]))
    totals = read_totals(tmp_path / "none")
    assert totals.requests.total == 10
    # Counting all 10 would ask for the 5th slowest of 5 timed requests: 0 ms, a figure Locust never shows.
    assert totals.latency == Latency(p50=10.0, p95=100.0, p99=100.0, avg=46.0, max=101.0)


def test_totals_when_no_request_had_a_response_time_have_no_latency(tmp_path: Path) -> None:
    entry = {
        "num_requests": 3,
        "num_none_requests": 3,
        "num_failures": 0,
        "total_response_time": 0,
        "max_response_time": 0,
        "response_times": {},
        "start_time": 100.0,
        "last_request_timestamp": 101.0,
    }
    (tmp_path / "none.json").write_text(json.dumps([entry]))
    totals = read_totals(tmp_path / "none")
    assert totals.requests.total == 3
    assert totals.latency == Latency()


def test_totals_rate_spans_the_first_start_to_the_last_request() -> None:
    entries = json.loads(stats_path(RUN).read_text())
    span = max(e["last_request_timestamp"] for e in entries) - min(e["start_time"] for e in entries)
    assert read_totals(RUN).requests.rps == pytest.approx(EXPECTED["num_requests"] / span, rel=1e-9)


def test_totals_of_a_run_whose_every_request_failed_still_count_them() -> None:
    totals = read_totals(DATA / "locust_refused")
    assert totals.requests.total == totals.requests.failures > 0
    assert totals.requests.failure_ratio == 1.0


def test_totals_of_a_run_without_requests_have_no_latency() -> None:
    totals = read_totals(EMPTY)  # Locust writes [] when no request was made
    assert totals.requests == Requests(total=0, failures=0, rps=0.0, failure_ratio=0.0)
    assert totals.latency == Latency()


def test_totals_that_are_not_a_list_are_refused(tmp_path: Path) -> None:
    (tmp_path / "x.json").write_text("{}")
    with pytest.raises(ValueError, match="list of stats entries"):
        read_totals(tmp_path / "x")


def test_totals_of_a_missing_file_raise_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_totals(tmp_path / "never")


@pytest.mark.parametrize(
    ("q", "expected"), [(0.5, 2.0), (0.8, 10.0), (0.9, 10.0), (0.95, 100.0), (0.99, 100.0), (1.0, 100.0)]
)
def test_histogram_percentile_matches_locusts_rule(q: float, expected: float) -> None:
    # 80 requests at 2 ms, 15 at 10 ms, 5 at 100 ms; like Locust, a boundary rounds up to the slower bucket.
    assert histogram_percentile({2: 80, 10: 15, 100: 5}, 100, q) == expected


def test_histogram_percentile_of_nothing_is_unknown() -> None:
    assert histogram_percentile({}, 0, 0.95) is None


def test_windows_add_up_to_locusts_totals() -> None:
    series = read_windows(WINDOWS, start=RUN_START)
    assert sum(series.rps) == EXPECTED["num_requests"]
    assert sum(series.failures_per_s) == EXPECTED["num_failures"]
    lines = _window_lines(WINDOWS)
    assert sum(line["num_none_requests"] for line in lines) == EXPECTED["num_none_requests"]
    assert max(line["max_response_time"] for line in lines) == EXPECTED["max_response_time"]


def test_windows_are_points_at_each_seconds_end_on_the_run_clock() -> None:
    series = read_windows(WINDOWS, start=RUN_START)
    first = _window_lines(WINDOWS)[0]["t"]
    assert series.source == WINDOWS_SOURCE
    assert series.t == [first + 1 + i - RUN_START for i in range(len(series.t))]
    assert series.users == [2] * len(series.t)


def test_window_percentiles_are_the_ones_locust_computes() -> None:
    # The listener computed p50/p95/p99 with Locust's own function; the reader recomputes them from the
    # histogram (it must, to add up lines of the same second): both must agree on real data.
    series = read_windows(WINDOWS, start=RUN_START)
    lines = _window_lines(WINDOWS)
    assert series.p50_ms == [line["p50"] for line in lines]
    assert series.p95_ms == [line["p95"] for line in lines]
    assert series.p99_ms == [line["p99"] for line in lines]


def test_windows_without_a_response_have_no_latency() -> None:
    series = read_windows(EMPTY_WINDOWS, start=EMPTY_START)
    count = len(series.t)
    assert count >= 3  # a 3 s run, its first and last seconds partly
    assert series.t == [1.0 + i for i in range(count)]
    assert series.users == [2] * count
    assert series.rps == [0.0] * count
    assert series.p95_ms == [None] * count


def test_windows_leave_requests_without_a_response_time_out_of_percentiles(tmp_path: Path) -> None:
    path = tmp_path / "w.jsonl"
    path.write_text(_window(100, {"10": 3, "100": 2}, num_requests=10, num_none_requests=5, num_failures=1))
    series = read_windows(path, start=100.0)
    assert series.rps == [10.0]
    assert series.failures_per_s == [1.0]
    assert (series.p50_ms, series.p95_ms) == ([10.0], [100.0])


def test_windows_of_the_same_second_add_up(tmp_path: Path) -> None:
    # A worker's report that reached the master after the second was written comes as a second line.
    path = tmp_path / "w.jsonl"
    path.write_text(_window(100, {"400": 19}) + _window(101, {"4": 5}) + _window(100, {"4": 1}, users=3))
    series = read_windows(path, start=99.0)
    assert series.t == [2.0, 3.0]
    assert series.rps == [20.0, 5.0]
    assert series.users == [3, 1]
    assert series.p95_ms == [400.0, 4.0]


def test_windows_skip_a_last_line_cut_short(tmp_path: Path) -> None:
    text = WINDOWS.read_text()
    path = tmp_path / "w.jsonl"
    path.write_text(text.rstrip("\n")[:-30])
    assert len(read_windows(path, start=RUN_START).t) == len(_window_lines(WINDOWS)) - 1


def test_windows_with_a_bad_line_name_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "w.jsonl"
    lines = WINDOWS.read_text().splitlines()
    path.write_text("\n".join([lines[0], lines[1], '{"t": 5}', *lines[2:]]) + "\n")
    with pytest.raises(ValueError, match=r"w\.jsonl:3: not a window"):
        read_windows(path, start=RUN_START)


def test_windows_of_another_format_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "w.jsonl"
    path.write_text('{"format": "something else"}\n')
    with pytest.raises(ValueError, match="not 'stackprobe-locust-windows'"):
        read_windows(path, start=0.0)


def test_windows_of_a_missing_file_raise_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_windows(tmp_path / "never.jsonl", start=0.0)


OPEN_HEADER = '{"format": "stackprobe-locust-windows", "version": 1, "window_s": 1, "arrival_rate": 20.0}\n'


def _open_window(t: int, due_times: dict[str, int], sent_times: dict[str, int], arrivals: int, late: float) -> str:
    """Return an open-model window: response times from due (the main histogram) and from sending."""
    uncorrected = {"total_response_time": 0.0, "max_response_time": None, "response_times": sent_times}
    return _window(t, due_times, arrivals=arrivals, lateness_max_ms=late, uncorrected=uncorrected)


def test_open_model_windows_are_timed_from_when_each_arrival_was_due(tmp_path: Path) -> None:
    path = tmp_path / "w.jsonl"
    path.write_text(
        OPEN_HEADER
        + _open_window(100, {"5": 18, "1500": 2}, {"5": 20}, arrivals=20, late=1495.0)
        + _open_window(101, {"5": 20}, {"5": 20}, arrivals=19, late=2.0)
    )
    series = read_windows(path, start=100.0)
    assert series.source == OPEN_WINDOWS_SOURCE
    assert series.p95_ms == [1500.0, 5.0]
    arrivals = read_arrival_windows(path, start=100.0)
    assert arrivals.arrival_rate == 20.0
    assert arrivals.t == series.t == [1.0, 2.0]
    assert arrivals.arrivals_per_s == [20.0, 19.0]
    assert arrivals.lateness_max_ms == [1495.0, 2.0]
    assert arrivals.uncorrected_p95_ms == [5.0, 5.0]


def test_open_model_windows_of_the_same_second_add_up(tmp_path: Path) -> None:
    # Two workers' reports of one second: arrivals, both histograms and the latest arrival add up.
    path = tmp_path / "w.jsonl"
    path.write_text(
        OPEN_HEADER
        + _open_window(100, {"900": 5}, {"400": 5}, arrivals=5, late=500.0)
        + _open_window(100, {"4": 15}, {"4": 15}, arrivals=14, late=1.0)
    )
    arrivals = read_arrival_windows(path, start=99.0)
    assert arrivals.arrivals_per_s == [19.0]
    assert arrivals.lateness_max_ms == [500.0]
    assert arrivals.uncorrected_p50_ms == [4.0]
    assert arrivals.uncorrected_p99_ms == [400.0]
    assert read_windows(path, start=99.0).p99_ms == [900.0]


def test_the_windows_latency_of_a_closed_run_is_locusts() -> None:
    # The listener's windows hold every request of the fixture run: merged, they give Locust's totals.
    assert read_windows_latency(WINDOWS) == read_totals(RUN).latency
    assert read_windows_latency(EMPTY_WINDOWS) == Latency()


def test_the_windows_latency_of_an_open_run_counts_from_due(tmp_path: Path) -> None:
    path = tmp_path / "w.jsonl"
    first = json.loads(_open_window(100, {"5": 18, "1500": 2}, {"5": 20}, arrivals=20, late=1495.0))
    first.update(total_response_time=3090.0, max_response_time=1502.5)
    second = json.loads(_open_window(101, {"5": 20}, {"5": 20}, arrivals=20, late=1.0))
    second.update(total_response_time=100.0, max_response_time=5.2)
    path.write_text(OPEN_HEADER + json.dumps(first) + "\n" + json.dumps(second) + "\n")
    assert read_windows_latency(path) == Latency(p50=5.0, p95=1500.0, p99=1500.0, avg=3190.0 / 40, max=1502.5)


def test_closed_model_windows_have_no_arrivals() -> None:
    arrivals = read_arrival_windows(WINDOWS, start=RUN_START)
    assert arrivals.arrival_rate is None
    assert arrivals.t == arrivals.arrivals_per_s == arrivals.uncorrected_p95_ms == []


def _errors_file(path: Path, arrivals: dict[str, Any] | None) -> Path:
    data = json.loads(ERRORS.read_text())
    data["arrivals"] = arrivals
    path.write_text(json.dumps(data))
    return path


SUMMARY = {
    "arrival_rate": 100.0,
    "load_start": 1796000000.0,
    "load_end": 1796000004.0,
    "load_s": 4.0,
    "started": 160,
    "due": 401,
    "waiting_at_end": 241,
    "achieved_rate": 40.0,
    "lateness_ms": {"p50": 1200, "p95": 2300, "p99": 2400, "max": 2417.5},
    "workers": 1,
}


def test_arrivals_are_the_rate_asked_and_the_rate_started(tmp_path: Path) -> None:
    arrivals = read_arrivals(_errors_file(tmp_path / "e.json", SUMMARY))
    assert arrivals == Arrivals(
        arrival_rate=100.0,
        achieved_rate=40.0,
        started=160,
        due=401,
        waiting_at_end=241,
        load_s=4.0,
        lateness_p50_ms=1200.0,
        lateness_p95_ms=2300.0,
        lateness_p99_ms=2400.0,
        lateness_max_ms=2417.5,
        workers=1,
        final=True,
    )


def test_arrivals_of_a_run_with_no_load_have_no_rate_achieved(tmp_path: Path) -> None:
    summary = {**SUMMARY, "load_s": 0.0, "started": 0, "achieved_rate": None}
    summary["lateness_ms"] = {"p50": None, "p95": None, "p99": None, "max": None}
    arrivals = read_arrivals(_errors_file(tmp_path / "e.json", summary))
    assert arrivals is not None
    assert arrivals.achieved_rate is None
    assert arrivals.lateness_max_ms is None


def test_a_closed_model_run_has_no_arrivals(tmp_path: Path) -> None:
    assert read_arrivals(ERRORS) is None  # written before the open model: no "arrivals" at all
    assert read_arrivals(_errors_file(tmp_path / "e.json", None)) is None


def test_arrivals_without_their_fields_are_refused(tmp_path: Path) -> None:
    summary = {key: value for key, value in SUMMARY.items() if key != "due"}
    with pytest.raises(ValueError, match="arrivals summary without its fields"):
        read_arrivals(_errors_file(tmp_path / "e.json", summary))
    (tmp_path / "x.json").write_text('{"arrivals": {}}')
    with pytest.raises(ValueError, match="not stackprobe's Locust errors file"):
        read_arrivals(tmp_path / "x.json")


def test_failures_are_locusts_with_their_times() -> None:
    failures, _ = read_errors(ERRORS, start=RUN_START)
    expected = EXPECTED["failures"]
    assert [(f["method"], f["name"], f["error"], f["occurrences"]) for f in failures] == [
        (e["method"], e["name"], e["error"], e["occurrences"]) for e in expected
    ]
    # Locust stamps the failure a few microseconds before or after the listener does.
    assert failures[0]["first_t"] == pytest.approx(expected[0]["first_seen"] - RUN_START, abs=0.01)
    assert failures[0]["last_t"] == pytest.approx(expected[0]["last_seen"] - RUN_START, abs=0.01)


def test_exceptions_are_counted_as_locust_counts_them() -> None:
    errors = read_errors(ERRORS, start=RUN_START)
    assert errors.exception_count == EXPECTED["exceptions"] > 0
    assert errors.failure_count == EXPECTED["num_failures"]
    (exception,) = errors.exceptions
    assert (exception["type"], exception["message"]) == ("ValueError", "a bug in the task")
    assert 0 < exception["first_t"] <= exception["last_t"] < 6
    assert exception["traceback"].rstrip().endswith("ValueError: a bug in the task")


def test_errors_of_another_file_are_refused(tmp_path: Path) -> None:
    (tmp_path / "e.json").write_text('{"failures": []}')
    with pytest.raises(ValueError, match="not stackprobe's Locust errors file"):
        read_errors(tmp_path / "e.json", start=0.0)


def test_errors_of_a_missing_file_raise_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_errors(tmp_path / "never.json", start=0.0)


def test_history_keeps_only_aggregated_rows_on_the_run_clock() -> None:
    series = read_history(RUN, start=RUN_START)
    assert series.t == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert series.users == [0, 2, 2, 2, 2]


def test_history_rates_come_from_the_running_totals() -> None:
    # Totals 0, 18, 33, 47, 63 requests and 0, 3, 5, 10, 15 failures, one second apart; Locust's own
    # Requests/s column (0, 0, 0, 6, 12) trails by its two-second window.
    series = read_history(RUN, start=RUN_START)
    assert series.rps == [0.0, 18.0, 15.0, 14.0, 16.0]
    assert series.failures_per_s == [0.0, 3.0, 2.0, 5.0, 5.0]


def test_history_percentiles_are_cumulative_without_full_history() -> None:
    # stackprobe's argv has no --csv-full-history: the Aggregated rows' percentiles are since the start.
    # With under 100 requests Locust's p99 is the slowest so far: it never comes down from the 45 ms of
    # the first second, while the windows of the next seconds see faster ones.
    series = read_history(RUN, start=RUN_START)
    assert series.p95_ms == [None, 45.0, 26.0, 20.0, 40.0]
    assert series.p99_ms == [None, 45.0, 45.0, 45.0, 56.0]
    assert max(read_windows(WINDOWS, start=RUN_START).p99_ms[1:4]) < 45.0


def test_history_of_a_run_without_requests_is_all_zero_and_none() -> None:
    series = read_history(EMPTY, start=EMPTY_START)
    assert series.t == [0.0, 1.0, 2.0]
    assert series.rps == [0.0, 0.0, 0.0]
    assert series.p95_ms == [None, None, None]


def test_history_skips_a_row_cut_short(tmp_path: Path) -> None:
    # Locust stopped while writing its last line.
    text = (DATA / "locust_stats_history.csv").read_text()
    (tmp_path / "cut_stats_history.csv").write_text(text.rstrip("\r\n")[:-40])
    series = read_history(tmp_path / "cut", start=RUN_START)
    assert len(series.t) == 4


def test_history_with_a_bad_number_names_the_file_and_column(tmp_path: Path) -> None:
    text = (DATA / "locust_stats_history.csv").read_text()
    (tmp_path / "bad_stats_history.csv").write_text(
        text.replace("1796019585,2,,Aggregated", "1796019585,x,,Aggregated")
    )
    with pytest.raises(ValueError, match=r"bad_stats_history\.csv: column 'User Count' holds 'x'"):
        read_history(tmp_path / "bad", start=RUN_START)
