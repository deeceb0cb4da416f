"""The console summary, read as a person reads it from a terminal."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.console import Console

from stackprobe.report import Report, load_report, render_console
from stackprobe.report.model import Event, Limits

DATA = Path(__file__).parent / "data"


def _text(report: Report) -> str:
    console = Console(record=True, width=120, color_system=None, force_terminal=False)
    render_console(report, console)
    return console.export_text()


@pytest.fixture
def oom_text() -> str:
    """The summary of a run whose service was OOM-killed."""
    return _text(load_report(DATA / "report_oom.json"))


def _line(text: str, label: str) -> str:
    """Return the table row whose first cell is `label`, cells joined by single spaces."""
    rows = [" ".join(line.replace("│", " ").split()) for line in text.splitlines() if line.startswith("│")]
    (row,) = [row for row in rows if row.startswith(f"{label} ")]
    return row


def test_summary_shows_limits_asked_and_applied(oom_text: str) -> None:
    assert _line(oom_text, "memory") == "memory 256.0 MiB 256.0 MiB 256.0 MiB 256.0 MiB"
    assert "cgroup v1; applied as asked: yes" in oom_text


def test_summary_shows_load_and_latency(oom_text: str) -> None:
    assert _line(oom_text, "requests") == "requests 7,412"
    assert _line(oom_text, "requests/s") == "requests/s 123.5"
    assert _line(oom_text, "failures") == "failures 405 (5.46%)"
    assert _line(oom_text, "latency p95") == "latency p95 68.0 ms"


def test_summary_shows_peak_memory_against_the_limit(oom_text: str) -> None:
    assert _line(oom_text, "peak memory") == "peak memory 255.8 MiB of 256.0 MiB (99.9%)"


def test_summary_shows_oom_kills_restarts_and_writes(oom_text: str) -> None:
    assert _line(oom_text, "OOM kills") == "OOM kills 1"
    assert _line(oom_text, "restarts") == "restarts 1"
    assert _line(oom_text, "writes") == "writes 3 lost of 2,210 acknowledged"
    assert "41.3 s │ oom" in oom_text


def test_summary_shows_slo_checks_and_the_verdict_with_reasons(oom_text: str) -> None:
    assert "errors < 1% (actual 5.464%) │ not met" in oom_text
    assert oom_text.rstrip().endswith(
        "verdict: FAIL\n  - 1 OOM kill\n  - 1 restart\n  - 3 of 2210 acknowledged writes lost\n"
        "  - SLO not met: errors < 1% (actual 5.464%)"
    )


def test_summary_of_an_empty_run_says_n_a() -> None:
    text = _text(Report())
    assert _line(text, "latency p95") == "latency p95 n/a"
    assert _line(text, "writes") == "writes n/a"
    assert _line(text, "peak memory") == "peak memory n/a"


def test_summary_flags_limits_that_were_not_applied() -> None:
    report = Report(limits=Limits(memory_requested_bytes=256 << 20, applied_matches=False, problems=["[x] no cap"]))
    text = _text(report)
    assert "applied as asked: no" in text
    # Brackets are text, not rich markup.
    assert "[x] no cap" in text


def test_summary_prints_names_literally() -> None:
    report = Report(events=[Event(t=1.0, action="die", container="[bold]c[/bold]", service="[red]s", exit_code=1)])
    assert "[bold]c[/bold]" in _text(report)


def test_summary_lists_at_most_ten_events() -> None:
    report = Report(events=[Event(t=float(i), action="start", container="c", service="s") for i in range(12)])
    text = _text(report)
    assert "11.0 s" not in text
    assert "2 more in the JSON and HTML reports" in text
