"""CI outputs of a report: JUnit XML valid against the common JUnit XSD, and the Markdown job summary."""

from __future__ import annotations

import argparse
import copy
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import xmlschema
from rich.console import Console

from stackprobe.baseline import BaselineGate, parse_bounds
from stackprobe.ci import prepare_outputs, write_loop_outputs, write_run_outputs
from stackprobe.report import Report, load_report
from stackprobe.report.junit import render_junit
from stackprobe.report.model import OtherLimit
from stackprobe.report.summary import cell, summary_markdown
from stackprobe.report.verdict import judge
from stackprobe.spec import UsageError

DATA = Path(__file__).parent / "data"
# Jenkins xunit plugin's junit-10.xsd (MIT): the JUnit dialect CI systems read.
JUNIT_XSD = DATA / "junit-10.xsd"


@pytest.fixture(scope="module")
def schema() -> xmlschema.XMLSchema:
    """The JUnit XSD, parsed once."""
    return xmlschema.XMLSchema(JUNIT_XSD)


@pytest.fixture
def oom() -> Report:
    """A run whose service was OOM-killed and restarted, lost writes and missed its error SLO."""
    return load_report(DATA / "report_oom.json")


@pytest.fixture
def passed() -> Report:
    """A real passing run of the bundled stack."""
    return load_report(DATA / "report_pass.json")


def _cases(path: Path) -> dict[str, ET.Element]:
    root = ET.parse(path).getroot()
    assert root.tag == "testsuite"
    return {case.get("name"): case for case in root.iter("testcase")}


def _outcome(case: ET.Element) -> str:
    for tag in ("failure", "error", "skipped"):
        if case.find(tag) is not None:
            return tag
    return "passed"


def test_junit_of_an_oom_run_is_valid_and_fails_the_checks_that_went_wrong(
    oom: Report, tmp_path: Path, schema: xmlschema.XMLSchema
) -> None:
    path = render_junit(oom, tmp_path / "junit.xml")
    schema.validate(str(path))
    cases = _cases(path)
    assert {name: _outcome(case) for name, case in cases.items()} == {
        "SLO p95 < 200 ms": "passed",
        "SLO errors < 1%": "failure",
        "limits of users in force as asked": "passed",
        "no OOM kill of users": "failure",
        "no restart or exit of users": "failure",
        "no acknowledged write lost": "failure",
        "load delivered as asked": "passed",
        "the run saw all it reports on": "passed",
        "verdict": "failure",
    }
    root = ET.parse(path).getroot()
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("9", "5", "0")


def test_each_junit_failure_names_the_figure_and_its_source(oom: Report, tmp_path: Path) -> None:
    cases = _cases(render_junit(oom, tmp_path / "junit.xml"))
    assert cases["no OOM kill of users"].find("failure").get("message") == (
        "OOM kills: 1 — kernel oom_kill counter (memory.oom_control); engine oom events: 1"
    )
    assert cases["SLO errors < 1%"].find("failure").get("message") == (
        "SLO not met: errors < 1% (actual 5.464%); source: Locust's end-of-run totals (requests.failure_ratio)"
    )
    assert "3 lost" in cases["no acknowledged write lost"].find("failure").get("message")
    assert "the write audit" in cases["no acknowledged write lost"].find("failure").get("message")


def test_junit_of_a_passing_run_has_no_failure_and_says_where_each_figure_came_from(
    passed: Report, tmp_path: Path, schema: xmlschema.XMLSchema
) -> None:
    path = render_junit(passed, tmp_path / "junit.xml", report_html=tmp_path / "report.html")
    schema.validate(str(path))
    cases = _cases(path)
    assert {_outcome(case) for case in cases.values()} == {"passed"}
    assert "HostConfig.Memory" in cases["limits of app in force as asked"].findtext("system-out")
    properties = {p.get("name"): p.get("value") for p in ET.parse(path).getroot().iter("property")}
    assert properties["report_html"] == str(tmp_path / "report.html")
    assert properties["verdict"] == "pass"


def test_what_could_not_be_observed_is_a_junit_error_and_an_unused_audit_is_skipped(
    passed: Report, tmp_path: Path, schema: xmlschema.XMLSchema
) -> None:
    report = copy.deepcopy(passed)
    report.slo.checks[0].actual = None
    report.limits.applied_matches = False
    report.limits.problems = ["memory: 128.0 MiB asked, unlimited applied"]
    report.limits.others = [OtherLimit(service="db", memory_requested_bytes=2**28, applied_matches=True)]
    report.problems = ["the event stream was cut at t=3.0 s"]
    report.writes.applicable = False
    report.verdict, report.reasons = judge(report)
    path = render_junit(report, tmp_path / "junit.xml")
    schema.validate(str(path))
    cases = _cases(path)
    slo_name = next(name for name in cases if name.startswith("SLO p95"))
    assert _outcome(cases[slo_name]) == "error"
    assert "not measured" in cases[slo_name].find("error").get("message")
    assert _outcome(cases["limits of app in force as asked"]) == "error"
    assert "128.0 MiB asked, unlimited applied" in cases["limits of app in force as asked"].find("error").text
    assert _outcome(cases["memory limit of db in force as asked"]) == "passed"
    assert _outcome(cases["the run saw all it reports on"]) == "error"
    assert _outcome(cases["no acknowledged write lost"]) == "skipped"
    assert _outcome(cases["verdict"]) == "error"
    root = ET.parse(path).getroot()
    assert (root.get("errors"), root.get("skipped"), root.get("failures")) == ("4", "1", "0")


