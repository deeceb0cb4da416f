"""The outputs CI systems display, beside report.json: JUnit XML (--junit) and a Markdown summary.

The summary goes to --summary-md FILE (written over) and, under GitHub Actions, is appended to the file
$GITHUB_STEP_SUMMARY names, which GitHub shows on the run's page. Both files given are deleted before a
command starts, so that an earlier run's JUnit never passes for this one's.
"""

from __future__ import annotations

import argparse
import json
import os
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


# Files a command reads or writes itself, by name, inside a report folder: a CI output must never replace one.
OWN_FILES = (
    "report.json",
    "report.html",
    "history.jsonl",
    "writes.jsonl",
    "sweep.json",
    "sweep.html",
    "fit.json",
    "fit.html",
    "grow.json",
    "grow.html",
)


def _same(a: Path, b: Path) -> bool:
    return os.path.abspath(a) == os.path.abspath(b) or (a.exists() and b.exists() and a.samefile(b))


def _protected(args: argparse.Namespace) -> list[Path]:
    """Return the files this command reads or writes itself: its inputs, and its own files in its folders."""
    files: list[Path] = []
    for name in ("baseline", "base", "new", "dir", "out"):
        value = _arg(args, name)
        if value is None:
            continue
        if name == "baseline" or value.suffix == ".json":
            files.append(value)
        else:
            files += [value / own for own in OWN_FILES]
    return files


def prepare_outputs(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> None:
    """Check the --junit and --summary-md files can be written, and delete those an earlier run left.

    Raises UsageError when one is a folder or not a regular file (a device, a FIFO: never deleted), cannot
    be written, is the other one, or is a file the command reads or writes itself (its report.json, the
    base it compares with). A --summary-md that is $GITHUB_STEP_SUMMARY is kept: the summary is appended
    to it once, after what earlier steps wrote.
    """
    junit, summary_md = _arg(args, "junit"), _arg(args, "summary_md")
    if junit is not None and summary_md is not None and _same(junit, summary_md):
        raise UsageError(f"--junit and --summary-md name the same file: {junit}")
    github = step_summary_path(environ)
    protected = _protected(args)
    for flag, path in (("--junit", junit), ("--summary-md", summary_md)):
        if path is None:
            continue
        if str(path).strip() in ("", "."):
            raise UsageError(f"{flag}: give a file name")
        if path.is_dir():
            raise UsageError(f"{flag} {path}: is a folder; give a file name")
        if path.exists() and not path.is_file():
            raise UsageError(f"{flag} {path}: not a regular file (a device, a FIFO or a socket); give a file name")
        if any(_same(path, own) for own in protected):
            raise UsageError(f"{flag} {path}: is a file this command reads or writes itself; give another name")
        if flag == "--summary-md" and github is not None and _same(path, github):
            continue
        if path.parent.exists() and not path.parent.is_dir():
            raise UsageError(f"{flag} {path}: {path.parent} is not a folder")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)  # as pytest's --junitxml does
            existed = path.exists()
            with path.open("a"):
                pass
            if not existed or path.is_file():
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
        if summary_md is not None and not (github is not None and _same(summary_md, github)):
            written.append(write_summary(text, summary_md, append=False))
        if github is not None:
            try:
                written.append(write_summary(text, github, append=True))
            except OSError as exc:
                console.print(f"stackprobe: cannot append to $GITHUB_STEP_SUMMARY {github}: {exc}", highlight=False)
    if written:
        console.print(f"CI outputs: {', '.join(map(str, written))}", highlight=False, soft_wrap=True)
    return written
