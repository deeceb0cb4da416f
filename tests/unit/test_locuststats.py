"""Locust CSV output, read from files a real Locust 2.47 run wrote (see data/README.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from stackprobe.locuststats import histogram_percentile, history_path, read_history, read_totals, stats_path
from stackprobe.report.model import Latency, Requests

DATA = Path(__file__).parent / "data"
RUN = DATA / "locust"  # 40 requests, 6 of them failures (a 404 endpoint), 2 users, 5 s
EMPTY = DATA / "empty"  # 2 users that never sent a request
FINAL_SPAN_S = 1795807703.4424481 - 1795807699.8856716  # locust.json: first start to last request
RUN_START = 1795805534.2  # when the load started, a little before Locust's first history row


def test_paths_follow_locusts_prefixes(tmp_path: Path) -> None:
    assert stats_path(tmp_path / "locust") == tmp_path / "locust.json"
    assert history_path(tmp_path / "locust") == tmp_path / "locust_stats_history.csv"


def test_totals_merge_every_endpoint_of_the_final_json() -> None:
    # locust.json: 94 GETs of a page and 34 of a missing path (404: failures), 2 users, 4 s.
    totals = read_totals(DATA / "locust")
    assert totals.requests == Requests(
        total=128, failures=34, rps=pytest.approx(128 / FINAL_SPAN_S, rel=1e-6), failure_ratio=34 / 128
    )
    assert totals.latency.p50 == 4.0
    assert totals.latency.max == pytest.approx(28.383, abs=1e-3)
    assert totals.latency.p50 <= totals.latency.p95 <= totals.latency.p99 <= totals.latency.max


def test_totals_of_a_run_whose_every_request_failed_still_count_them() -> None:
    totals = read_totals(DATA / "locust_refused")
    assert totals.requests.total == totals.requests.failures > 0
    assert totals.requests.failure_ratio == 1.0


def test_totals_of_a_run_without_requests_have_no_latency(tmp_path: Path) -> None:
    (tmp_path / "none.json").write_text("[]")
    totals = read_totals(tmp_path / "none")
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


def test_history_keeps_only_aggregated_rows_on_the_run_clock() -> None:
    series = read_history(RUN, start=RUN_START)
    assert series.t == pytest.approx([-0.2, 0.8, 1.8, 2.8, 3.8])
    assert series.users == [0, 2, 2, 2, 2]


def test_history_rates_come_from_the_running_totals() -> None:
    # Totals 0, 10, 20, 30, 40 requests and 0, 0, 1, 3, 6 failures, one second apart; Locust's own
    # Requests/s column (0, 0, 0, 2, 6) trails by its two-second window.
    series = read_history(RUN, start=RUN_START)
    assert series.rps == [0.0, 10.0, 10.0, 10.0, 10.0]
    assert series.failures_per_s == [0.0, 0.0, 1.0, 2.0, 3.0]


def test_history_latency_is_none_where_locust_measured_none() -> None:
    # First row "N/A" (no request yet); second row 0 (Locust's window not filled yet).
    series = read_history(RUN, start=RUN_START)
    assert series.p50_ms == [None, None, 5.0, 5.0, 4.0]
    assert series.p95_ms == [None, None, 35.0, 34.0, 34.0]
    assert series.p99_ms == [None, None, 35.0, 35.0, 35.0]


def test_history_of_a_run_without_requests_is_all_zero_and_none() -> None:
    series = read_history(EMPTY, start=1795805540.0)
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
        text.replace("1795805536,2,,Aggregated", "1795805536,x,,Aggregated")
    )
    with pytest.raises(ValueError, match=r"bad_stats_history\.csv: column 'User Count' holds 'x'"):
        read_history(tmp_path / "bad", start=RUN_START)
