"""Print a Report's summary to a terminal as rich tables: every figure with its source, nothing left out.

Long lists (events, the clients' failures and exceptions) are cut at ten rows, with a count of the rest,
which the JSON and HTML reports hold in full.
"""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from stackprobe.report.fmt import (
    NA,
    describe_fault,
    describe_fault_outcome,
    describe_generator,
    describe_load,
    describe_peak_memory,
    describe_step_search,
    describe_trend,
    describe_worker,
    format_bytes,
    format_check,
    format_count,
    format_ms,
    format_number,
    format_percent,
    format_ratio,
    format_t,
    listing_text,
    oom_counts_disagree,
    short_worker_id,
    trend_growth,
    trend_headline,
)
from stackprobe.report.model import Baseline, Failure, LocustException, Report
from stackprobe.report.regression import describe_bound, figure_status, format_change, format_figure

_MAX_ROWS = 10
_MAX_EVENTS = _MAX_ROWS
_MAX_EXAMPLES = 3
_VERDICT_STYLES = {"pass": "bold green", "fail": "bold red", "inconclusive": "bold yellow"}


def render_console(report: Report, console: Console | None = None) -> None:
    """Print limits, load, memory, CPU, events, writes, the clients' errors, SLO checks and the verdict."""
    console = console or Console()
    target = report.target
    console.print(
        Text.assemble(
            ("stackprobe ", "bold"),
            f"{target.project}/{target.service} at {target.url or 'no URL (the stack did not start)'}, "
            f"{report.duration_s:.1f} s",
            f"\nload: {describe_load(report.load)}",
        )
    )
    console.print(_limits_table(report))
    console.print(_run_table(report))
    console.print(_trend(report))
    if report.events:
        console.print(_events_table(report))
    if report.faults:
        console.print(_faults_table(report))
    errors = report.client_errors
    if errors.failures or errors.exceptions:
        console.print(Text("What the clients saw", style="bold"))
    if errors.failures:
        console.print(_failures_table(errors.failures))
    if errors.exceptions:
        console.print(_exceptions_table(errors.exceptions))
    if report.slo.checks:
        console.print(_slo_table(report))
    if report.baseline is not None:
        console.print(baseline_table(report.baseline))
    if report.problems:
        console.print(_problems(report))
    headline = trend_headline(report)
    if headline:
        console.print(Text(headline, style="bold red"))
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
    for note in limits.notes:
        table.add_row(Text(f"note: {note}", style="dim"), "", "", "", "")
    return table


def _count(value: int, style: str = "bold red") -> Text:
    return Text(format_count(value), style=style if value else "")


def _run_table(report: Report) -> Table:
    requests, latency, memory, cpu, load = (
        report.requests,
        report.latency_ms,
        report.memory,
        report.cpu,
        report.load,
    )
    table = Table(title="Run", title_justify="left", show_header=False)
    table.add_column("figure", no_wrap=True)
    table.add_column("value")
    table.add_row("requests", format_count(requests.total))
    table.add_row("requests/s", format_number(requests.rps))
    failures = f"{format_count(requests.failures)} ({format_ratio(requests.failure_ratio, 2)})"
    table.add_row("failures", Text(failures, style="red" if requests.failures else ""))
    table.add_row("exceptions", _count(requests.exceptions, "red"))
    for name in ("p50", "p95", "p99", "avg", "max"):
        table.add_row(f"latency {name}", format_ms(getattr(latency, name)))
    high = bool(memory.peak_ratio and memory.peak_ratio >= 0.9)
    # Text, not str: a source is free text, and rich would read brackets in it as markup.
    table.add_row(
        "peak memory", Text(describe_peak_memory(memory, report.limits.cgroup_version), style="red" if high else "")
    )
    table.add_row("idle memory", format_bytes(memory.idle_bytes))
    if memory.frozen_at is not None:
        frozen = f"from t={memory.frozen_at:.1f} s (the kernel's under_oom: OOM killing is disabled)"
        table.add_row("frozen at limit", Text(frozen, style="bold red"))
    table.add_row("CPU peak / avg", f"{format_percent(cpu.peak_percent)} / {format_percent(cpu.avg_percent)}")
    throttled = NA if cpu.throttled_seconds is None else f"{cpu.throttled_seconds:.2f} s"
    table.add_row("CPU throttled", f"{format_count(cpu.throttled_periods)} periods, {throttled}")
    table.add_row("OOM kills", _oom_kills(report))
    table.add_row("restarts", _count(report.restarts))
    if report.faults:
        effects = report.fault_effects
        table.add_row(
            "explained by faults",
            Text.assemble(
                f"restarts {effects.restarts_explained}, unexplained ",
                _count(effects.restarts_unexplained),
                f"; OOM kills {effects.oom_kills_explained}, unexplained ",
                _count(effects.oom_kills_unexplained),
            ),
        )
    if report.target_exits:
        exits = f"{', '.join(report.target_exits)} stopped and were not started again"
        table.add_row("target exits", Text(exits, style="bold red"))
    _writes_rows(report, table)
    if load.locust_exit_code is not None:
        table.add_row("Locust exit code", _count(load.locust_exit_code))
    if load.overran:
        table.add_row("Locust overran", Text(load.overran, style="bold red"))
    table.add_row("load generator CPU", _generator_cpu(report))
    if load.distributed is not None:
        dist = load.distributed
        table.add_row(
            "Locust master", Text(describe_generator(dist), style="bold yellow" if dist.generator_bound else "")
        )
        for worker in dist.workers:
            style = "bold yellow" if worker.saturated or not worker.listener else ""
            table.add_row(Text(f"worker {short_worker_id(worker.id)}"), Text(describe_worker(worker), style=style))
    if load.step_search is not None:
        table.add_row("step search", describe_step_search(load.step_search))
    return table


