"""The console summary, read as a person reads it from a terminal."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.console import Console

from stackprobe.report import Report, load_report, render_console
from stackprobe.report.model import (
    ClientErrors,
    Event,
    Failure,
    Limits,
    Listing,
    Load,
    LocustException,
    Memory,
    MemoryTrend,
    Writes,
)

DATA = Path(__file__).parent / "data"


def _text(report: Report) -> str:
    console = Console(record=True, width=120, color_system=None, force_terminal=False)
    render_console(report, console)
    return console.export_text()


@pytest.fixture
def oom_text() -> str:
    """The summary of a run whose service was OOM-killed."""
    return _text(load_report(DATA / "report_oom.json"))


def _rows(text: str) -> list[str]:
    """Return the tables' body rows, each with the lines rich wrapped it onto, cells joined by single spaces."""
    rows: list[list[str]] = []
    in_row = False
    for line in text.splitlines():
        if not line.startswith("│"):
            in_row = False
            continue
        cells = [cell.strip() for cell in line.strip().strip("│").split("│")]
        if in_row and cells[0] == "":
            rows[-1] = [f"{a} {b}" for a, b in zip(rows[-1], cells, strict=True)]
        else:
            rows.append(cells)
        in_row = True
    return [" ".join(" ".join(cells).split()) for cells in rows]


def _line(text: str, label: str) -> str:
    """Return the table row whose first cell is `label`, cells joined by single spaces."""
    (row,) = [row for row in _rows(text) if row.startswith(f"{label} ")]
    return row


def test_summary_shows_limits_asked_and_applied(oom_text: str) -> None:
    assert _line(oom_text, "memory") == "memory 256.0 MiB 256.0 MiB 256.0 MiB 256.0 MiB"
    assert "cgroup v1; applied as asked: yes" in oom_text


def test_summary_shows_load_and_latency(oom_text: str) -> None:
    assert _line(oom_text, "requests") == "requests 7,412"
    assert _line(oom_text, "requests/s") == "requests/s 123.5"
    assert _line(oom_text, "failures") == "failures 405 (5.46%)"
    assert _line(oom_text, "latency p95") == "latency p95 68.0 ms"


def test_summary_shows_the_verdicts_peak_with_its_source_and_the_sampled_peak_beside(oom_text: str) -> None:
    assert _line(oom_text, "peak memory") == (
        "peak memory 256.0 MiB of 256.0 MiB (100.0%) — the limit: PID 1 was OOM-killed at it "
        "(cgroup v1 memory.max_usage_in_bytes); docker stats samples: 255.8 MiB"
    )


def test_summary_shows_a_kernel_peak_and_the_sampled_peak_with_their_sources() -> None:
    memory = Memory(
        peak_bytes=115_553_075,
        peak_source="cgroup v1 memory.max_usage_in_bytes",
        peak_kernel_bytes=115_553_075,
        peak_sampled_bytes=12_687_769,
        limit_bytes=256 << 20,
        peak_ratio=0.43,
    )
    text = _text(Report(memory=memory, limits=Limits(cgroup_version=1)))
    assert _line(text, "peak memory") == (
        "peak memory 110.2 MiB of 256.0 MiB (43.0%) — cgroup v1 memory.max_usage_in_bytes; "
        "docker stats samples: 12.1 MiB"
    )


def test_summary_says_when_the_peak_is_sampled_because_the_kernel_mark_was_not_read() -> None:
    memory = Memory(peak_bytes=50 << 20, peak_source="docker stats samples", peak_sampled_bytes=50 << 20)
    text = _text(Report(memory=memory, limits=Limits(cgroup_version=2)))
    assert _line(text, "peak memory") == (
        "peak memory 50.0 MiB — docker stats samples; cgroup v2 memory.peak: not read"
    )


def test_summary_shows_oom_kills_with_their_source_and_the_engines_events_beside(oom_text: str) -> None:
    assert _line(oom_text, "OOM kills") == (
        "OOM kills 1 — kernel oom_kill counter (memory.oom_control); engine oom events: 1"
    )
    assert "disagrees" not in oom_text