def test_junit_holds_one_testcase_per_bounded_baseline_figure(
    passed: Report, tmp_path: Path, schema: xmlschema.XMLSchema
) -> None:
    new = copy.deepcopy(passed)
    new.latency_ms.p95 = 20.0
    BaselineGate(base=passed, path=Path("base/report.json"), bounds=parse_bounds("p95:10%,rps:-10%"), spec="").apply(
        new
    )
    path = render_junit(new, tmp_path / "junit.xml")
    schema.validate(str(path))
    cases = _cases(path)
    assert _outcome(cases["p95 within +10% of the base run"]) == "failure"
    assert "p95 20.0 ms against 10.0 ms" in cases["p95 within +10% of the base run"].find("failure").text
    assert _outcome(cases["rps within -10% of the base run"]) == "passed"
    assert _outcome(cases["verdict"]) == "failure"


def test_summary_gives_the_verdict_reasons_figures_and_checks(oom: Report) -> None:
    text = summary_markdown(oom, Path("out/report.html"))
    assert text.startswith("### stackprobe probe-3f9a/users: **FAIL**\n")
    assert "- 1 OOM kill (kernel oom_kill counter (memory.oom_control))" in text
    assert "| no OOM kill of users | **FAIL** | OOM kills: 1 — kernel oom_kill counter" in text
    assert "| SLO p95 &lt; 200 ms | pass |" in text
    assert "Full report: `out/report.html`" in text
    # Every table row has as many cells as its header.
    for line in text.splitlines():
        if line.startswith("| check"):
            assert line.count(" | ") == 2


def test_summary_shows_both_runs_side_by_side_under_a_baseline(passed: Report) -> None:
    new = copy.deepcopy(passed)
    new.latency_ms.p95 = 20.0
    BaselineGate(base=passed, path=Path("base.json"), bounds=parse_bounds("p95:10%"), spec="p95:10%").apply(new)
    text = summary_markdown(new)
    assert "#### Against the base run `base.json`" in text
    assert "| p95 | 10.0 ms | 20.0 ms | +100.0% | +10% (at most 11.0 ms) | **regressed** |" in text


def test_a_cell_keeps_pipes_newlines_and_tags_inside_the_table() -> None:
    assert cell("a|b\nc <script>") == "a\\|b c &lt;script>"


def _args(tmp_path: Path, **values: object) -> argparse.Namespace:
    return argparse.Namespace(**{"junit": None, "summary_md": None, "out": tmp_path, **values})


def test_the_github_step_summary_is_appended_to_not_written_over(passed: Report, tmp_path: Path) -> None:
    step_summary = tmp_path / "step_summary.md"
    step_summary.write_text("## an earlier step\n")
    console = Console(quiet=True)
    written = write_run_outputs(passed, _args(tmp_path), console, environ={"GITHUB_STEP_SUMMARY": str(step_summary)})
    assert written == [step_summary]
    text = step_summary.read_text()
    assert text.startswith("## an earlier step\n### stackprobe stackprobe-12924-dc4865/app: pass")
    assert text.count("### stackprobe") == 1


def test_outputs_asked_for_are_written_and_nothing_else(passed: Report, tmp_path: Path) -> None:
    args = _args(tmp_path, junit=tmp_path / "ci" / "junit.xml", summary_md=tmp_path / "summary.md")
    written = write_run_outputs(passed, args, Console(quiet=True), environ={})
    assert written == [tmp_path / "ci" / "junit.xml", tmp_path / "summary.md"]
    assert (tmp_path / "summary.md").read_text().startswith("### stackprobe ")


def test_earlier_outputs_are_deleted_before_a_run_and_an_unwritable_one_is_a_usage_error(tmp_path: Path) -> None:
    stale = tmp_path / "junit.xml"
    stale.write_text("<testsuite/>")
    prepare_outputs(_args(tmp_path, junit=stale))
    assert not stale.exists()
    with pytest.raises(UsageError, match="is a folder"):
        prepare_outputs(_args(tmp_path, summary_md=tmp_path))


