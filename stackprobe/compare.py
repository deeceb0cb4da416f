"""`stackprobe compare BASE NEW`: two runs' report.json side by side, and a regression beyond the bounds fails.

The same comparison as `run --baseline`, made on files: a CI job can keep the last good report.json as an
artefact and compare each new run with it, or compare two runs made elsewhere.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console
from rich.text import Text

from stackprobe.baseline import DEFAULT_MAX_REGRESSION, check_base, compare, parse_bounds, read_report, setup_of
from stackprobe.ci import add_output_arguments, prepare_outputs, write_compare_outputs
from stackprobe.report.console import baseline_table
from stackprobe.report.regression import regression_reasons, unmeasured_reasons

EXIT_HELP = """exit codes:
  0    no figure moved beyond its bound
  1    a figure regressed beyond its bound
  2    usage error: bad bounds, a report that cannot be read, or runs made differently (service, load, limits)
  3    no regression, but NEW lacks a bounded figure (not measured in that run)
"""


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Add `stackprobe compare BASE NEW [--max-regression BOUNDS]`."""
    parser = commands.add_parser(
        "compare",
        help="compare two runs' report.json figure by figure; fail on a regression beyond the bounds",
        description=(
            "Show two runs' figures side by side (requests, rps, errors, latency, peak and idle memory,\n"
            "memory trend, CPU, OOM kills, restarts, lost writes) and hold NEW to BASE within --max-regression.\n"
            "Each argument is a report.json or the folder holding one. The runs must have been made alike:\n"
            "same service, users, rate, shape, duration and limits asked. Only the figures are judged, not\n"
            "NEW's own verdict."
        ),
        epilog=EXIT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("base", type=Path, metavar="BASE", help="the base run's report.json (or its folder)")
    parser.add_argument("new", type=Path, metavar="NEW", help="the new run's report.json (or its folder)")
    parser.add_argument(
        "--max-regression",
        default=DEFAULT_MAX_REGRESSION,
        metavar="BOUNDS",
        help="how far each figure may move the worse way: relative (p95:10%%, rps:-10%%) or absolute (p95:+20ms, "
        f'peak_memory:+8MiB, errors:+0.5pp); default "{DEFAULT_MAX_REGRESSION.replace("%", "%%")}"',
    )
    add_output_arguments(
        parser, junit_help="also write JUnit XML: one testcase per bounded figure, failed when it regressed"
    )
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace, console: Console) -> int:
    """Compare NEW with BASE; return 0 (within the bounds), 1 (regressed) or 3 (a bounded figure not measured).

    Raises UsageError (exit 2) for bad bounds, an unreadable report, or runs made differently.
    """
    bounds = parse_bounds(args.max_regression)
    base, new = read_report(args.base), read_report(args.new)
    check_base(base, args.base, bounds, setup_of(new))
    prepare_outputs(args)
    baseline = compare(base, new, bounds, path=str(args.base), spec=args.max_regression)
    console.print(baseline_table(baseline))
    regressions, unmeasured = regression_reasons(baseline), unmeasured_reasons(baseline)
    if regressions:
        outcome, style, code = "REGRESSED", "bold red", 1
    elif unmeasured:
        outcome, style, code = "INCONCLUSIVE", "bold yellow", 3
    else:
        outcome, style, code = "WITHIN BOUNDS", "bold green", 0
    text = Text.assemble(("compare: ", "bold"), (outcome, style), f" ({args.new} against {args.base})")
    for reason in [*regressions, *unmeasured]:
        text.append(f"\n  - {reason}")
    console.print(text)
    write_compare_outputs(baseline, f"stackprobe compare {args.new} against {args.base}", args, console)
    return code
