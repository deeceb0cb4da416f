"""Figures as people read them in the console and the HTML page."""

from __future__ import annotations

import pytest

from stackprobe.report.fmt import (
    describe_load,
    describe_oom_kills,
    describe_peak_memory,
    describe_trend,
    format_bytes,
    format_check,
    format_count,
    format_duration,
    format_ms,
    format_number,
    format_percent,
    format_ratio,
    format_slo_value,
    format_slope,
    format_t,
    kernel_peak_source,
    oom_counts_disagree,
    other_peaks,
    trend_growth,
    trend_headline,
)
from stackprobe.report.model import Load, Memory, MemoryTrend, Report, SloCheck

MIB = 1024 * 1024


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
    unknown = (format_ms(None), format_percent(None), format_ratio(None), format_number(None), format_count(None))
    assert {*unknown, format_t(None)} == {"n/a"}


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
    assert format_slo_value("mem_slope", 0.5) == "0.5 MiB/min"
    assert format_slo_value("p95", None) == "n/a"


def test_a_check_reads_as_a_sentence() -> None:
    check = SloCheck(metric="p99", op="<=", threshold=1000.0, actual=1234.5678, passed=False)
    assert format_check(check) == "p99 <= 1000 ms (actual 1235 ms)"


def test_times_read_on_the_runs_axis() -> None:
    assert format_t(41.26) == "41.3 s"
    assert format_t(-2.0) == "-2.0 s"


@pytest.mark.parametrize(
    ("version", "source"),
    [(1, "cgroup v1 memory.max_usage_in_bytes"), (2, "cgroup v2 memory.peak"), (None, "cgroup high-water mark")],
)
def test_the_kernel_peak_names_its_cgroup_file(version: int | None, source: str) -> None:
    assert kernel_peak_source(version) == source


def test_a_kernel_peak_reads_with_its_source_and_the_sampled_peak_beside() -> None:
    memory = Memory(
        peak_bytes=110 * MIB,
        peak_source="cgroup v2 memory.peak",
        peak_kernel_bytes=110 * MIB,
        peak_sampled_bytes=12 * MIB,
        limit_bytes=256 * MIB,
        peak_ratio=110 / 256,
    )
    assert other_peaks(memory, 2) == [("docker stats samples", "12.0 MiB")]
    assert describe_peak_memory(memory, 2) == (
        "110.0 MiB of 256.0 MiB (43.0%) — cgroup v2 memory.peak; docker stats samples: 12.0 MiB"
    )


def test_a_peak_that_is_not_the_kernel_mark_shows_the_mark_too() -> None:
    memory = Memory(peak_bytes=256 * MIB, peak_source="the limit", peak_kernel_bytes=200 * MIB)
    assert other_peaks(memory, 1) == [
        ("cgroup v1 memory.max_usage_in_bytes", "200.0 MiB"),
        ("docker stats samples", "none taken"),
    ]


def test_a_sampled_peak_says_the_kernel_mark_was_not_read() -> None:
    memory = Memory(peak_bytes=50 * MIB, peak_sampled_bytes=50 * MIB)
    assert describe_peak_memory(memory, None) == ("50.0 MiB — source not recorded; cgroup high-water mark: not read")


def test_no_peak_at_all_reads_n_a() -> None:
    assert other_peaks(Memory(), 2) == []
    assert describe_peak_memory(Memory(), 2) == "n/a"


def test_oom_kills_read_with_their_source_and_the_engines_count() -> None:
    report = Report(oom_kills=1, oom_kills_source="kernel oom_kill counter (memory.events)", oom_events=1)
    assert describe_oom_kills(report) == "1 — kernel oom_kill counter (memory.events); engine oom events: 1"
    assert not oom_counts_disagree(report)
    report.oom_events = 0
    assert oom_counts_disagree(report)
    assert describe_oom_kills(Report()) == "0 — source not recorded; engine oom events: 0"


def test_the_load_reads_as_asked_and_says_when_it_had_no_shape() -> None:
    load = Load(locustfile="loadtests", users=20, spawn_rate=2.0, duration_s=60.0, shape="ramp")
    assert describe_load(load) == "loadtests: 20 users, spawn rate 2/s, ramp, 60 s"
    load.shape = None
    assert (
        describe_load(load) == "loadtests: 20 users, spawn rate 2/s, no shape (-u users at -r per second for -t), 60 s"
    )


