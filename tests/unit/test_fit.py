"""The fit's search and recommendations on synthetic and recorded outcomes: no Docker.

Each synthetic service has a known need (MiB): a limit at or above it passes, below it fails; some add
inconclusive runs, flaky failures at the boundary, or a clock that runs out of budget.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from rich.console import Console

from stackprobe import fit
from stackprobe.fit import (
    KRR_SOURCE,
    VPA_MIN_BYTES,
    VPA_SOURCE,
    Outcome,
    Planned,
    build_grid,
    krr_style,
    nearest_rank_percentile,
    recommended_limit,
    round_up_to_step,
    search_limit,
    vpa_style,
)
from stackprobe.report.comparison import RunRow, load_fit_schema, row_from_report
from stackprobe.report.comparison_console import render_fit_console
from stackprobe.report.comparison_page import fit_page
from stackprobe.report.model import Report
from stackprobe.spec import RunSpec, UsageError

MIB = 1024 * 1024
DATA = Path(__file__).parent / "data"
GRID = build_grid(32 * MIB, 512 * MIB, 8 * MIB, integer=True)


class Service:
    """A synthetic service: passes at or above `need` MiB, fails below; scripted exceptions per limit."""

    def __init__(self, need_mib: float, script: dict[int, list[str]] | None = None, seconds: float = 10.0) -> None:
        self.need = need_mib * MIB
        self.script = {mib * MIB: list(verdicts) for mib, verdicts in (script or {}).items()}
        self.calls: list[float] = []
        self.now = 0.0
        self.seconds = seconds

    def clock(self) -> float:
        return self.now

    def __call__(self, limit: float) -> Outcome:
        self.calls.append(limit)
        self.now += self.seconds
        scripted = self.script.get(int(limit))
        verdict = scripted.pop(0) if scripted else ("pass" if limit >= self.need else "fail")
        peak = int(min(limit, self.need)) if verdict != "inconclusive" else None
        return Outcome(verdict=verdict, reasons=(verdict,), peak_bytes=peak)  # type: ignore[arg-type]


def mib(values: list[float]) -> list[float]:
    return [v / MIB for v in values]


def test_the_grid_steps_from_low_to_high_and_keeps_high_off_the_step() -> None:
    assert mib(build_grid(32 * MIB, 64 * MIB, 16 * MIB, integer=True)) == [32, 48, 64]
    assert mib(build_grid(32 * MIB, 70 * MIB, 16 * MIB, integer=True)) == [32, 48, 64, 70]
    assert build_grid(0.25, 2, 0.25, integer=False) == [0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0]
    assert build_grid(0.1, 0.5, 0.1, integer=False) == [0.1, 0.2, 0.3, 0.4, 0.5]
    assert len(GRID) == 61


@pytest.mark.parametrize(
    ("low", "high", "step", "message"),
    [
        (64, 32, 8, "lower to a higher"),
        (32, 32, 8, "lower to a higher"),
        (32, 64, 0, "above 0"),
        (6, 1e9, 1, "at most"),
    ],
)
def test_a_grid_that_cannot_be_searched_is_a_usage_error(low: float, high: float, step: float, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        build_grid(low * MIB, high * MIB, step * MIB, integer=True)


def test_a_monotone_need_is_found_within_one_step_with_a_failing_limit_below() -> None:
    service = Service(need_mib=97)
    search = search_limit(GRID, service, repeat=1, clock=service.clock)
    assert search.status == "found"
    assert search.lowest_holding == 104 * MIB
    assert search.highest_failing == 96 * MIB
    assert search.exit_code == 0
    # The top first (does anything hold?), then bisection: about log2(61) runs, not 61.
    assert service.calls[0] == 512 * MIB
    assert len(service.calls) <= 8


@pytest.mark.parametrize("need", [33, 40, 64, 100, 255, 256, 257, 500, 511])
def test_every_need_in_the_range_is_bracketed_by_adjacent_limits(need: float) -> None:
    service = Service(need_mib=need)
    search = search_limit(GRID, service, repeat=2, clock=service.clock)
    assert search.status == "found"
    assert search.lowest_holding is not None
    assert search.highest_failing is not None
    assert search.highest_failing < need * MIB <= search.lowest_holding
    assert search.lowest_holding - search.highest_failing == 8 * MIB


def test_the_found_limit_passes_every_time_it_is_repeated() -> None:
    service = Service(need_mib=97)
    search = search_limit(GRID, service, repeat=3, clock=service.clock)
    assert search.confirmed
    assert service.calls.count(104 * MIB) == 3
    assert [a.phase for a in search.attempts if a.value == 104 * MIB] == ["search", "confirm", "confirm"]
    point = next(p for p in search.points if p.value == 104 * MIB)
    assert (point.status, point.passed, point.failed) == ("hold", 3, 0)


def test_a_failure_while_confirming_moves_the_bracket_up() -> None:
    # 104 MiB passes once, then fails: it does not hold; 112 MiB is the answer, and it is confirmed in turn.
    service = Service(need_mib=97, script={104: ["pass", "fail"]})
    search = search_limit(GRID, service, repeat=3, clock=service.clock)
    assert search.status == "found"
    assert search.highest_failing == 104 * MIB
    assert search.lowest_holding == 112 * MIB
    assert service.calls.count(112 * MIB) == 3
    assert search.confirmed


def test_the_bottom_of_the_range_holding_is_found_with_no_failing_limit() -> None:
    service = Service(need_mib=10)
    search = search_limit(GRID, service, repeat=1, clock=service.clock)
    assert search.status == "found"
    assert search.lowest_holding == 32 * MIB
    assert search.highest_failing is None
    assert search.exit_code == 0


def test_when_the_top_fails_no_limit_holds_and_nothing_else_is_run() -> None:
    service = Service(need_mib=600)
    search = search_limit(GRID, service, repeat=3, clock=service.clock)
    assert search.status == "none_holds"
    assert search.exit_code == 1
    assert service.calls == [512 * MIB]
    assert search.lowest_holding is None
    assert search.highest_failing == 512 * MIB


def test_an_inconclusive_run_is_retried_once_and_the_retry_decides() -> None:
    service = Service(need_mib=97, script={96: ["inconclusive", "fail"], 104: ["inconclusive", "pass"]})
    search = search_limit(GRID, service, repeat=1, clock=service.clock)
    assert search.status == "found"
    assert (search.highest_failing, search.lowest_holding) == (96 * MIB, 104 * MIB)
    retries = [(a.value / MIB, a.outcome.verdict) for a in search.attempts if a.retry]
    assert sorted(retries) == [(96, "fail"), (104, "pass")]


def test_a_limit_inconclusive_twice_is_neither_pass_nor_fail_and_leaves_the_bracket_uncertain() -> None:
    service = Service(need_mib=97, script={96: ["inconclusive", "inconclusive"]})
    search = search_limit(GRID, service, repeat=1, clock=service.clock)
    assert service.calls.count(96 * MIB) == 2  # once, and one retry: no more
    assert search.status == "uncertain"
    assert search.exit_code == 3
    assert search.uncertain == [96 * MIB]
    # The search went on around it: the limits on both sides are known.
    assert (search.highest_failing, search.lowest_holding) == (88 * MIB, 104 * MIB)
    point = next(p for p in search.points if p.value == 96 * MIB)
    assert (point.status, point.passed, point.failed, point.inconclusive) == ("uncertain", 0, 0, 1)


def test_an_inconclusive_top_is_never_counted_as_holding() -> None:
    service = Service(need_mib=600, script={512: ["inconclusive", "inconclusive"]})
    search = search_limit(GRID, service, repeat=1, clock=service.clock)
    assert search.lowest_holding is None
    assert search.status == "uncertain"
    assert search.exit_code == 3


def test_an_inconclusive_confirmation_leaves_the_found_limit_unconfirmed() -> None:
    service = Service(need_mib=97, script={104: ["pass", "inconclusive", "inconclusive"]})
    search = search_limit(GRID, service, repeat=2, clock=service.clock)
    assert search.status == "uncertain"
    assert 104 * MIB in search.uncertain
    assert search.exit_code == 3


def test_the_budget_ends_the_search_with_the_best_bracket_found() -> None:
    service = Service(need_mib=97, seconds=10.0)
    # 55 s: five 10-s runs (512, 264, 144, 80 and 112 MiB); a sixth would end at 60 s, so it never starts.
    search = search_limit(GRID, service, repeat=3, budget_s=55.0, clock=service.clock)
    assert len(service.calls) == 5
    assert service.now <= 55.0
    assert search.budget_exhausted
    assert search.status == "budget"
    assert (search.highest_failing, search.lowest_holding) == (80 * MIB, 112 * MIB)
    assert not search.confirmed
    # A limit held, so the fit still answers with it.
    assert search.exit_code == 0


def test_a_budget_too_small_for_one_run_runs_the_first_and_then_stops() -> None:
    service = Service(need_mib=97, seconds=10.0)
    search = search_limit(GRID, service, repeat=3, budget_s=5.0, clock=service.clock)
    assert len(service.calls) == 1
    assert search.status == "budget"


def test_the_progress_hook_sees_each_run_before_it_starts_with_what_is_left() -> None:
    service = Service(need_mib=97)
    seen: list[Planned] = []
    search = search_limit(GRID, service, repeat=3, clock=service.clock, before_run=seen.append)
    assert [p.value for p in seen] == service.calls
    assert [p.number for p in seen] == list(range(1, len(seen) + 1))
    assert seen[0].seconds_left is None  # nothing measured yet
    assert all(p.seconds_left is not None and p.seconds_left > 0 for p in seen[1:])
    assert seen[-1].phase == "confirm"
    assert seen[-1].runs_left == 1
    assert search.confirmed


def test_a_grid_must_be_ascending_and_repeat_positive() -> None:
    with pytest.raises(ValueError, match="ascending"):
        search_limit([2, 1], lambda limit: Outcome("pass"))
    with pytest.raises(ValueError, match="empty"):
        search_limit([], lambda limit: Outcome("pass"))
    with pytest.raises(ValueError, match="repeat"):
        search_limit([1, 2], lambda limit: Outcome("pass"), repeat=0)


def test_the_recommended_limit_is_the_lowest_holding_plus_the_margin_rounded_up_to_the_step() -> None:
    assert recommended_limit(104 * MIB, 0.15, 8 * MIB, integer=True) == 120 * MIB  # 119.6 -> 120
    assert recommended_limit(64 * MIB, 0.15, 16 * MIB, integer=True) == 80 * MIB  # 73.6 -> 80
    assert recommended_limit(64 * MIB, 0.0, 16 * MIB, integer=True) == 64 * MIB
    assert recommended_limit(0.5, 0.15, 0.25, integer=False) == 0.75
    assert round_up_to_step(1.0, 0.1, integer=False) == 1.0


def test_percentile_by_nearest_rank() -> None:
    assert nearest_rank_percentile(list(range(1, 11)), 0.9) == 9
    assert nearest_rank_percentile(list(range(1, 101)), 0.9) == 90
    assert nearest_rank_percentile([5], 0.9) == 5
    with pytest.raises(ValueError, match="no values"):
        nearest_rank_percentile([], 0.9)


def test_vpa_style_is_p90_plus_15_percent_with_a_250_mib_floor() -> None:
    peaks = [i * 100 * MIB for i in range(1, 11)]  # 100..1000 MiB: p90 is 900 MiB
    assert vpa_style(peaks) == pytest.approx(900 * MIB * 1.15, abs=1)
    assert vpa_style([54 * MIB, 48 * MIB]) == VPA_MIN_BYTES == 250 * MIB
    assert vpa_style([]) is None
    assert "0.9" in VPA_SOURCE
    assert "0.15" in VPA_SOURCE
    assert "250" in VPA_SOURCE


def test_krr_style_is_the_max_plus_15_percent() -> None:
    assert krr_style([54 * MIB, 48 * MIB]) == pytest.approx(54 * MIB * 1.15, abs=1)
    assert krr_style([]) is None
    assert "15" in KRR_SOURCE


def test_the_rules_read_the_peaks_of_conclusive_runs_only() -> None:
    service = Service(need_mib=97, script={96: ["inconclusive", "fail"]})
    search = search_limit(GRID, service, repeat=1, clock=service.clock)
    peaks = fit.conclusive_peaks(search.attempts)
    assert len(peaks) == len([a for a in search.attempts if a.outcome.verdict != "inconclusive"])
    assert max(peaks) == 97 * MIB


# --- the command, on recorded reports, with run_probe replaced -----------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stackprobe")
    commands = parser.add_subparsers(dest="command", required=True)
    fit.add_parser(commands)
    return parser


@pytest.fixture
def stack(tmp_path: Path) -> Path:
    (tmp_path / "compose.yaml").write_text("services: {}\n")
    (tmp_path / "locustfile.py").write_text("")
    return tmp_path


def _args(stack: Path, *flags: str) -> argparse.Namespace:
    base = ["fit", "-f", str(stack / "compose.yaml"), "--locustfile", str(stack / "locustfile.py")]
    return _parser().parse_args([*base, "--out", str(stack / "out"), *flags])


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--memory", "32m..512m", "--cpus", "0.25..2"], "one limit at a time"),
        (["--memory", "128m"], "needs a range"),
        ([], "needs a range"),
        (["--memory", "512m..32m"], "lower to a higher"),
        (["--memory", "32m..64m", "--margin", "lots"], "not a percentage"),
        (["--memory", "32m..64m", "--margin", "1000000%"], "above 1000%"),
        (["--memory", "32m..64m", "--step", "x"], "not a size"),
        (["--memory", "32m..64m", "--repeat", "0"], "at least 1"),
        (["--memory", "32m..64m,48m..96m"], "one range"),
        (["--cpus", "0..2"], "above 0"),
        (["--memory", "32m..64m", "--keep-up"], "--keep-up"),
    ],
)
def test_flags_that_cannot_make_a_fit_are_usage_errors(stack: Path, flags: list[str], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        fit.handle(_args(stack, *flags), Console(quiet=True))
    assert not (stack / "out" / "fit.json").exists()


def test_a_cpu_fit_holds_memory_fixed_and_other_services_at_their_limits(stack: Path) -> None:
    plan = fit.plan_from_args(_args(stack, "--cpus", "0.25..1", "--memory", "128m,db=256m"))
    assert plan.resource == "cpus"
    assert plan.grid == [0.25, 0.5, 0.75, 1.0]
    assert plan.fixed_memory_bytes == 128 * MIB
    assert plan.other_memory == {"db": 256 * MIB}
    plan = fit.plan_from_args(_args(stack, "--memory", "app=32m..64m", "--step", "16m", "--margin", "20"))
    assert (plan.resource, plan.grid, plan.margin) == ("memory", [32 * MIB, 48 * MIB, 64 * MIB], 0.2)


def _recorded(need_bytes: int) -> Callable[..., Report]:
    """Return a stand-in for run_probe: the recorded OOM report below the need, a passing copy at or above."""
    recorded = Report.from_json((DATA / "report_oom.json").read_text())

    def run_probe(spec: RunSpec, console: Console, teardowns: list | None = None) -> Report:
        assert spec.memory_bytes is not None
        report = replace(recorded, verdict="fail")
        if spec.memory_bytes >= need_bytes:
            report = replace(recorded, verdict="pass", reasons=[], oom_kills=0, events=[])
        report.memory = replace(recorded.memory, peak_bytes=min(spec.memory_bytes, need_bytes))
        spec.out.mkdir(parents=True, exist_ok=True)
        (spec.out / "report.json").write_text(report.to_json())
        return report

    return run_probe


@pytest.fixture
def recorded_probe(monkeypatch: pytest.MonkeyPatch) -> None:
    import stackprobe.probe

    monkeypatch.setattr(stackprobe.probe, "run_probe", _recorded(54 * MIB))


@pytest.mark.usefixtures("recorded_probe")
def test_the_fit_command_writes_fit_json_to_its_schema_with_the_evidence(stack: Path) -> None:
    args = _args(stack, "--memory", "32m..96m", "--step", "16m", "--repeat", "2", "--slo", "errors<1%")
    assert fit.handle(args, Console(quiet=True)) == 0
    out = stack / "out"
    document: dict[str, Any] = json.loads((out / "fit.json").read_text())
    jsonschema.validate(document, load_fit_schema())
    assert document["status"] == "found"
    assert document["lowest_holding"]["value"] == 64 * MIB
    assert document["lowest_holding"]["passed"] == 2
    failing = document["highest_failing"]
    assert failing["value"] == 48 * MIB
    assert failing["label"] == "mem-48m-r1"
    assert failing["report_html"] == "runs/mem-48m-r1/report.html"
    assert failing["oom_kills"] == 1
    assert failing["first_oom_t"] == 41.3  # the recorded report's oom event
    assert document["recommended"]["value"] == 80 * MIB
    assert document["rules"]["vpa"]["value"] == 250 * MIB
    assert document["rules"]["krr"]["value"] == pytest.approx(54 * MIB * 1.15, abs=1)
    assert [run["label"] for run in document["runs"]] == ["mem-96m-r1", "mem-48m-r1", "mem-64m-r1", "mem-64m-r2"]
    assert (out / "runs" / "mem-48m-r1" / "report.json").is_file()
    assert "<script src" not in (out / "fit.html").read_text()


def test_a_set_up_error_counts_as_inconclusive_and_is_retried(stack: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import stackprobe.probe

    passing = _recorded(54 * MIB)
    calls: list[int] = []

    def flaky(spec: RunSpec, console: Console, teardowns: list | None = None) -> Report:
        calls.append(spec.memory_bytes or 0)
        if spec.memory_bytes == 96 * MIB and calls.count(96 * MIB) == 1:
            raise stackprobe.probe.SetupError("the stack never got healthy")
        return passing(spec, console, teardowns)

    monkeypatch.setattr(stackprobe.probe, "run_probe", flaky)
    args = _args(stack, "--memory", "32m..96m", "--step", "16m", "--repeat", "1")
    assert fit.handle(args, Console(quiet=True)) == 0
    document = json.loads((stack / "out" / "fit.json").read_text())
    first, retry = document["runs"][:2]
    assert (first["verdict"], first["error"], first["retry"]) == ("error", "the stack never got healthy", False)
    assert (retry["label"], retry["verdict"], retry["retry"]) == ("mem-96m-r2", "pass", True)


def _fit_document(stack: Path) -> Any:
    service = Service(need_mib=54)
    grid = build_grid(32 * MIB, 96 * MIB, 16 * MIB, integer=True)
    recorded = Report.from_json((DATA / "report_oom.json").read_text())
    rows: list[RunRow] = []

    def run_at(limit: float) -> Outcome:
        outcome = service(limit)
        row = row_from_report(
            replace(recorded, verdict=outcome.verdict),
            label=f"mem-{int(limit) // MIB}m-r1",
            memory_bytes=int(limit),
            cpus=None,
            repeat=1,
            run_dir=stack / "out" / "runs" / f"mem-{int(limit) // MIB}m-r1",
            root=stack / "out",
            wall_s=10.0,
        )
        rows.append(row)
        return replace(outcome, row=row)

    search = search_limit(grid, run_at, repeat=1, clock=service.clock)
    plan = fit.plan_from_args(_args(stack, "--memory", "32m..96m", "--step", "16m", "--repeat", "1"))
    base = RunSpec(compose_files=(stack / "compose.yaml",), locustfile=stack / "locustfile.py")
    return fit.build_fit(plan, base, search, rows, datetime.now(UTC))


def test_the_fit_page_is_self_contained_and_links_the_failing_run(stack: Path) -> None:
    document = _fit_document(stack)
    page = fit_page(document)
    assert "Content-Security-Policy" in page
    # Nothing is fetched: no external script, style sheet, image or import.
    for fetch in ('src="http', 'href="http', "@import", "url(http"):
        assert fetch not in page
    assert 'href="runs/mem-48m-r1/report.html"' in page
    assert 'id="highest-failing"' in page
    assert 'id="rule-vpa"' in page
    assert 'id="rule-krr"' in page
    assert page.count('class="point p-') == len(document.grid)


def test_the_fit_console_names_the_bracket_and_the_rules(stack: Path) -> None:
    document = _fit_document(stack)
    console = Console(record=True, width=160)
    render_fit_console(document, console)
    text = console.export_text()
    assert "lowest memory limit that held" in text
    assert "64.0 MiB" in text
    assert "highest that failed" in text
    assert "48.0 MiB" in text
    assert "VPA-style" in text
    assert "KRR-style" in text
    assert "FOUND" in text


def test_a_cpu_fit_runs_cpu_limits_and_recommends_on_the_cpu_step(stack: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import stackprobe.probe

    recorded = Report.from_json((DATA / "report_oom.json").read_text())
    seen: list[RunSpec] = []

    def run_probe(spec: RunSpec, console: Console, teardowns: list | None = None) -> Report:
        seen.append(spec)
        assert spec.cpus is not None
        if spec.cpus >= 0.75:
            return replace(recorded, verdict="pass", reasons=[], oom_kills=0, events=[])
        return replace(recorded, verdict="fail", reasons=["SLO not met: p95 < 200 ms (actual 340 ms)"], oom_kills=0)

    monkeypatch.setattr(stackprobe.probe, "run_probe", run_probe)
    args = _args(stack, "--cpus", "0.25..2", "--memory", "256m", "--repeat", "1", "--margin", "15%")
    assert fit.handle(args, Console(quiet=True)) == 0
    assert {s.memory_bytes for s in seen} == {256 * MIB}
    document = json.loads((stack / "out" / "fit.json").read_text())
    jsonschema.validate(document, load_fit_schema())
    assert (document["resource"], document["fixed_memory_bytes"]) == ("cpus", 256 * MIB)
    assert (document["lowest_holding"]["value"], document["highest_failing"]["value"]) == (0.75, 0.5)
    assert document["recommended"]["value"] == 1.0  # 0.75 x 1.15 = 0.8625, up to the 0.25 step
    assert document["runs"][0]["label"] == "cpu-2-r1"
    assert document["highest_failing"]["reasons"] == ["SLO not met: p95 < 200 ms (actual 340 ms)"]
    page = (stack / "out" / "fit.html").read_text()
    assert "CPU limit (CPUs)" in page


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--memory", "32m..128m", "--step", "1g"], "--step is larger than the range"),
        (["--memory", "32m..128m", "--budget=0s"], "--budget must be above 0"),
    ],
)
def test_a_step_past_the_range_or_no_budget_is_a_usage_error(stack: Path, args: list[str], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        fit.plan_from_args(_args(stack, *args))
