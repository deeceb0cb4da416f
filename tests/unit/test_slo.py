"""SLO specs: parsing, the errors that name the bad term, and checks against a report."""

from __future__ import annotations

import pytest

from stackprobe.report.model import Latency, Memory, MemoryTrend, Report, Requests, SloCheck
from stackprobe.report.verdict import judge
from stackprobe.slo import SloRule, check, evaluate_slo, parse_slo, request_slo


def _report(**latency: float | None) -> Report:
    return Report(
        requests=Requests(total=1000, failures=5, rps=120.0, failure_ratio=0.005),
        latency_ms=Latency(**{"p50": 20.0, "p95": 150.0, "p99": 400.0, "avg": 30.0, "max": 900.0, **latency}),
    )


def test_parse_reads_every_metric_and_operator() -> None:
    rules = parse_slo("p50<50ms, p95<=0.2s,p99 < 1s,avg<40ms,max<2s,errors<1%,rps>=100")
    assert rules == [
        SloRule("p50", "<", 50.0),
        SloRule("p95", "<=", 200.0),
        SloRule("p99", "<", 1000.0),
        SloRule("avg", "<", 40.0),
        SloRule("max", "<", 2000.0),
        SloRule("errors", "<", 1.0),
        SloRule("rps", ">=", 100.0),
    ]


def test_parse_accepts_upper_case_and_spaces() -> None:
    assert parse_slo(" P95 > 1.5 MS , ERRORS<=0.5% ") == [SloRule("p95", ">", 1.5), SloRule("errors", "<=", 0.5)]


def test_parse_of_an_empty_spec_has_no_rules() -> None:
    assert parse_slo("") == []
    assert parse_slo("   ") == []


