"""`stackprobe report DIR`: render a run's page and console summary again from its report.json.

For a report.json copied from CI, or one written by an older page renderer: report.html is written beside
it, the console summary printed, and --junit / --summary-md written from it too. The exit code is the
report's own verdict's, as `stackprobe run` would have returned.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from stackprobe import cli
from stackprobe.baseline import read_report
from stackprobe.ci import add_output_arguments, prepare_outputs, write_run_outputs
from stackprobe.report import render_console, render_html
from stackprobe.spec import UsageError


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Add `stackprobe report DIR`."""
    parser = commands.add_parser(
        "report",
        help="render report.html and the console summary again from a run's report.json",
        description="Read DIR/report.json (or the report.json given), write report.html beside it and print\n"
        "the console summary; exit with the report's verdict's code.",
        epilog=cli.EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("dir", type=Path, metavar="DIR", help="a run's report folder (or its report.json)")
    add_output_arguments(parser)
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace, console: Console) -> int:
    """Render the report again; return its verdict's exit code. UsageError when report.json cannot be read."""
    source = args.dir / "report.json" if args.dir.is_dir() else args.dir
    report = read_report(source)
    prepare_outputs(args)
    html = source.parent / "report.html"
    try:
        render_html(report, html)
    except OSError as exc:
        raise UsageError(f"{html}: cannot write the page there ({exc.strerror or exc})") from None
    render_console(report, console)
    console.print(f"Report: {source}, {html}", highlight=False, soft_wrap=True)
    write_run_outputs(report, args, console, report_html=html)
    return cli.EXIT_CODES[report.verdict]
