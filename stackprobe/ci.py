"""The outputs CI systems display, beside report.json: JUnit XML (--junit) and a Markdown summary.

The summary goes to --summary-md FILE (written over) and, under GitHub Actions, is appended to the file
$GITHUB_STEP_SUMMARY names, which GitHub shows on the run's page. Both files given are deleted before a
command starts, so that an earlier run's JUnit never passes for this one's.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from junitparser import TestSuite
from rich.console import Console

from stackprobe.report.checks import baseline_checks, loop_checks
from stackprobe.report.fmt import format_bytes, format_number
from stackprobe.report.junit import build_suite, junit_suite, write_suite
from stackprobe.report.model import Baseline, Report
from stackprobe.report.summary import (
    STATUS_WORDS,
    baseline_markdown,
    cell,
    markdown_table,
    step_summary_path,
    summary_markdown,
    write_summary,
)
from stackprobe.spec import UsageError

# The JSON each loop of runs writes in its --out folder.
LOOP_JSON = {"sweep": "sweep.json", "fit": "fit.json", "grow": "grow.json"}


JUNIT_HELP = (
    "also write JUnit XML: one testcase per SLO term, limit, OOM kills, restarts, lost writes (and baseline "
    "figure), failed or in error (inconclusive) with the figure and its source"
)


def add_output_arguments(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup, junit_help: str = JUNIT_HELP
) -> None:
    """Add --junit FILE and --summary-md FILE to a command's parser."""
    parser.add_argument("--junit", type=Path, metavar="FILE", help=junit_help)
    parser.add_argument(
        "--summary-md",
        type=Path,
        metavar="FILE",
        help="also write a Markdown summary; under GitHub Actions it is appended to $GITHUB_STEP_SUMMARY anyway",
    )


def prepare_outputs(args: argparse.Namespace) -> None:
    """Delete the --junit and --summary-md files of an earlier run, checking they can be written: UsageError if not."""
    for flag, path in (("--junit", _arg(args, "junit")), ("--summary-md", _arg(args, "summary_md"))):
        if path is None:
            continue
        try:
            if path.is_dir():
                raise UsageError(f"{flag} {path}: is a folder; give a file name")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("")
            path.unlink()
        except OSError as exc:
            raise UsageError(f"{flag} {path}: cannot write there ({exc.strerror or exc})") from None


def _arg(args: argparse.Namespace, name: str) -> Path | None:
    value = getattr(args, name, None)
    return Path(value) if value is not None else None


def write_run_outputs(
    report: Report,
    args: argparse.Namespace,
    console: Console,
    report_html: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> list[Path]:
    """Write one run's JUnit and Markdown summary as the flags and $GITHUB_STEP_SUMMARY ask; return the files."""
    return _write(
        args, console, lambda: junit_suite(report, report_html), lambda: summary_markdown(report, report_html), environ
    )


def write_loop_outputs(
    args: argparse.Namespace, console: Console, environ: Mapping[str, str] | None = None
) -> list[Path]:
    """Write a loop's (sweep, fit, grow) JUnit and summary from the JSON it left in --out; [] when it left none."""
    path = Path(args.out) / LOOP_JSON[args.command]
    if not path.is_file():
        return []
    data = json.loads(path.read_text(encoding="utf-8"))
    target = data.get("target") or {}
    name = f"stackprobe {args.command} {target.get('project', '')}/{target.get('service', '')}".rstrip("/")
    checks = loop_checks(data)
    properties = {"service": str(target.get("service", "")), "json": str(path)}

    def suite() -> TestSuite:
        return build_suite(
            name,
            checks,
            properties=properties,
            seconds=float(data.get("duration_s") or 0),
            timestamp=str(data.get("started_at", "")),
        )

    return _write(args, console, suite, lambda: loop_markdown(args.command, data, path), environ)


def loop_markdown(kind: str, data: dict[str, Any], path: Path) -> str:
    """Return a loop's summary: its outcome, its own summary lines, and one row per run."""
    outcome = data.get("status") if kind == "fit" else data.get("verdict")
    target = data.get("target") or {}
    lines = [f"### stackprobe {kind} {cell(target.get('service', ''))}: **{cell(outcome)}**", ""]
    lines += [f"- {cell(line)}" for line in (data.get("summary") or data.get("reasons") or [])]
    runs = data.get("points") if kind == "grow" else data.get("runs")
    rows = [
        (
            run.get("label", ""),
            STATUS_WORDS.get(run.get("verdict", ""), run.get("verdict", "")),
            format_number(run.get("rps")),
            format_number(run.get("p95_ms")),
            format_bytes(run.get("peak_bytes")),
            format_number(run.get("oom_kills")),
            "; ".join(run.get("reasons") or ([run["error"]] if run.get("error") else [])),
        )
        for run in runs or []
    ]
    lines += ["", markdown_table(("run", "verdict", "req/s", "p95 ms", "peak memory", "OOM kills", "reasons"), rows)]
    lines += ["", f"Full results: `{path}` and the page beside it."]
    return "\n".join(lines) + "\n"


def write_compare_outputs(
    baseline: Baseline,
    name: str,
    args: argparse.Namespace,
    console: Console,
    environ: Mapping[str, str] | None = None,
) -> list[Path]:
    """Write `stackprobe compare`'s JUnit (one testcase per bounded figure) and its Markdown table."""
    checks = baseline_checks(baseline)

    def suite() -> TestSuite:
        return build_suite(name, checks, properties={"base": baseline.path}, seconds=0.0, timestamp="")

    return _write(args, console, suite, lambda: f"### {cell(name)}\n\n{baseline_markdown(baseline)}\n", environ)


def _write(
    args: argparse.Namespace,
    console: Console,
    suite: Callable[[], TestSuite],
    markdown: Callable[[], str],
    environ: Mapping[str, str] | None,
) -> list[Path]:
    """Write the JUnit file and the summaries asked for; each is built only when some flag asks for it."""
    written: list[Path] = []
    junit = _arg(args, "junit")
    if junit is not None:
        written.append(write_suite(suite(), junit))
    summary_md = _arg(args, "summary_md")
    github = step_summary_path(environ)
    if summary_md is not None or github is not None:
        text = markdown()
        if summary_md is not None:
            written.append(write_summary(text, summary_md, append=False))
        if github is not None:
            try:
                written.append(write_summary(text, github, append=True))
            except OSError as exc:
                console.print(f"stackprobe: cannot append to $GITHUB_STEP_SUMMARY {github}: {exc}", highlight=False)
    if written:
        console.print(f"CI outputs: {', '.join(map(str, written))}", highlight=False)
    return written