def _trend(report: Report) -> Text:
    """Return "memory trend: +0.8 MiB/min (95 % CI 0.5..1.1) after 12 s warm-up; the limit would be …"."""
    trend = report.memory.trend
    growing = trend is not None and trend_growth(trend) == "growing"
    return Text.assemble(
        ("memory trend: ", "bold"), (describe_trend(trend, report.load), "bold yellow" if growing else "")
    )


def _oom_kills(report: Report) -> Text:
    text = Text.assemble(
        _count(report.oom_kills), f" — {report.oom_kills_source or 'source not recorded'}; engine oom events: "
    )
    if oom_counts_disagree(report):
        text.append(f"{report.oom_events} (disagrees with the kernel's count)", style="bold yellow")
    else:
        text.append(str(report.oom_events))
    return text


def _writes_rows(report: Report, table: Table) -> None:
    writes = report.writes
    if not writes.applicable:
        table.add_row("writes", NA)
        return
    counts = Text.assemble(
        (f"{format_count(writes.lost)} lost", "bold red" if writes.lost else ""),
        ", ",
        (f"{format_count(writes.unverified)} unverified", "bold yellow" if writes.unverified else ""),
        f", {format_count(writes.verified)} verified of {format_count(writes.acknowledged)} acknowledged",
    )
    if writes.duplicated is not None:
        counts.append(", ")
        counts.append(f"{format_count(writes.duplicated)} duplicated", "bold red" if writes.duplicated else "")
    table.add_row("writes", counts)
    if writes.indeterminate is not None:
        unsure = Text(
            f"{format_count(writes.indeterminate)}: {format_count(writes.recovered)} recovered (applied), "
            f"{format_count(writes.not_applied)} not applied"
        )
        if writes.unresolved:
            unsure.append(f", {format_count(writes.unresolved)} unresolved", "bold yellow")
        table.add_row("indeterminate", unsure)
    if writes.failed is not None:
        refused = Text(f"{format_count(writes.failed)}, ")
        refused.append(
            f"{format_count(writes.failed_applied)} found written", "bold red" if writes.failed_applied else ""
        )
        table.add_row("refused writes", refused)
    if writes.listing is not None:
        table.add_row("read back", listing_text(writes), style="" if writes.listing.complete else "yellow")
    for label, examples in (
        ("lost, e.g.", writes.lost_examples),
        ("unverified, e.g.", writes.unverified_examples),
        ("duplicated, e.g.", writes.duplicated_examples),
        ("refused but written, e.g.", writes.failed_applied_examples),
        ("unresolved, e.g.", writes.unresolved_examples),
    ):
        if examples:
            more = len(examples) - _MAX_EXAMPLES
            shown = ", ".join(examples[:_MAX_EXAMPLES]) + (f" and {more} more" if more > 0 else "")
            table.add_row(label, Text(shown))
    if writes.gave_up:
        table.add_row("audit gave up", Text(writes.gave_up, style="yellow"))


def _generator_cpu(report: Report) -> Text:
    cost = report.cost
    text = Text(format_percent(cost.load_generator_cpu_percent))
    if report.load.distributed is not None:
        text.append(" of a core, master and workers here summed (each is judged on its own)")
    if cost.load_generator_cpu_warning:
        text.append(" (Locust warned: CPU above 90 %)", style="bold yellow")
    return text


