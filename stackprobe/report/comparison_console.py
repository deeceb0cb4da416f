"""Print a sweep or a fit to a terminal: one table row per run with its reasons, then what was found."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from stackprobe.report.comparison import Fit, RunRow, Sweep
from stackprobe.report.fmt import NA, format_bytes, format_ms, format_number, format_ratio, format_t

_STYLES = {"pass": "bold green", "fail": "bold red", "inconclusive": "bold yellow", "error": "bold magenta"}
_STATUS_STYLES = {"found": "bold green", "budget": "bold yellow", "none_holds": "bold red", "uncertain": "bold yellow"}
_MAX_REASONS = 3


def _peak(row: RunRow) -> str:
    if row.peak_bytes is None:
        return NA
    text = format_bytes(row.peak_bytes)
    if row.limit_bytes is not None and row.limit_bytes > 0:
        text += f" of {format_bytes(row.limit_bytes)}"
    return text


def _oom(row: RunRow) -> str:
    if row.oom_kills is None:
        return NA
    if row.oom_kills and row.first_oom_t is not None:
        return f"{row.oom_kills} (first at {format_t(row.first_oom_t)})"
    return str(row.oom_kills)


def describe_row(row: RunRow) -> Text:
    """Return one finished run in a line: label, verdict, rps, p95, errors, peak against limit, OOM kills."""
    text = Text.assemble((f"{row.label}  ", "bold"), (row.verdict.upper(), _STYLES.get(row.verdict, "bold")))
    if row.verdict == "error":
        text.append(f"  {row.error or ''}", style="magenta")
    else:
        errors = format_ratio(row.failure_ratio, 2)
        text.append(
            f"  {format_number(row.rps)} req/s, p95 {format_ms(row.p95_ms)}, errors {errors}, "
            f"peak {_peak(row)}, OOM kills {_oom(row)}"
        )
    text.append(f"  ({row.wall_s:.0f} s)", style="dim")
    return text


def _peak_short(row: RunRow) -> str:
    if row.peak_bytes is None:
        return NA
    share = f", {format_ratio(row.peak_ratio, 0)}" if row.peak_ratio is not None else ""
    return format_bytes(row.peak_bytes) + share


def _oom_short(row: RunRow) -> str:
    if row.oom_kills is None:
        return NA
    if row.oom_kills and row.first_oom_t is not None:
        return f"{row.oom_kills} at {format_t(row.first_oom_t)}"
    return str(row.oom_kills)


def runs_table(rows: list[RunRow], title: str, *, with_phase: bool = False) -> Table:
    """Return a table of runs (the label names the limits): verdict, rps, latency, errors, peak, OOM kills."""
    table = Table(title=title, title_justify="left")
    columns = ["run", "verdict", "req/s", "p95", "p99", "errors", "peak, of limit", "OOM kills"]
    if with_phase:
        columns.insert(1, "step")
    for column in columns:
        table.add_column(column, justify="left" if column in ("run", "step", "verdict") else "right")
    for row in rows:
        cells: list[str | Text] = [
            Text(row.label),
            Text(row.verdict, style=_STYLES.get(row.verdict, "")),
            format_number(row.rps),
            format_ms(row.p95_ms),
            format_ms(row.p99_ms),
            format_ratio(row.failure_ratio, 2),
            _peak_short(row),
            _oom_short(row),
        ]
        if with_phase:
            cells.insert(1, (row.phase or "") + (" (retry)" if row.retry else ""))
        table.add_row(*cells)
    return table


def reasons_text(rows: list[RunRow]) -> Text:
    """Return why each run that did not pass did not, a few reasons each, and where its report is."""
    text = Text()
    for row in rows:
        if row.verdict == "pass":
            continue
        shown = row.reasons[:_MAX_REASONS]
        more = len(row.reasons) - len(shown)
        text.append(f"{row.label} ", style="bold")
        text.append(row.verdict, style=_STYLES.get(row.verdict, ""))
        if row.report_html:
            text.append(f" ({row.report_html})", style="dim")
        for reason in shown:
            text.append(f"\n  - {reason}")
        if more > 0:
            text.append(f"\n  - and {more} more in its report", style="dim")
        text.append("\n")
    text.rstrip()
    return text


def render_sweep_console(sweep: Sweep, console: Console | None = None) -> None:
    """Print a sweep: its runs' table, what was found, and the overall verdict."""
    console = console or Console()
    console.print(runs_table(sweep.runs, f"Sweep of {sweep.target.service}: {len(sweep.runs)} runs"))
    if any(row.verdict != "pass" for row in sweep.runs):
        console.print(reasons_text(sweep.runs))
    for line in sweep.summary:
        console.print(Text(f"  {line}"))
    console.print(Text.assemble(("sweep: ", "bold"), (sweep.verdict.upper(), _STYLES.get(sweep.verdict, "bold"))))


def render_fit_console(fit: Fit, console: Console | None = None) -> None:
    """Print a fit: its runs' table, the bracket, the recommendations beside each other, and the status."""
    console = console or Console()
    what = "memory" if fit.resource == "memory" else "CPU"
    console.print(
        runs_table(fit.runs, f"Fit of {fit.target.service}'s {what} limit: {len(fit.runs)} runs", with_phase=True)
    )
    if any(row.verdict != "pass" for row in fit.runs):
        console.print(reasons_text(fit.runs))
    answer = Table(title="Answer", title_justify="left", show_header=False)
    answer.add_column("figure", no_wrap=True)
    answer.add_column("value")
    for line in fit.summary:
        figure, sep, value = line.partition(": ")
        answer.add_row(Text(figure), Text(value)) if sep else answer.add_row(Text(line), "")
    console.print(answer)
    if fit.highest_failing is not None and fit.highest_failing.report_html:
        console.print(Text(f"  evidence of the failure: {fit.highest_failing.report_html}"))
    console.print(
        Text.assemble(("fit: ", "bold"), (fit.status.replace("_", " ").upper(), _STATUS_STYLES.get(fit.status, "bold")))
    )
