"""The sweep on recorded reports, with run_probe replaced: labels, the loop, its files and exit codes. No Docker."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import jsonschema
import pytest
from rich.console import Console

import stackprobe.probe
from stackprobe import sweep
from stackprobe.report.comparison import RunRow, SweepGrid, load_sweep_schema
from stackprobe.report.comparison_console import render_sweep_console
from stackprobe.report.comparison_page import sweep_page
from stackprobe.report.model import Report
from stackprobe.spec import RunSpec, UsageError

MIB = 1024 * 1024
DATA = Path(__file__).parent / "data"
RECORDED = Report.from_json((DATA / "report_oom.json").read_text())


def test_labels_name_the_limits_and_the_repeat() -> None:
    assert sweep.sweep_label(64 * MIB, None, 1, 1) == "mem-64m"
    assert sweep.sweep_label(64 * MIB, 0.5, 2, 3) == "mem-64m-cpu-0.5-r2"
    assert sweep.sweep_label(None, 2.0, 1, 1) == "cpu-2"
    assert sweep.memory_label(1024 * MIB) == "mem-1g"
    assert sweep.memory_label(1536 * 1024) == "mem-1536k"
    assert sweep.memory_label(6 * MIB + 1) == f"mem-{6 * MIB + 1}b"


def test_memory_terms_split_into_the_targets_and_other_services_fixed_limits() -> None:
    assert sweep.split_memory_terms("64m, 96m,app=128m", "app") == (["64m", "96m", "128m"], {})
    assert sweep.split_memory_terms("64m,db=256m", "app") == (["64m"], {"db": 256 * MIB})
    with pytest.raises(UsageError, match="given twice"):
        sweep.split_memory_terms("64m,db=1g,db=2g", "app")
    with pytest.raises(UsageError, match="empty term"):
        sweep.split_memory_terms("64m,,96m", "app")
    with pytest.raises(UsageError, match="given twice"):
        sweep.parse_memory_list(["64m", "64m"])


def test_the_time_left_reads_in_seconds_minutes_or_hours() -> None:
    assert sweep.format_seconds(42.4) == "42 s"
    assert sweep.format_seconds(185) == "3 min 05 s"
    assert sweep.format_seconds(3720) == "1 h 02 min"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stackprobe")
    commands = parser.add_subparsers(dest="command", required=True)
    sweep.add_parser(commands)
    return parser


@pytest.fixture
def stack(tmp_path: Path) -> Path:
    (tmp_path / "compose.yaml").write_text("services: {}\n")
    (tmp_path / "locustfile.py").write_text("")
    return tmp_path


def _args(stack: Path, *flags: str) -> argparse.Namespace:
    base = ["sweep", "-f", str(stack / "compose.yaml"), "--locustfile", str(stack / "locustfile.py")]
    return _parser().parse_args([*base, "--out", str(stack / "out"), *flags])


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ([], "needs limits"),
        (["--memory", "db=256m"], "needs limits"),
        (["--memory", "64m,lots"], "not a size"),
        (["--cpus", "0.5,0"], "above 0"),
        (["--cpus", "0.5,0.5"], "given twice"),
        (["--memory", "64m", "--repeat", "0"], "at least 1"),
        (["--memory", "64m", "--keep-up"], "--keep-up"),
    ],
)
def test_flags_that_cannot_make_a_sweep_are_usage_errors(stack: Path, flags: list[str], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        sweep.handle(_args(stack, *flags), Console(quiet=True))


Probe = Callable[[RunSpec, Console, "list | None"], Report]


def _probe(outcomes: dict[tuple[int | None, float | None], str], seen: list[RunSpec]) -> Probe:
    """A stand-in for run_probe: each (memory, cpus) point ends as `outcomes` says ("error": a set-up error)."""

    def run_probe(spec: RunSpec, console: Console, teardowns: list | None = None) -> Report:
        seen.append(spec)
        outcome = outcomes[(spec.memory_bytes, spec.cpus)]
        if outcome == "error":
            raise stackprobe.probe.SetupError("Compose could not start the stack: port in use")
        if outcome == "interrupt":
            raise KeyboardInterrupt
        report = replace(RECORDED, verdict=outcome)
        if outcome != "fail":
            report = replace(report, reasons=[], oom_kills=0, events=[])
        spec.out.mkdir(parents=True, exist_ok=True)
        (spec.out / "report.json").write_text(report.to_json())
        (spec.out / "report.html").write_text("<!doctype html>")
        return report

    return run_probe


def test_a_sweep_runs_every_point_keeps_failures_and_set_up_errors_and_exits_1(
    stack: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[RunSpec] = []
    outcomes = {(64 * MIB, None): "fail", (96 * MIB, None): "error", (128 * MIB, None): "pass"}
    monkeypatch.setattr(stackprobe.probe, "run_probe", _probe(outcomes, seen))
    (stack / "out").mkdir()
    (stack / "out" / "sweep.html").write_text("an earlier sweep's page")
    console = Console(record=True, width=160)
    code = sweep.handle(_args(stack, "--memory", "64m,96m,128m,db=256m", "--slo", "errors<1%"), console)
    assert code == 1
    assert [s.memory_bytes for s in seen] == [64 * MIB, 96 * MIB, 128 * MIB]
    assert all(s.other_memory == {"db": 256 * MIB} and not s.keep_up for s in seen)
    assert [s.out for s in seen] == [stack / "out" / "runs" / f"mem-{m}m" for m in (64, 96, 128)]
    document = json.loads((stack / "out" / "sweep.json").read_text())
    jsonschema.validate(document, load_sweep_schema())
    assert [(r["label"], r["verdict"]) for r in document["runs"]] == [
        ("mem-64m", "fail"),
        ("mem-96m", "error"),
        ("mem-128m", "pass"),
    ]
    error = document["runs"][1]
    assert error["error"] == "Compose could not start the stack: port in use"
    assert error["report_html"] is None
    assert document["runs"][0]["report_html"] == "runs/mem-64m/report.html"
    assert document["runs"][0]["first_oom_t"] == 41.3
    assert document["counts"] == {"pass": 1, "fail": 1, "inconclusive": 0, "error": 1}
    assert (document["verdict"], document["exit_code"], document["complete"]) == ("fail", 1, True)
    assert document["target"]["other_memory_bytes"] == {"db": 256 * MIB}
    (finding,) = document["findings"]
    assert (finding["axis"], finding["lowest_holding"], finding["highest_failing"]) == (
        "memory_bytes",
        128 * MIB,
        64 * MIB,
    )
    assert finding["oom_at"] == [64 * MIB]
    page = (stack / "out" / "sweep.html").read_text()
    assert "an earlier sweep" not in page
    assert 'href="runs/mem-64m/report.html"' in page
    assert 'href="runs/mem-128m/report.html"' in page
    text = console.export_text()
    assert "mem-96m" in text
    assert "port in use" in text
    assert "FAIL" in text


def test_an_open_model_sweep_names_its_arrival_rate_in_the_load(stack: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    outcomes = {(64 * MIB, None): "pass", (128 * MIB, None): "pass"}
    monkeypatch.setattr(stackprobe.probe, "run_probe", _probe(outcomes, []))
    assert sweep.handle(_args(stack, "--memory", "64m,128m", "--rate", "40"), Console(quiet=True)) == 0
    document = json.loads((stack / "out" / "sweep.json").read_text())
    jsonschema.validate(document, load_sweep_schema())
    assert document["load"]["arrival_rate"] == 40
    assert sweep.handle(_args(stack, "--memory", "64m,128m", "--users", "5"), Console(quiet=True)) == 0
    assert json.loads((stack / "out" / "sweep.json").read_text())["load"]["arrival_rate"] is None


@pytest.mark.parametrize(
    ("verdicts", "code"),
    [(["pass", "pass"], 0), (["pass", "inconclusive"], 3), (["inconclusive", "error"], 3), (["fail", "pass"], 1)],
)
def test_the_exit_code_is_0_all_passed_1_any_failed_3_otherwise(
    stack: Path, monkeypatch: pytest.MonkeyPatch, verdicts: list[str], code: int
) -> None:
    outcomes = {(None, 0.5): verdicts[0], (None, 1.0): verdicts[1]}
    monkeypatch.setattr(stackprobe.probe, "run_probe", _probe(outcomes, []))
    assert sweep.handle(_args(stack, "--cpus", "0.5,1"), Console(quiet=True)) == code
    assert json.loads((stack / "out" / "sweep.json").read_text())["exit_code"] == code


def test_a_sweep_where_every_run_hit_a_set_up_error_is_a_set_up_error(
    stack: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outcomes = {(64 * MIB, None): "error", (96 * MIB, None): "error"}
    monkeypatch.setattr(stackprobe.probe, "run_probe", _probe(outcomes, []))
    with pytest.raises(stackprobe.probe.SetupError, match="every run"):
        sweep.handle(_args(stack, "--memory", "64m,96m"), Console(quiet=True))
    document = json.loads((stack / "out" / "sweep.json").read_text())
    assert document["exit_code"] == 2
    assert document["counts"]["error"] == 2


def test_a_grid_repeats_each_point_and_an_interrupt_still_writes_what_was_run(
    stack: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[RunSpec] = []
    outcomes = {(64 * MIB, 0.5): "pass", (64 * MIB, 1.0): "interrupt"}
    monkeypatch.setattr(stackprobe.probe, "run_probe", _probe(outcomes, seen))
    with pytest.raises(KeyboardInterrupt):
        sweep.handle(_args(stack, "--memory", "64m", "--cpus", "0.5,1", "--repeat", "2"), Console(quiet=True))
    assert [s.out.name for s in seen] == ["mem-64m-cpu-0.5-r1", "mem-64m-cpu-0.5-r2", "mem-64m-cpu-1-r1"]
    document = json.loads((stack / "out" / "sweep.json").read_text())
    jsonschema.validate(document, load_sweep_schema())
    assert document["complete"] is False
    # Every run made passed, but the sweep as asked did not end: never a pass, and the exit code says so.
    assert (document["verdict"], document["exit_code"]) == ("inconclusive", 130)
    assert [r["label"] for r in document["runs"]] == ["mem-64m-cpu-0.5-r1", "mem-64m-cpu-0.5-r2"]
    assert document["points"] == [
        {
            "memory_bytes": 64 * MIB,
            "cpus": 0.5,
            "runs": 2,
            "passed": 2,
            "failed": 0,
            "inconclusive": 0,
            "errors": 0,
            "verdict": "pass",
        }
    ]


def _row(label: str, memory: int, cpus: float | None, verdict: str, oom: int = 0) -> RunRow:
    return RunRow(label=label, memory_bytes=memory, cpus=cpus, verdict=verdict, oom_kills=oom)  # type: ignore[arg-type]


def test_findings_hold_from_the_lowest_limit_above_which_every_run_passed() -> None:
    grid = SweepGrid(memory_bytes=[64 * MIB, 96 * MIB, 128 * MIB, 192 * MIB], cpus=[0.5, 1.0])
    rows = [
        _row("a", 64 * MIB, 0.5, "fail", oom=1),
        _row("b", 96 * MIB, 0.5, "pass"),
        _row("c", 128 * MIB, 0.5, "fail"),  # a failure above a pass: held only from 192 MiB
        _row("d", 192 * MIB, 0.5, "pass"),
        _row("e", 64 * MIB, 1.0, "inconclusive"),
        _row("f", 96 * MIB, 1.0, "pass"),
        _row("g", 128 * MIB, 1.0, "pass"),
        _row("h", 192 * MIB, 1.0, "pass"),
    ]
    base = RunSpec(compose_files=(DATA / "report_oom.json",), locustfile=DATA)
    document = sweep.build_sweep(grid, base, rows, datetime.now(UTC))
    by_axis = {(f.axis, f.fixed): f for f in document.findings}
    memory_half = by_axis[("memory_bytes", 0.5)]
    assert (memory_half.lowest_holding, memory_half.highest_failing, memory_half.oom_at) == (
        192 * MIB,
        128 * MIB,
        [64 * MIB],
    )
    memory_one = by_axis[("memory_bytes", 1.0)]
    assert (memory_one.lowest_holding, memory_one.highest_failing) == (96 * MIB, None)
    cpus_at_64 = by_axis[("cpus", 64 * MIB)]
    assert (cpus_at_64.lowest_holding, cpus_at_64.highest_failing) == (None, 0.5)
    assert len(document.findings) == 2 + 4
    jsonschema.validate(document.to_dict(), load_sweep_schema())
    assert any("every run passed from 192.0 MiB up" in line for line in document.summary)


def test_the_sweep_page_is_self_contained_and_escapes_what_it_shows(stack: Path) -> None:
    rows = [
        _row("mem-64m", 64 * MIB, None, "fail", oom=1),
        replace(_row("mem-96m", 96 * MIB, None, "pass"), report_html="runs/mem-96m/report.html", rps=10.0),
    ]
    rows[0].reasons = ["</script><script>alert(1)</script>"]
    base = RunSpec(compose_files=(stack / "compose.yaml",), locustfile=stack / "locustfile.py", service="<b>app</b>")
    document = sweep.build_sweep(SweepGrid(memory_bytes=[64 * MIB, 96 * MIB]), base, rows, datetime.now(UTC))
    page = sweep_page(document)
    head = page.split("</head>")[0]
    assert "default-src 'none'" in head
    assert "<script>alert(1)" not in page
    assert "<b>app</b>" not in page
    assert 'href="runs/mem-96m/report.html"' in page
    console = Console(record=True, width=160)
    render_sweep_console(document, console)
    assert "</script><script>alert(1)</script>" in console.export_text()