def _events_table(report: Report) -> Table:
    table = Table(title="Events", title_justify="left")
    for column in ("t", "event", "service", "container", "exit code"):
        table.add_column(column)
    for event in report.events[:_MAX_EVENTS]:
        style = "bold red" if event.action in ("oom", "die") else ""
        exit_code = NA if event.exit_code is None else str(event.exit_code)
        table.add_row(
            format_t(event.t), Text(event.action, style=style), Text(event.service), Text(event.container), exit_code
        )
    _more(table, len(report.events))
    return table


def _more(table: Table, total: int) -> None:
    hidden = total - _MAX_ROWS
    if hidden > 0:
        table.caption = f"{hidden} more in the JSON and HTML reports"
        table.caption_justify = "left"


def _failures_table(failures: list[Failure]) -> Table:
    table = Table(title="Failed requests (Locust's failures)", title_justify="left")
    for column in ("request", "error", "count", "first t", "last t"):
        table.add_column(column, justify="right" if column in ("count", "first t", "last t") else "left")
    for failure in failures[:_MAX_ROWS]:
        table.add_row(
            Text(f"{failure.method} {failure.name}".strip()),
            Text(failure.error, style="red"),
            format_count(failure.occurrences),
            format_t(failure.first_t),
            format_t(failure.last_t),
        )
    _more(table, len(failures))
    return table


def _exceptions_table(exceptions: list[LocustException]) -> Table:
    table = Table(title="Exceptions in the locustfile", title_justify="left")
    for column in ("exception", "count", "first t", "last t"):
        table.add_column(column, justify="left" if column == "exception" else "right")
    for exception in exceptions[:_MAX_ROWS]:
        table.add_row(
            Text(exception.message, style="red"),
            format_count(exception.count),
            format_t(exception.first_t),
            format_t(exception.last_t),
        )
    _more(table, len(exceptions))
    return table


def _slo_table(report: Report) -> Table:
    # Text, not str: rich would read brackets in what the user typed as markup.
    table = Table(title=Text(f"SLO {report.slo.spec}"), title_justify="left", show_header=False)
    table.add_column("check")
    table.add_column("result")
    for check in report.slo.checks:
        result = _mark(check.passed, "met", "not met") if check.actual is not None else Text("not measured", "yellow")
        table.add_row(Text(format_check(check)), result)
    if report.slo.scope:
        table.caption = report.slo.scope
        table.caption_justify = "left"
    return table


def _faults_table(report: Report) -> Table:
    """Return one row per fault: as scheduled, done or not, and what followed (recovery in words)."""
    allowance = report.fault_effects.recovery_allowance_s
    title = "Faults" + (f" (recovery allowance {allowance:g} s)" if allowance is not None else "")
    table = Table(title=title, title_justify="left")
    for column in ("fault", "done", "what happened"):
        table.add_column(column)
    for fault in report.faults:
        status = fault.recovery.status if fault.recovery is not None else ""
        style = "bold red" if status == "not_recovered" else "yellow" if status == "not_observed" else ""
        table.add_row(Text(describe_fault(fault)), _mark(fault.done), Text(describe_fault_outcome(fault), style=style))
    return table


def baseline_table(baseline: Baseline) -> Table:
    """Return this run beside its base run, figure by figure, with each bound and its outcome."""
    title = Text(f"Against the base run {baseline.path} ({baseline.base_started_at}, {baseline.base_verdict})")
    table = Table(title=title, title_justify="left")
    for column in ("figure", "base run", "this run", "change", "allowed", "result"):
        table.add_column(column, justify="left" if column in ("figure", "allowed", "result") else "right")
    styles = {"regressed": "bold red", "within": "green", "not measured": "yellow"}
    for figure in baseline.figures:
        status = figure_status(figure)
        table.add_row(
            figure.metric,
            format_figure(figure.unit, figure.base),
            format_figure(figure.unit, figure.new),
            format_change(figure),
            Text(describe_bound(figure)),
            Text(status, style=styles.get(status, "")),
        )
    table.caption = f"bounds: {baseline.max_regression}" if baseline.max_regression else None
    table.caption_justify = "left"
    return table


def _problems(report: Report) -> Text:
    text = Text("could not observe:", style="bold yellow")
    for problem in report.problems:
        text.append(f"\n  - {problem}", style="yellow")
    return text


def _verdict(report: Report) -> Text:
    text = Text.assemble(("verdict: ", "bold"), (report.verdict.upper(), _VERDICT_STYLES.get(report.verdict, "bold")))
    for reason in report.reasons:
        text.append(f"\n  - {reason}")
    return text