def test_summary_highlights_oom_counts_that_disagree() -> None:
    console = Console(record=True, width=120, color_system="standard", force_terminal=True)
    render_console(Report(oom_kills=0, oom_kills_source="kernel oom_kill counter", oom_events=2), console)
    text = console.export_text(clear=False)
    assert _line(text, "OOM kills") == (
        "OOM kills 0 — kernel oom_kill counter; engine oom events: 2 (disagrees with the kernel's count)"
    )
    # Bold yellow, as nothing else in the row is.
    assert "\x1b[1;33m2 (disagrees with the kernel's count)" in console.export_text(styles=True)


def test_summary_shows_restarts_writes_and_events(oom_text: str) -> None:
    assert _line(oom_text, "restarts") == "restarts 1"
    assert _line(oom_text, "writes") == (
        "writes 3 lost, 0 unverified, 2,207 verified of 2,210 acknowledged, 0 duplicated"
    )
    assert _line(oom_text, "indeterminate") == "indeterminate 12: 7 recovered (applied), 5 not applied"
    assert _line(oom_text, "refused writes") == "refused writes 41, 0 found written"
    assert (
        _line(oom_text, "lost, e.g.")
        == "lost, e.g. /users/1873: HTTP 404, /users/1874: HTTP 404, /users/1877: HTTP 404"
    )
    assert "41.3 s │ oom" in oom_text


def test_summary_shows_unverified_writes_and_why_the_audit_gave_up() -> None:
    writes = Writes(
        applicable=True,
        acknowledged=100,
        verified=60,
        lost=0,
        unverified=40,
        unverified_examples=[f"/users/{i}: HTTP 503" for i in range(5)],
        gave_up="the service answered 503 for 30 s",
    )
    text = _text(Report(writes=writes))
    assert _line(text, "writes") == "writes 0 lost, 40 unverified, 60 verified of 100 acknowledged"
    assert _line(text, "unverified, e.g.") == (
        "unverified, e.g. /users/0: HTTP 503, /users/1: HTTP 503, /users/2: HTTP 503 and 2 more"
    )
    assert _line(text, "audit gave up") == "audit gave up the service answered 503 for 30 s"


def test_summary_lists_the_clients_failures_on_the_time_axis(oom_text: str) -> None:
    assert "What the clients saw\nFailed requests (Locust's failures)" in oom_text
    assert _line(oom_text, "POST /users") == (
        "POST /users ConnectionResetError(104, 'Connection reset by peer') 212 41.3 s 42.6 s"
    )
    assert _line(oom_text, "GET /users?limit=20") == (
        "GET /users?limit=20 ConnectionRefusedError(111, 'Connection refused') 193 41.4 s 44.9 s"
    )
    assert "Exceptions in the locustfile" not in oom_text


def test_summary_lists_the_locustfiles_exceptions_at_most_ten() -> None:
    exceptions = [
        LocustException(message=f"KeyError: 'id{i}'", count=i + 1, traceback="Traceback ...", first_t=i, last_t=i + 0.5)
        for i in range(12)
    ]
    text = _text(Report(client_errors=ClientErrors(exceptions=exceptions)))
    assert "What the clients saw\nExceptions in the locustfile" in text
    assert _line(text, "KeyError: 'id0'") == "KeyError: 'id0' 1 0.0 s 0.5 s"
    assert "KeyError: 'id10'" not in text
    assert "2 more in the JSON and HTML reports" in text


def test_summary_lists_at_most_ten_failures() -> None:
    failures = [Failure(method="GET", name=f"/p{i}", error="[boom]", occurrences=1, first_t=1.0) for i in range(11)]
    text = _text(Report(client_errors=ClientErrors(failures=failures)))
    assert _line(text, "GET /p9") == "GET /p9 [boom] 1 1.0 s n/a"
    assert "GET /p10" not in text
    assert "1 more in the JSON and HTML reports" in text


def test_summary_shows_the_verdict_with_its_reasons(oom_text: str) -> None:
    assert "errors < 1% (actual 5.464%) │ not met" in oom_text
    assert oom_text.rstrip().endswith(
        "verdict: FAIL\n  - 1 OOM kill (kernel oom_kill counter (memory.oom_control))\n  - 1 restart\n"
        "  - 3 of 2210 acknowledged writes lost\n  - SLO not met: errors < 1% (actual 5.464%)"
    )


