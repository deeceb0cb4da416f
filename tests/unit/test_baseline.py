"""The baseline gate: --max-regression's bounds, a run held against a base run, and the verdict it gives."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import jsonschema
import pytest
from rich.console import Console

from stackprobe.baseline import (
    DEFAULT_MAX_REGRESSION,
    BaselineGate,
    check_base,
    compare,
    gate_from_flags,
    parse_bounds,
    read_report,
    setup_of,
    setup_of_spec,
)
from stackprobe.report import Report, load_report, load_schema, render_console
from stackprobe.report.model import Baseline, BaselineFigure, MemoryTrend
from stackprobe.report.page import html_page
from stackprobe.spec import RunSpec, UsageError

DATA = Path(__file__).parent / "data"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def base() -> Report:
    """A real passing run of the bundled stack (72 MiB, 20 users, 30 s)."""
    return load_report(DATA / "report_pass.json")


@pytest.fixture
def rerun() -> Report:
    """The same run made again on the same machine: the run-to-run noise."""
    return load_report(DATA / "report_pass_rerun.json")


def _figure(report: Report, metric: str) -> BaselineFigure:
    assert report.baseline is not None
    return _one(report.baseline, metric)


def _one(baseline: Baseline, metric: str) -> BaselineFigure:
    (figure,) = [f for f in baseline.figures if f.metric == metric]
    return figure


def test_bounds_read_relative_and_absolute_terms_with_the_worse_direction() -> None:
    bounds = {b.metric: b for b in parse_bounds("p95:10%,peak_memory:+8MiB,rps:-10%,errors:+0.5pp,p99:+0.2s")}
    assert bounds["p95"].relative == pytest.approx(0.10)
    assert bounds["p95"].allowed(100.0) == pytest.approx(110.0)
    assert bounds["peak_memory"].allowed(64 * 1024**2) == 72 * 1024**2
    assert bounds["rps"].allowed(500.0) == pytest.approx(450.0)
    assert bounds["errors"].allowed(1.0) == pytest.approx(1.5)
    assert bounds["p99"].allowed(100.0) == pytest.approx(300.0)
    assert bounds["rps"].text == "-10%"
    assert bounds["p95"].text == "+10%"


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "is empty"),
        ("p95", "expected METRIC:BOUND"),
        ("p95:", "expected METRIC:BOUND"),
        ("latency:10%", "unknown figure 'latency'"),
        ("oom_kills:10%", "unknown figure 'oom_kills'"),
        ("p95:10%,p95:20%", "p95 is given twice"),
        ("rps:+10%", "rps regresses when it falls, so its bound is -N (e.g. rps:-10%)"),
        ("p95:-10%", "p95 regresses when it rises"),
        ("p95:10MiB", "not a bound for p95 (expected 10% or 20ms)"),
        ("peak_memory:20ms", "not a bound for peak_memory"),
        ("p95:ten%", "not a bound for p95"),
    ],
)
def test_bad_bounds_are_usage_errors_naming_the_term(text: str, words: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_bounds(text)
    assert words in str(caught.value)


def test_equal_reports_pass_the_gate(base: Report) -> None:
    new = copy.deepcopy(base)
    BaselineGate(base=base, path=Path("base.json"), bounds=parse_bounds(DEFAULT_MAX_REGRESSION), spec="").apply(new)
    assert new.verdict == "pass"
    assert new.reasons == []
    assert new.baseline is not None
    assert not new.baseline.regressed
    assert _figure(new, "p95").change == 0


def test_a_rerun_of_the_same_load_is_within_the_default_bounds(base: Report, rerun: Report) -> None:
    BaselineGate(base=base, path=Path("base.json"), bounds=parse_bounds(DEFAULT_MAX_REGRESSION), spec="").apply(rerun)
    assert rerun.verdict == "pass", rerun.reasons


def test_a_doctored_p95_regression_fails_the_run_naming_both_figures_and_the_source(base: Report) -> None:
    new = copy.deepcopy(base)
    new.latency_ms.p95 = 13.0  # base 10 ms: +30 %
    bounds = parse_bounds("p95:10%,peak_memory:5%,rps:-10%")
    BaselineGate(base=base, path=Path("last-good/report.json"), bounds=bounds, spec="p95:10%").apply(new)
    assert new.verdict == "fail"
    (reason,) = new.reasons
    assert reason == (
        "regression against the base run: p95 13.0 ms against 10.0 ms in the base run (+30.0%; allowed +10% "
        "(at most 11.0 ms); Locust's end-of-run totals, latency_ms.p95)"
    )
    assert _figure(new, "p95").regressed
    assert not _figure(new, "rps").regressed


def test_a_drop_in_rps_beyond_its_bound_is_a_regression_and_a_rise_is_not(base: Report) -> None:
    bounds = parse_bounds("rps:-10%")
    slower, faster = copy.deepcopy(base), copy.deepcopy(base)
    slower.requests.rps = base.requests.rps * 0.85
    faster.requests.rps = base.requests.rps * 1.5
    assert compare(base, slower, bounds).regressed
    assert not compare(base, faster, bounds).regressed


def test_peak_memory_beyond_an_absolute_bound_regresses_with_its_source(base: Report) -> None:
    new = copy.deepcopy(base)
    new.memory.peak_bytes = base.memory.peak_bytes + 9 * 1024**2
    figure = _one(compare(base, new, parse_bounds("peak_memory:+8MiB")), "peak_memory")
    assert figure.regressed
    assert figure.source == base.memory.peak_source
    assert figure.allowed == base.memory.peak_bytes + 8 * 1024**2


def test_errors_rising_from_zero_regress_under_a_relative_bound(base: Report) -> None:
    new = copy.deepcopy(base)
    new.requests.failure_ratio = 0.001
    figure = _one(compare(base, new, parse_bounds("errors:50%")), "errors")
    assert figure.regressed
    assert figure.change is None  # no relative change from 0


def test_a_bounded_figure_the_new_run_did_not_measure_makes_it_inconclusive(base: Report) -> None:
    new = copy.deepcopy(base)
    new.latency_ms.p95 = None
    BaselineGate(base=base, path=Path("b.json"), bounds=parse_bounds("p95:10%"), spec="").apply(new)
    assert new.verdict == "inconclusive"
    assert any("baseline: p95 was not measured in this run" in r for r in new.reasons)


def test_a_regression_outranks_what_could_not_be_seen(base: Report) -> None:
    new = copy.deepcopy(base)
    new.latency_ms.p95 = 50.0
    new.problems = ["the event stream did not cover the run"]
    BaselineGate(base=base, path=Path("b.json"), bounds=parse_bounds("p95:10%"), spec="").apply(new)
    assert new.verdict == "fail"
    assert new.reasons[0].startswith("regression against the base run: p95")
    assert new.reasons[1].startswith("inconclusive: ")


def test_the_memory_slope_is_shown_as_a_difference_not_a_relative_change(base: Report, rerun: Report) -> None:
    baseline = compare(base, rerun, ())
    slope = _one(baseline, "mem_slope")
    assert slope.change is None
    assert slope.bound is None
    assert not baseline.regressed


def test_a_base_made_with_another_load_or_limit_is_a_usage_error(base: Report) -> None:
    oom = load_report(DATA / "report_oom.json")
    with pytest.raises(UsageError) as caught:
        check_base(base, Path("base.json"), (), setup_of(oom))
    message = str(caught.value)
    assert "the base run was made differently" in message
    assert "target service (app in the base run, users here)" in message
    assert "memory limit asked (72.0 MiB in the base run, 256.0 MiB here)" in message


def test_a_base_without_a_bounded_figure_is_a_usage_error(base: Report) -> None:
    hollow = copy.deepcopy(base)
    hollow.memory.peak_bytes = None
    with pytest.raises(UsageError, match="the base run has no peak_memory figure"):
        check_base(hollow, Path("base.json"), parse_bounds("peak_memory:5%"), setup_of(base))


def test_the_spec_of_a_run_not_yet_made_is_checked_against_the_base_before_it_starts(base: Report) -> None:
    spec = RunSpec(
        compose_files=(ROOT / "docker-compose.yml",),
        locustfile=ROOT / "loadtests",
        memory_bytes=72 * 1024**2,
        duration_s=30.0,
    )
    check_base(base, Path("base.json"), parse_bounds(DEFAULT_MAX_REGRESSION), setup_of_spec(spec))
    longer = dataclasses.replace(spec, duration_s=60.0)
    with pytest.raises(UsageError, match=r"duration in seconds \(30 in the base run, 60 here\)"):
        check_base(base, Path("base.json"), (), setup_of_spec(longer))


def test_a_base_that_cannot_be_read_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"no report\.json there"):
        read_report(tmp_path)
    (tmp_path / "report.json").write_text("{not json")
    with pytest.raises(UsageError, match=r"not a stackprobe report\.json"):
        read_report(tmp_path)
    (tmp_path / "report.json").write_text('{"schema_version": 1}')
    with pytest.raises(UsageError, match="schema_version 1 is not 3"):
        read_report(tmp_path / "report.json")


def test_max_regression_without_a_baseline_is_a_usage_error() -> None:
    spec = RunSpec(compose_files=(ROOT / "docker-compose.yml",), locustfile=ROOT / "loadtests")
    with pytest.raises(UsageError, match="--max-regression needs --baseline"):
        gate_from_flags(None, "p95:10%", spec)
    assert gate_from_flags(None, None, spec) is None


def test_the_gate_uses_the_default_bounds_when_none_are_given() -> None:
    spec = RunSpec(
        compose_files=(ROOT / "docker-compose.yml",),
        locustfile=ROOT / "loadtests",
        memory_bytes=72 * 1024**2,
        duration_s=30.0,
    )
    gate = gate_from_flags(DATA / "report_pass.json", None, spec)
    assert gate is not None
    assert gate.spec == DEFAULT_MAX_REGRESSION
    assert [b.metric for b in gate.bounds] == ["p95", "peak_memory", "rps"]


def test_the_baseline_section_round_trips_through_report_json(base: Report) -> None:
    new = copy.deepcopy(base)
    new.memory.trend = MemoryTrend(slope_mib_per_min=0.5, source="Theil-Sen")
    BaselineGate(base=base, path=Path("b.json"), bounds=parse_bounds("p95:10%"), spec="p95:10%").apply(new)
    assert Report.from_json(new.to_json()) == new


def test_a_report_with_a_baseline_section_is_valid_against_the_schema(base: Report) -> None:
    new = copy.deepcopy(base)
    new.latency_ms.p95 = 99.0
    BaselineGate(base=base, path=Path("b.json"), bounds=parse_bounds("p95:10%"), spec="p95:10%").apply(new)
    jsonschema.Draft202012Validator(load_schema()).validate(new.to_dict())


def test_the_schema_requires_every_field_of_the_baseline_section() -> None:
    node = load_schema()["properties"]["baseline"]
    assert node["required"] == [f.name for f in dataclasses.fields(Baseline)]
    figure = node["properties"]["figures"]["items"]
    assert figure["required"] == [f.name for f in dataclasses.fields(BaselineFigure)]


def test_the_page_shows_both_runs_side_by_side(base: Report) -> None:
    new = copy.deepcopy(base)
    new.latency_ms.p95 = 13.0
    BaselineGate(base=base, path=Path("last/report.json"), bounds=parse_bounds("p95:10%"), spec="p95:10%").apply(new)
    page = html_page(new)
    section = page[page.index('<div id="baseline">') :]
    assert "<h2>Against the base run <code>last/report.json</code></h2>" in page
    assert (
        "<tr><td>p95</td><td>10.0 ms</td><td>13.0 ms</td><td>+30.0%</td><td>+10% (at most 11.0 ms)</td>"
        '<td><span class="bad">regressed</span></td>'
    ) in section
    assert "<td>peak_memory</td><td>66.0 MiB</td><td>66.0 MiB</td><td>=</td><td></td><td></td>" in section


def test_a_page_without_a_baseline_has_no_baseline_section(base: Report) -> None:
    assert 'id="baseline"' not in html_page(base)


def test_the_console_shows_both_runs_side_by_side(base: Report) -> None:
    new = copy.deepcopy(base)
    new.requests.rps = base.requests.rps / 2
    BaselineGate(base=base, path=Path("b.json"), bounds=parse_bounds("rps:-10%"), spec="rps:-10%").apply(new)
    console = Console(record=True, width=140, color_system=None, force_terminal=False)
    render_console(new, console)
    text = console.export_text()
    assert "Against the base run b.json" in text
    row = next(line for line in text.splitlines() if line.startswith("│ rps "))
    assert [cell.strip() for cell in row.split("│")[1:-1]] == [
        "rps",
        "762.7 req/s",
        "381.3 req/s",
        "-50.0%",
        "-10% (at least 686.4 req/s)",
        "regressed",
    ]
    assert "verdict: FAIL" in text
