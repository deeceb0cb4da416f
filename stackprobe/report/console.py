"""Print a Report's summary to a terminal as rich tables."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from stackprobe.report.fmt import (
    NA,
    describe_step_search,
    format_bytes,
    format_check,
    format_count,
    format_ms,
    format_number,
    format_peak_memory,
    format_percent,
    format_ratio,
)
from stackprobe.report.model import Report

_MAX_EVENTS = 10


def render_console(report: Report, console: Console | None = None) -> None:
    """Print limits, load, memory, CPU, events, writes, SLO checks and the verdict."""
    console = console or Console()
    target = report.target
    console.print(
        Text.assemble(
            ("stackprobe ", "bold"),
            f"{target.project}/{target.service} at {target.url}, {report.duration_s:.1f} s",
        )
    )
    console.print(_limits_table(report))
    console.print(_run_table(report))
    if report.events:
        console.print(_events_table(report))
    if report.slo.checks:
        console.print(_slo_table(report))
    console.print(_verdict(report))


def _mark(ok: bool, yes: str = "yes", no: str = "no") -> Text:
    return Text(yes, style="green") if ok else Text(no, style="bold red")


def _limits_table(report: Report) -> Table:
    limits = report.limits
    table = Table(title="Limits", title_justify="left")
    for column in ("limit", "asked", "declared", "applied", "cgroup"):
        table.add_column(column, justify="left" if column == "limit" else "right")
    table.add_row(
        "memory",
        format_bytes(limits.memory_requested_bytes),
        format_bytes(limits.memory_declared_bytes),
        format_bytes(limits.memory_applied_bytes),
        format_bytes(limits.memory_cgroup_bytes),
    )
    table.add_row("CPUs", format_number(limits.cpus_requested, 2), "", format_number(limits.cpus_applied, 2), "")
    version = NA if limits.cgroup_version is None else f"v{limits.cgroup_version}"
    table.caption = Text.assemble(f"cgroup {version}; applied as asked: ", _mark(limits.applied_matches))
    table.caption_justify = "left"
    for problem in limits.problems:
        table.add_row(Text(problem, style="red"), "", "", "", "")
    return table


def _run_table(report: Report) -> Table:
    requests, latency, memory, cpu, writes = (
        report.requests,
        report.latency_ms,
        report.memory,
        report.cpu,
        report.writes,
    )
    table = Table(title="Run", title_justify="left", show_header=False)
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_row("requests", format_count(requests.total))
    table.add_row("requests/s", format_number(requests.rps))
    failures = f"{format_count(requests.failures)} ({format_ratio(requests.failure_ratio, 2)})"
    table.add_row("failures", Text(failures, style="red" if requests.failures else ""))
    for name in ("p50", "p95", "p99", "avg", "max"):
        table.add_row(f"latency {name}", format_ms(getattr(latency, name)))
    peak = format_peak_memory(memory)
    table.add_row("peak memory", peak)
    table.add_row("idle memory", format_bytes(memory.idle_bytes))
    table.add_row("CPU peak / avg", f"{format_percent(cpu.peak_percent)} / {format_percent(cpu.avg_percent)}")
    throttled = NA if cpu.throttled_seconds is None else f"{cpu.throttled_seconds:.2f} s"
    table.add_row("CPU throttled", f"{format_count(cpu.throttled_periods)} periods, {throttled}")
    table.add_row("OOM kills", Text(str(report.oom_kills), style="bold red" if report.oom_kills else ""))
    table.add_row("restarts", Text(str(report.restarts), style="bold red" if report.restarts else ""))
    if writes.applicable:
        lost = f"{format_count(writes.lost)} lost of {format_count(writes.acknowledged)} acknowledged"
        table.add_row("writes", Text(lost, style="bold red" if writes.lost else ""))
    else:
        table.add_row("writes", NA)
    if report.load.step_search is not None:
        table.add_row("step search", describe_step_search(report.load.step_search))
    return table


def _events_table(report: Report) -> Table:
    table = Table(title="Events", title_justify="left")
    for column in ("t", "event", "service", "container", "exit code"):
        table.add_column(column)
    for event in report.events[:_MAX_EVENTS]:
        style = "bold red" if event.action in ("oom", "die") else ""
        exit_code = NA if event.exit_code is None else str(event.exit_code)
        table.add_row(
            f"{event.t:.1f} s", Text(event.action, style=style), Text(event.service), Text(event.container), exit_code
        )
    hidden = len(report.events) - _MAX_EVENTS
    if hidden > 0:
        table.caption = f"{hidden} more in the JSON and HTML reports"
    return table


def _slo_table(report: Report) -> Table:
    # Text, not str: rich would read brackets in what the user typed as markup.
    table = Table(title=Text(f"SLO {report.slo.spec}"), title_justify="left", show_header=False)
    table.add_column("check")
    table.add_column("result")
    for check in report.slo.checks:
        table.add_row(Text(format_check(check)), _mark(check.passed, "met", "not met"))
    return table


def _verdict(report: Report) -> Text:
    passed = report.verdict == "pass"
    text = Text.assemble(("verdict: ", "bold"), ("PASS" if passed else "FAIL", "bold green" if passed else "bold red"))
    for reason in report.reasons:
        text.append(f"\n  - {reason}")
    return text
