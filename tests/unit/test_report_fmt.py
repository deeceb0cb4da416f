"""Figures as people read them in the console and the HTML page."""

from __future__ import annotations

import pytest

from stackprobe.report.fmt import (
    format_bytes,
    format_check,
    format_count,
    format_ms,
    format_number,
    format_percent,
    format_ratio,
    format_slo_value,
)
from stackprobe.report.model import SloCheck


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "n/a"),
        (0, "0 B"),
        (1023, "1023 B"),
        (1024, "1.0 KiB"),
        (1024**2, "1.0 MiB"),
        (1024**3 - 1, "1024.0 MiB"),
        (1024**3, "1.0 GiB"),
        (256 * 1024 * 1024, "256.0 MiB"),
        (int(1.5 * 1024**3), "1.5 GiB"),
        (3 * 1024**5, "3072.0 TiB"),
        (-1, "unlimited"),
    ],
)
def test_bytes_read_in_binary_units(value: int | None, text: str) -> None:
    assert format_bytes(value) == text


def test_unknown_figures_read_n_a() -> None:
    assert {format_ms(None), format_percent(None), format_ratio(None), format_number(None), format_count(None)} == {
        "n/a"
    }


def test_numbers_read_with_their_units() -> None:
    assert format_ms(153.24) == "153.2 ms"
    assert format_percent(42.0) == "42.0%"
    assert format_ratio(0.0546, 2) == "5.46%"
    assert format_number(7412) == "7,412"
    assert format_number(2.0) == "2"
    assert format_number(123.456) == "123.5"


def test_slo_values_read_with_their_metrics_unit() -> None:
    assert format_slo_value("p95", 200.0) == "200 ms"
    assert format_slo_value("errors", 0.5) == "0.5%"
    assert format_slo_value("rps", 50.0) == "50 req/s"
    assert format_slo_value("p95", None) == "n/a"


def test_a_check_reads_as_a_sentence() -> None:
    check = SloCheck(metric="p99", op="<=", threshold=1000.0, actual=1234.5678, passed=False)
    assert format_check(check) == "p99 <= 1000 ms (actual 1235 ms)"
