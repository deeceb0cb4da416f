"""Locust CSV output, read from files a real Locust 2.47 run wrote (see data/README.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from stackprobe.locuststats import history_path, read_history, read_totals, stats_path
from stackprobe.report.model import Latency, Requests

DATA = Path(__file__).parent / "data"
RUN = DATA / "locust"  # 40 requests, 6 of them failures (a 404 endpoint), 2 users, 5 s
EMPTY = DATA / "empty"  # 2 users that never sent a request
RUN_START = 1795805534.2  # when the load started, a little before Locust's first history row


def test_paths_follow_locusts_csv_prefix(tmp_path: Path) -> None:
    assert stats_path(tmp_path / "locust") == tmp_path / "locust_stats.csv"
    assert history_path(tmp_path / "locust") == tmp_path / "locust_stats_history.csv"


def test_totals_come_from_the_aggregated_row() -> None:
    totals = read_totals(RUN)
    assert totals.requests == Requests(total=40, failures=6, rps=pytest.approx(10.0513, abs=1e-4), failure_ratio=0.15)
    assert totals.latency == Latency(
        p50=4.0, p95=34.0, p99=35.0, avg=pytest.approx(7.3018, abs=1e-4), max=pytest.approx(35.2217, abs=1e-4)
    )


def test_totals_of_a_run_without_requests_have_no_latency() -> None:
    totals = read_totals(EMPTY)
    assert totals.requests == Requests(total=0, failures=0, rps=0.0, failure_ratio=0.0)
    assert totals.latency == Latency()


def test_totals_without_an_aggregated_row_are_refused(tmp_path: Path) -> None:
    lines = (DATA / "locust_stats.csv").read_text().splitlines()
    (tmp_path / "x_stats.csv").write_text("\n".join(line for line in lines if ",Aggregated," not in line))
    with pytest.raises(ValueError, match="no Aggregated row"):
        read_totals(tmp_path / "x")


def test_totals_of_a_missing_file_raise_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_totals(tmp_path / "never")


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
