"""The step shape's finding, from the line Locust prints to the report, the console and the page."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from rich.console import Console

from loadtests._shapes_math import StepSearch as ShapeStepSearch
from loadtests._shapes_math import Totals, parse_slo
from stackprobe.load import read_step_result
from stackprobe.report.console import render_console
from stackprobe.report.fmt import describe_step_search
from stackprobe.report.model import Report, StepSearch, step_search_from_dict
from stackprobe.report.page import html_page

DATA = Path(__file__).parent / "data"
SCHEMA = json.loads((Path(__file__).parents[2] / "stackprobe" / "report" / "schema.json").read_text())


def _searched() -> dict[str, object]:
    """Run the step shape's own search (10 more users every 5 s; p95 breaks 200 ms at 40) to its end."""
    search = ShapeStepSearch(parse_slo("p95<200ms"), step_users=10, step_time=5, max_users=100, spawn_rate=10)
    p95_at = {10: 50, 20: 100, 30: 150, 40: 300}
    totals = Totals()
    users = search.tick(0, totals)
    t = 0
    while users is not None:
        t += 1
        hist = dict(totals.response_times)
        hist[p95_at[users]] = hist.get(p95_at[users], 0) + 100
        totals = Totals(totals.requests + 100, 0, totals.total_response_time_ms + 100 * p95_at[users], hist)
        users = search.tick(t, totals)
    return search.summary()


def _log(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "locust.log"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_the_shapes_summary_is_read_from_locusts_output_into_the_report_model(tmp_path: Path) -> None:
    summary = _searched()
    log = _log(
        tmp_path,
        "[2026-11-27 22:00:00,000] vm/INFO/locust.main: Starting Locust 2.47.0",
        "step result: " + json.dumps(summary),
        "[2026-11-27 22:00:21,000] vm/INFO/locust.main: Shutting down (exit code 0)",
    )
    search = step_search_from_dict(read_step_result(log) or {})
    assert (search.last_passing_users, search.first_failing_users) == (30, 40)
    assert search.stop_reason == "SLO broken"
    assert [step.users for step in search.steps] == [10, 20, 30, 40]
    assert [step.passed for step in search.steps] == [True, True, True, False]
    assert search.steps[-1].checks == {"p95<200ms": 300.0}


def test_a_report_with_a_step_search_fits_the_schema_and_reads_back() -> None:
    data = json.loads((DATA / "report_oom.json").read_text())
    data["load"]["shape"] = "step"
    data["load"]["step_search"] = _searched()
    jsonschema.validate(data, SCHEMA)
    report = Report.from_dict(data)
    assert isinstance(report.load.step_search, StepSearch)
    assert Report.from_json(report.to_json()) == report


def test_the_finding_reads_in_one_line() -> None:
    text = describe_step_search(step_search_from_dict(_searched()))
    assert text == "30 users held p95<200ms; 40 broke it (SLO broken, 4 steps)"
    held_all = StepSearch(last_passing_users=12, stop_reason="max users reached", slo="p95<200ms")
    assert describe_step_search(held_all) == "12 users held p95<200ms (max users reached, 0 steps)"
    assert describe_step_search(StepSearch(first_failing_users=5, slo="errors<1%")).startswith(
        "no step held errors<1%; 5 broke it"
    )


@pytest.mark.parametrize(
    "lines",
    [
        (),
        ("step result: {not json",),
        ("step result: [1, 2]",),
        ("a locustfile's own line mentioning step result: {}",),
    ],
    ids=["no line", "not json", "not an object", "not at the start"],
)
def test_output_without_a_well_formed_result_line_has_none(tmp_path: Path, lines: tuple[str, ...]) -> None:
    assert read_step_result(_log(tmp_path, *lines)) is None


def test_the_last_result_line_wins(tmp_path: Path) -> None:
    log = _log(tmp_path, 'step result: {"last_passing_users": 1}', 'step result: {"last_passing_users": 2}')
    assert read_step_result(log) == {"last_passing_users": 2}


def test_a_result_line_that_does_not_fit_the_model_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match=r"step result\.last_passing_users"):
        step_search_from_dict({"last_passing_users": "many"})


def test_console_and_page_show_the_finding_only_for_a_step_run() -> None:
    data = json.loads((DATA / "report_oom.json").read_text())
    steady = Report.from_dict(data)
    data["load"]["step_search"] = _searched()
    stepped = Report.from_dict(data)
    finding = "30 users held p95&lt;200ms; 40 broke it"
    assert finding in html_page(stepped)
    assert "step search" not in html_page(steady)
    console = Console(record=True, width=160, color_system=None, force_terminal=False)
    render_console(stepped, console)
    assert "30 users held p95<200ms; 40 broke it" in console.export_text()
    console = Console(record=True, width=160, color_system=None, force_terminal=False)
    render_console(steady, console)
    assert "step search" not in console.export_text()