def _trend(slope: float, low: float, high: float, time_to_limit_s: float | None = None) -> MemoryTrend:
    return MemoryTrend(
        slope_mib_per_min=slope,
        slope_low=low,
        slope_high=high,
        intercept_bytes=100.0 * MIB,
        warmup_s=12.0,
        points=48,
        time_to_limit_s=time_to_limit_s,
        source="Theil-Sen slope",
    )


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(None, "n/a"), (45.2, "45 s"), (89, "89 s"), (14 * 60, "14 min"), (3.2 * 3600, "3.2 h"), (60 * 3600, "2.5 days")],
)
def test_durations_read_roughly(seconds: float | None, text: str) -> None:
    assert format_duration(seconds) == text


def test_slopes_read_finer_when_small() -> None:
    assert [format_slope(v) for v in (0.8, 12.34, -0.04, 0.0, 0.123, None)] == [
        "+0.8",
        "+12.3",
        "-0.040",
        "0",
        "+0.12",
        "n/a",
    ]
    assert format_slope(0.5, sign=False) == "0.5"
    assert format_slope(0.5, digits=2) == "+0.50"


def test_a_growing_trend_reads_with_its_interval_and_the_time_to_the_limit() -> None:
    trend = _trend(0.8, 0.5, 1.1, 3.2 * 3600)
    assert trend_growth(trend) == "growing"
    assert describe_trend(trend, Load(shape="steady")) == (
        "+0.8 MiB/min (95 % CI 0.5..1.1) after 12 s warm-up; the limit would be reached in about 3.2 h at this load"
    )
    ramp = describe_trend(trend, Load(shape="ramp"))
    assert ramp.endswith("the limit would be reached in about 3.2 h if it went on (the load was not constant: ramp)")


def test_a_trend_whose_interval_holds_zero_reads_flat() -> None:
    trend = _trend(0.03, -0.2, 0.3)
    assert trend_growth(trend) == "flat"
    assert describe_trend(trend) == "flat: +0.03 MiB/min (95 % CI -0.20..0.30) after 12 s warm-up"
    assert describe_trend(_trend(-1.2, -1.5, -0.9)).startswith("falling: -1.2 MiB/min")


def test_a_growing_trend_without_a_limit_or_already_at_it() -> None:
    assert describe_trend(_trend(2.0, 1.8, 2.2)).endswith("after 12 s warm-up; no limit to reach")
    assert describe_trend(_trend(2.0, 1.8, 2.2, 0.0)).endswith(
        "the fitted line had reached the limit by the load's end"
    )


def test_no_trend_says_why() -> None:
    assert describe_trend(None) == "not fitted (fewer than 10 memory samples of the target after the warm-up)"


@pytest.mark.parametrize("shape", ["steady", "soak", None])
def test_the_time_to_the_limit_is_the_headline_of_a_constant_load(shape: str | None) -> None:
    report = Report(load=Load(shape=shape), memory=Memory(trend=_trend(0.8, 0.5, 1.1, 3.2 * 3600)))
    assert (
        trend_headline(report)
        == "At this load the memory limit is reached in about 3.2 h (+0.8 MiB/min after the warm-up)"
    )


def test_no_headline_without_growth_a_limit_or_a_constant_load() -> None:
    growing = _trend(0.8, 0.5, 1.1, 3.2 * 3600)
    assert trend_headline(Report(load=Load(shape="ramp"), memory=Memory(trend=growing))) is None
    assert trend_headline(Report(memory=Memory(trend=_trend(0.8, 0.5, 1.1)))) is None
    assert trend_headline(Report(memory=Memory(trend=_trend(0.03, -0.2, 0.3)))) is None
    assert trend_headline(Report()) is None


def test_an_open_model_load_reads_with_its_rate_asked_and_achieved() -> None:
    load = Load(locustfile="loadtests", users=100, spawn_rate=100, duration_s=60, arrival_rate=100, achieved_rate=99.78)
    assert describe_load(load).endswith("; open model: 100 arrivals/s asked, 99.8/s achieved")