def test_a_sweeps_junit_has_a_testcase_per_run_and_its_outcome(tmp_path: Path, schema: xmlschema.XMLSchema) -> None:
    sweep = {
        "kind": "sweep",
        "target": {"project": "p", "service": "app"},
        "started_at": "2026-11-30T07:46:00+00:00",
        "duration_s": 61.5,
        "verdict": "fail",
        "summary": ["64 MiB failed: 1 OOM kill"],
        "runs": [
            {"label": "mem-64m", "verdict": "fail", "reasons": ["1 OOM kill (kernel)"], "rps": 90.0, "oom_kills": 1},
            {"label": "mem-128m", "verdict": "pass", "reasons": [], "rps": 120.0, "oom_kills": 0},
            {"label": "mem-96m", "verdict": "error", "reasons": [], "error": "no engine"},
        ],
    }
    (tmp_path / "sweep.json").write_text(json.dumps(sweep))
    args = _args(tmp_path, command="sweep", junit=tmp_path / "junit.xml", summary_md=tmp_path / "summary.md")
    write_loop_outputs(args, Console(quiet=True), environ={})
    schema.validate(str(tmp_path / "junit.xml"))
    cases = _cases(tmp_path / "junit.xml")
    assert {name: _outcome(case) for name, case in cases.items()} == {
        "run mem-64m": "failure",
        "run mem-128m": "passed",
        "run mem-96m": "error",
        "sweep outcome": "failure",
    }
    assert "| mem-64m | **FAIL** | 90 |" in (tmp_path / "summary.md").read_text()


@pytest.mark.parametrize(
    ("status", "outcome"), [("found", "passed"), ("none_holds", "failure"), ("uncertain", "error")]
)
def test_a_fits_junit_is_one_testcase_for_whether_a_limit_was_found(
    status: str, outcome: str, tmp_path: Path, schema: xmlschema.XMLSchema
) -> None:
    fit = {
        "kind": "fit",
        "target": {"project": "p", "service": "app"},
        "started_at": "2026-11-30T07:31:00+00:00",
        "duration_s": 300.0,
        "status": status,
        "summary": ["lowest limit that held: 72 MiB (3 runs)", "highest that failed: 64 MiB (OOM kill at 12.0 s)"],
        # A failing limit is the search's evidence, not a failure of the fit.
        "runs": [{"label": "mem-64m-r1", "verdict": "fail", "reasons": ["1 OOM kill"]}],
    }
    (tmp_path / "fit.json").write_text(json.dumps(fit))
    write_loop_outputs(_args(tmp_path, command="fit", junit=tmp_path / "junit.xml"), Console(quiet=True), environ={})
    schema.validate(str(tmp_path / "junit.xml"))
    cases = _cases(tmp_path / "junit.xml")
    assert list(cases) == ["fit outcome"]
    assert _outcome(cases["fit outcome"]) == outcome
    assert "highest that failed: 64 MiB" in ET.tostring(cases["fit outcome"], encoding="unicode")


def test_a_grows_junit_has_a_testcase_per_size(tmp_path: Path, schema: xmlschema.XMLSchema) -> None:
    grow = {
        "target": {"project": "p", "service": "app"},
        "started_at": "2026-11-30T08:00:00+00:00",
        "duration_s": 40.0,
        "verdict": "fail",
        "reasons": ["100k rows: 1 OOM kill"],
        "points": [
            {"label": "rows-1k", "verdict": "pass", "reasons": [], "peak_bytes": 60 * 1024**2},
            {"label": "rows-100k", "verdict": "fail", "reasons": ["1 OOM kill"], "peak_bytes": 128 * 1024**2},
        ],
    }
    (tmp_path / "grow.json").write_text(json.dumps(grow))
    write_loop_outputs(_args(tmp_path, command="grow", junit=tmp_path / "junit.xml"), Console(quiet=True), environ={})
    schema.validate(str(tmp_path / "junit.xml"))
    outcomes = {name: _outcome(case) for name, case in _cases(tmp_path / "junit.xml").items()}
    assert outcomes == {"run rows-1k": "passed", "run rows-100k": "failure", "grow outcome": "failure"}


def test_a_loop_that_left_no_json_writes_no_ci_output(tmp_path: Path) -> None:
    args = _args(tmp_path, command="sweep", junit=tmp_path / "junit.xml")
    assert write_loop_outputs(args, Console(quiet=True), environ={}) == []
    assert not (tmp_path / "junit.xml").exists()


def test_the_load_check_fails_on_locusts_own_errors_and_is_in_error_when_the_rate_was_not_delivered(
    passed: Report, tmp_path: Path
) -> None:
    broken = copy.deepcopy(passed)
    broken.requests.exceptions = 3
    broken.load.locust_exit_code = 1
    broken.verdict, broken.reasons = judge(broken)
    case = _cases(render_junit(broken, tmp_path / "broken.xml"))["load delivered as asked"]
    assert (
        case.find("failure")
        .get("message")
        .startswith(
            "3 exceptions raised in the locustfile's tasks (Locust's exceptions table); Locust exited with code 1; "
        )
    )
    short = copy.deepcopy(passed)
    short.load.arrival_rate, short.load.achieved_rate = 100.0, 60.0
    short.verdict, short.reasons = judge(short)
    case = _cases(render_junit(short, tmp_path / "short.xml"))["load delivered as asked"]
    assert case.find("error").get("message").startswith("60.0 arrivals/s of the 100/s asked")