def test_an_inconclusive_run_reads_inconclusive_with_what_it_could_not_observe() -> None:
    cut = "event stream ended before the watch stopped; OOM kills and restarts may be missing"
    report = load_report(DATA / "report_oom.json")
    report.oom_kills = report.oom_events = report.restarts = 0
    report.problems = [cut]
    report.verdict, report.reasons = "inconclusive", [f"inconclusive: {cut}"]
    text = _text(report)
    assert "PASS" not in text
    assert "FAIL" not in text
    assert f"could not observe:\n  - {cut}" in text
    assert text.rstrip().endswith(f"verdict: INCONCLUSIVE\n  - inconclusive: {cut}")


def test_a_passing_run_reads_pass() -> None:
    assert _text(Report(verdict="pass")).rstrip().endswith("verdict: PASS")


def test_summary_shows_locusts_exit_code_and_overrun_when_set(oom_text: str) -> None:
    assert _line(oom_text, "Locust exit code") == "Locust exit code 0"
    assert "Locust overran" not in oom_text
    overran = "Locust ran 30 s past --duration and was stopped"
    text = _text(Report(load=Load(locust_exit_code=1, overran=overran, shape=None)))
    assert _line(text, "Locust exit code") == "Locust exit code 1"
    assert _line(text, "Locust overran") == f"Locust overran {overran}"
    assert "no shape (-u users at -r per second for -t)" in text
    assert "Locust exit code" not in _text(Report())


def test_summary_shows_frozen_memory_target_exits_and_the_generators_cpu_warning() -> None:
    report = Report(memory=Memory(frozen_at=12.25), target_exits=["probe-users-2"])
    report.cost.load_generator_cpu_percent = 97.0
    report.cost.load_generator_cpu_warning = True
    text = _text(report)
    assert _line(text, "frozen at limit") == (
        "frozen at limit from t=12.2 s (the kernel's under_oom: OOM killing is disabled)"
    )
    assert _line(text, "target exits") == "target exits probe-users-2 stopped and were not started again"
    assert _line(text, "load generator CPU") == "load generator CPU 97.0% (Locust warned: CPU above 90 %)"


def test_summary_of_an_empty_run_says_n_a() -> None:
    text = _text(Report())
    assert _line(text, "latency p95") == "latency p95 n/a"
    assert _line(text, "writes") == "writes n/a"
    assert _line(text, "peak memory") == "peak memory n/a"
    assert _line(text, "load generator CPU") == "load generator CPU n/a"


def test_summary_flags_limits_that_were_not_applied() -> None:
    report = Report(limits=Limits(memory_requested_bytes=256 << 20, applied_matches=False, problems=["[x] no cap"]))
    text = _text(report)
    assert "applied as asked: no" in text
    # Brackets are text, not rich markup.
    assert "[x] no cap" in text


def test_summary_shows_the_limits_notes() -> None:
    note = "the host has no swap: the limit is strict in effect"
    text = _text(Report(limits=Limits(notes=[note])))
    assert _line(text, "note:") == f"note: {note}"


def test_summary_prints_names_literally() -> None:
    report = Report(events=[Event(t=1.0, action="die", container="[bold]c[/bold]", service="[red]s", exit_code=1)])
    assert "[bold]c[/bold]" in _text(report)


def test_summary_lists_at_most_ten_events() -> None:
    report = Report(events=[Event(t=float(i), action="start", container="c", service="s") for i in range(12)])
    text = _text(report)
    assert "11.0 s" not in text
    assert "2 more in the JSON and HTML reports" in text


def _trending(time_to_limit_s: float | None, shape: str | None = "steady") -> Report:
    trend = MemoryTrend(
        slope_mib_per_min=0.8,
        slope_low=0.5,
        slope_high=1.1,
        intercept_bytes=100.0 * 2**20,
        warmup_s=12.0,
        points=48,
        time_to_limit_s=time_to_limit_s,
        source="Theil-Sen slope",
    )
    return Report(memory=Memory(trend=trend), load=Load(shape=shape))


def _unwrapped(text: str) -> str:
    return " ".join(text.split())


def test_summary_shows_the_memory_trend_and_when_the_limit_would_be_reached() -> None:
    text = _unwrapped(_text(_trending(3.2 * 3600)))
    assert (
        "memory trend: +0.8 MiB/min (95 % CI 0.5..1.1) after 12 s warm-up; "
        "the limit would be reached in about 3.2 h at this load"
    ) in text
    # The headline, just above the verdict.
    assert text.endswith(
        "At this load the memory limit is reached in about 3.2 h (+0.8 MiB/min after the warm-up) verdict: FAIL"
    )