def test_rule_reads_back_as_a_spec_term() -> None:
    assert [str(rule) for rule in parse_slo("p95<0.2s,errors<1%,rps>5")] == ["p95<200ms", "errors<1%", "rps>5/s"]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("p90<200ms", r"'p90<200ms'.*unknown metric 'p90'"),
        ("mem_slope<0.5", r"'mem_slope<0.5'.*mem_slope needs a unit, MiB/min or KiB/min, got 'none'"),
        ("mem_slope<0.5MiB/h", r"'mem_slope<0.5MiB/h'.*MiB/min or KiB/min, got 'mib/h'"),
        ("mem_slope<0.5MB/min", r"'mem_slope<0.5MB/min'.*MiB/min or KiB/min, got 'mb/min'"),
        ("p95=200ms", r"'p95=200ms'.*operator must be one of < <= > >=, got '='"),
        ("p95<200", r"'p95<200'.*latency needs a unit, ms or s, got 'none'"),
        ("p95<200us", r"'p95<200us'.*latency needs a unit, ms or s, got 'us'"),
        ("errors<1", r"'errors<1'.*needs %"),
        ("errors<101%", r"'errors<101%'.*cannot exceed 100%"),
        ("errors<0%", r"'errors<0%'.*errors is never below 0; use <= 0"),
        ("p95<0ms", r"'p95<0ms'.*p95 is never below 0"),
        ("rps>10ms", r"'rps>10ms'.*plain number"),
        ("p95<abc", r"'p95<abc'.*threshold 'abc'"),
        ("p95<-1ms", r"'p95<-1ms'.*threshold '-1ms'"),
        ("p95<1.2.3ms", r"'p95<1.2.3ms'.*threshold '1.2.3ms'"),
        ("p95", r"'p95'.*operator"),
        ("p95<200ms,,errors<1%", r"''.*empty term"),
        ("p95<200ms,errors<1%,", r"''.*empty term"),
        ("p95<200ms errors<1%", r"'p95<200ms errors<1%'.*expected METRIC OP NUMBER"),
    ],
)
def test_bad_specs_raise_a_value_error_naming_the_bad_term(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_slo(spec)


def test_check_compares_with_the_operator() -> None:
    rule = SloRule("p95", "<", 200.0)
    assert check(rule, 150.0).passed
    assert not check(rule, 200.0).passed
    assert check(SloRule("p95", "<=", 200.0), 200.0).passed


def test_check_of_an_unmeasured_figure_fails() -> None:
    assert check(SloRule("p95", "<", 200.0), None) == SloCheck(
        metric="p95", op="<", threshold=200.0, actual=None, passed=False
    )


def test_evaluate_reads_latency_errors_and_rps_from_the_report() -> None:
    slo = evaluate_slo("p95<200ms,errors<1%,rps>100", _report())
    assert [(c.metric, c.actual, c.passed) for c in slo.checks] == [
        ("p95", 150.0, True),
        ("errors", 0.5, True),
        ("rps", 120.0, True),
    ]
    assert slo.passed
    assert slo.spec == "p95<200ms,errors<1%,rps>100"


def test_evaluate_fails_when_any_check_fails() -> None:
    slo = evaluate_slo("p95<200ms,p99<300ms", _report())
    assert [c.passed for c in slo.checks] == [True, False]
    assert not slo.passed


def test_no_check_is_met_by_a_run_without_requests() -> None:
    slo = evaluate_slo("p95<200ms,errors<1%,rps>=0", Report())
    assert [(c.actual, c.passed) for c in slo.checks] == [(None, False), (None, False), (None, False)]
    assert not slo.passed


@pytest.mark.parametrize(("failures", "passed"), [(7, True), (8, False)])
def test_the_errors_boundary_is_exact(failures: int, passed: bool) -> None:
    # 7 / 100 * 100 is 7.000000000000001 in floating point: the check must still hold at 7 %.
    report = Report(requests=Requests(total=100, failures=failures, failure_ratio=failures / 100))
    (only,) = evaluate_slo("errors<=7%", report).checks
    assert (only.actual, only.passed) == (float(failures), passed)


def test_a_fractional_errors_threshold_is_read_as_written() -> None:
    report = Report(requests=Requests(total=1000, failures=3, failure_ratio=0.003))
    assert evaluate_slo("errors<=0.3%", report).passed
    assert not evaluate_slo("errors<0.3%", report).passed


def test_evaluate_of_an_empty_spec_passes() -> None:
    slo = evaluate_slo("", _report())
    assert (slo.checks, slo.passed) == ([], True)


def test_evaluate_raises_on_a_bad_spec() -> None:
    with pytest.raises(ValueError, match="unknown metric 'latency'"):
        evaluate_slo("latency<1s", _report())


def _trending(slope: float | None, low: float = -0.1, high: float = 0.1) -> Report:
    trend = MemoryTrend(slope_mib_per_min=slope, slope_low=low, slope_high=high, intercept_bytes=1.0, points=50)
    report = _report()
    report.memory = Memory(trend=trend)
    return report


def test_parse_reads_the_memory_slope_in_mib_or_kib_per_minute() -> None:
    assert parse_slo("mem_slope<0.5MiB/min, mem_slope <= 512 KiB/min,MEM_SLOPE<1mib/min") == [
        SloRule("mem_slope", "<", 0.5),
        SloRule("mem_slope", "<=", 0.5),
        SloRule("mem_slope", "<", 1.0),
    ]
    assert [str(rule) for rule in parse_slo("mem_slope<256KiB/min")] == ["mem_slope<0.25MiB/min"]


def test_the_memory_slope_is_checked_against_the_fitted_slope() -> None:
    slo = evaluate_slo("p95<200ms,mem_slope<0.5MiB/min", _trending(0.8, 0.5, 1.1))
    assert [(c.metric, c.actual, c.passed) for c in slo.checks] == [("p95", 150.0, True), ("mem_slope", 0.8, False)]
    assert not slo.passed
    assert evaluate_slo("mem_slope<0.5MiB/min", _trending(0.02)).passed
    # A falling slope holds a bound from above.
    assert evaluate_slo("mem_slope<0.5MiB/min", _trending(-3.0, -3.5, -2.5)).passed


@pytest.mark.parametrize("report", [_report(), _trending(None)])
def test_a_run_without_a_trend_leaves_the_memory_slope_unmeasured(report: Report) -> None:
    slo = evaluate_slo("p95<200ms,mem_slope<0.5MiB/min", report)
    assert slo.checks[1] == SloCheck(metric="mem_slope", op="<", threshold=0.5, actual=None, passed=False)
    assert not slo.passed
    # Nothing was seen to go wrong, but the figure is missing: inconclusive, never pass.
    report.slo = slo
    report.limits.applied_matches = True
    assert judge(report) == ("inconclusive", ["inconclusive: SLO not measured: mem_slope < 0.5 MiB/min (actual n/a)"])


def test_request_slo_leaves_out_the_terms_a_step_cannot_judge() -> None:
    assert request_slo("p95<200ms, mem_slope<0.5MiB/min,errors<1%") == "p95<200ms,errors<1%"
    assert request_slo("mem_slope<0.5MiB/min") == ""
    assert request_slo("") == ""
    with pytest.raises(ValueError, match="unknown metric 'p90'"):
        request_slo("p90<1s")
