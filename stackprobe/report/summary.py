"""A run's summary in Markdown for a CI job page: GitHub's $GITHUB_STEP_SUMMARY, or any file (--summary-md).

GitHub renders the file each step appends to $GITHUB_STEP_SUMMARY on the run's page ("Adding a job
summary", GitHub Actions docs): so the summary is appended there, never written over another step's.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

from stackprobe.report.checks import run_checks
from stackprobe.report.fmt import describe_load, format_number, format_peak_memory, format_ratio
from stackprobe.report.model import Baseline, Report
from stackprobe.report.regression import describe_bound, figure_status, format_change, format_figure

GITHUB_STEP_SUMMARY = "GITHUB_STEP_SUMMARY"
STATUS_WORDS = {"pass": "pass", "fail": "**FAIL**", "inconclusive": "**inconclusive**", "n/a": "n/a"}


def cell(text: object) -> str:
    """Return text that stays inside one Markdown table cell: pipes escaped, lines joined."""
    # "<" could open an HTML tag in GitHub's Markdown: the cell shows it as typed.
    return " ".join(str(text).split()).replace("&", "&amp;").replace("<", "&lt;").replace("|", "\\|")


def markdown_table(head: Iterable[str], rows: Iterable[Iterable[object]]) -> str:
    """Return a GitHub-flavoured Markdown table; cells are escaped here."""
    head = list(head)
    lines = ["| " + " | ".join(cell(h) for h in head) + " |", "|" + "---|" * len(head)]
    lines.extend("| " + " | ".join(cell(c) for c in row) + " |" for row in rows)
    return "\n".join(lines)


def summary_markdown(report: Report, report_html: Path | None = None) -> str:
    """Return one run's summary: the verdict and its reasons, the key figures, every check, the baseline."""
    target = report.target
    parts = [
        f"### stackprobe {target.project}/{target.service}: {STATUS_WORDS[report.verdict]}",
        "",
        f"Load: {cell(describe_load(report.load))}. Run of {report.duration_s:.1f} s from {report.started_at}.",
    ]
    if report.reasons:
        parts += ["", *(f"- {cell(reason)}" for reason in report.reasons)]
    requests = report.requests
    figures = [
        ("requests", f"{requests.total:,} at {format_number(requests.rps)}/s", "Locust's end-of-run totals"),
        ("errors", format_ratio(requests.failure_ratio, 2), "Locust's end-of-run totals"),
        ("p95", format_figure("ms", report.latency_ms.p95), "Locust's end-of-run totals"),
        ("peak memory", format_peak_memory(report.memory), report.memory.peak_source),
        ("OOM kills", str(report.oom_kills), report.oom_kills_source),
        ("restarts", str(report.restarts), "the engine's restart count"),
    ]
    parts += ["", markdown_table(("figure", "value", "source"), figures)]
    # The verdict's own row repeats the reasons listed above.
    checks = [c for c in run_checks(report) if c.group != "verdict"]
    parts += [
        "",
        markdown_table(
            ("check", "result", "figure and source"), ((c.name, STATUS_WORDS[c.status], c.message) for c in checks)
        ),
    ]
    if report.baseline is not None:
        parts += ["", baseline_markdown(report.baseline)]
    if report_html is not None:
        parts += ["", f"Full report: `{report_html}` (self-contained HTML, in the job's artefacts)."]
    return "\n".join(parts) + "\n"


def baseline_markdown(baseline: Baseline) -> str:
    """Return the side-by-side table of a run and its base run, with each bound and its outcome."""
    head = (
        f"#### Against the base run `{cell(baseline.path)}` ({cell(baseline.base_started_at)}, {baseline.base_verdict})"
    )
    rows = [
        (
            f.metric,
            format_figure(f.unit, f.base),
            format_figure(f.unit, f.new),
            format_change(f),
            describe_bound(f),
            "**regressed**" if f.regressed else figure_status(f),
        )
        for f in baseline.figures
    ]
    table = markdown_table(("figure", "base run", "this run", "change", "allowed", "result"), rows)
    return f"{head}\n\n{table}"


def write_summary(text: str, path: str | Path, *, append: bool) -> Path:
    """Write (or append, as $GITHUB_STEP_SUMMARY wants) Markdown to `path`; return the path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("a" if append else "w", encoding="utf-8") as handle:
        handle.write(text)
    return target


def step_summary_path(environ: Mapping[str, str] | None = None) -> Path | None:
    """Return the file GitHub Actions collects the job summary from, None outside GitHub Actions."""
    value = (os.environ if environ is None else environ).get(GITHUB_STEP_SUMMARY, "")
    return Path(value) if value else None