def test_summary_of_a_ramp_states_no_headline() -> None:
    text = _unwrapped(_text(_trending(3.2 * 3600, "ramp")))
    assert "about 3.2 h if it went on (the load was not constant: ramp)" in text
    assert "At this load" not in text


def test_summary_shows_a_flat_or_missing_trend_without_a_headline() -> None:
    flat = _trending(None)
    assert flat.memory.trend is not None
    flat.memory.trend.slope_low = -0.2
    text = _unwrapped(_text(flat))
    assert "memory trend: flat: +0.8 MiB/min (95 % CI -0.2..1.1) after 12 s warm-up" in text
    assert "At this load" not in text
    assert "memory trend: not fitted (fewer than 10 memory samples of the target after the warm-up)" in _unwrapped(
        _text(Report())
    )


def test_each_fault_gets_a_row_with_its_recovery_and_the_explained_restarts_a_line() -> None:
    from stackprobe.report.model import FaultEffects, FaultRecord, Recovery

    report = load_report(DATA / "report_oom.json")
    report.faults = [
        FaultRecord(
            action="restart",
            service="db",
            at=20,
            done=True,
            started=20.05,
            ended=22.9,
            recovery=Recovery(
                reference="start",
                from_t=20.05,
                requests=191,
                errors=111,
                first_success_s=4.45,
                recovered_s=9.45,
                status="recovered",
                summary="recovered in 9.5 s",
            ),
        )
    ]
    report.faults.append(
        FaultRecord(action="kill", service="users", at=40, signal="SIGKILL", sent_via="host", done=True, started=40.26)
    )
    report.fault_effects = FaultEffects(recovery_allowance_s=10, restarts_explained=1, restarts_unexplained=0)
    text = _text(report)
    assert "Faults (recovery allowance 10 s)" in text
    assert _line(text, "restart db@20s") == (
        "restart db@20s yes t=20.1 to 22.9 s; 191 requests, 111 errors during it; first success 4.5-5.5 s after; "
        "recovered in 9.5 s"
    )
    assert _line(text, "kill users@40s") == "kill users@40s yes t=40.3 s; SIGKILL to PID 1 from the host"
    assert _line(text, "explained by faults") == (
        "explained by faults restarts 1, unexplained 0; OOM kills 0, unexplained 0"
    )


def test_summary_shows_duplicates_writes_refused_but_written_and_unresolved_ones() -> None:
    writes = Writes(
        applicable=True,
        acknowledged=10,
        verified=10,
        lost=0,
        unverified=0,
        indeterminate=4,
        recovered=1,
        not_applied=1,
        unresolved=2,
        failed=3,
        failed_applied=1,
        duplicated=1,
        duplicated_examples=["/users/8: 2 records of that name"],
        failed_applied_examples=["'ada': refused (HTTP 503) but written"],
    )
    text = _text(Report(writes=writes))
    assert _line(text, "writes") == "writes 0 lost, 0 unverified, 10 verified of 10 acknowledged, 1 duplicated"
    assert _line(text, "indeterminate") == "indeterminate 4: 1 recovered (applied), 1 not applied, 2 unresolved"
    assert _line(text, "refused writes") == "refused writes 3, 1 found written"
    assert _line(text, "duplicated, e.g.") == "duplicated, e.g. /users/8: 2 records of that name"
    assert _line(text, "refused but written, e.g.") == "refused but written, e.g. 'ada': refused (HTTP 503) but written"


def test_summary_says_how_many_writes_the_listing_verified_and_how_many_were_read_alone() -> None:
    listing = Listing(
        url="/users?limit=500", pages=31, records=15_120, complete=True, verified=14_816, spot_checked=302
    )
    writes = Writes(applicable=True, acknowledged=15_120, verified=15_120, lost=0, unverified=0, listing=listing)
    assert _line(_text(Report(writes=writes)), "read back") == (
        "read back 14,816 verified on the listing (15,120 records in 31 pages of /users?limit=500, 302 of its "
        "writes spot-checked alone, all as it showed), 304 acknowledged read back alone"
    )
    listing = Listing(url="/users?limit=500", pages=1, records=500, complete=False, verified=0, problem="HTTP 500")
    writes = Writes(applicable=True, acknowledged=15_120, verified=15_120, lost=0, unverified=0, listing=listing)
    assert _line(_text(Report(writes=writes)), "read back") == (
        "read back 500 records in 1 page of /users?limit=500; set aside: HTTP 500; every write read back alone"
    )
