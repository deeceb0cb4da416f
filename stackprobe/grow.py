"""`stackprobe grow`: the target's memory against the size of its data.

One full run per size, each on a fresh stack: `up`, then the seed command fills the data to that many
rows (through RunSpec.before_load: after `up`, before idle memory is sampled and the load starts), then
the load (the read-heavy persona loadtests/reader.py by default), the audit and the teardown. The answer:
peak memory, p95 and errors against rows, the bytes per row fitted over the sizes (Theil-Sen, so one odd
size does not tilt it), and with --find-break a bisection between the last size that held and the first
that broke. grow.json, grow.html and a console table land in --out, each run's own report in runs/<label>/.

A fresh stack per size rather than one stack grown from size to size: each size starts from the same cold
service, so its peak is its own (cgroup v2's memory.peak counts from the container's start, and a service
keeps what it once allocated), a broken size cannot spoil the next, and a bisection can try any size.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import re
import shlex
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from rich.console import Console
from rich.markup import escape

from stackprobe import __version__
from stackprobe.spec import RunSpec, UsageError, find_compose_file, parse_duration

if TYPE_CHECKING:
    from stackprobe.report.model import Report
    from stackprobe.stack import Teardown

Verdict = Literal["pass", "fail", "inconclusive"]
Phase = Literal["size", "bisection"]

GROW_SCHEMA_VERSION = 1
GROW_FILES = ("grow.json", "grow.html")
# Beside the compose file: the bundled stack's seeder and read-heavy persona, used when nothing else is given.
BUNDLED_SEEDER = Path("services") / "users" / "seed.sh"
BUNDLED_READER = Path("loadtests") / "reader.py"
DEFAULT_SEED_TIMEOUT = "10m"
DEFAULT_BREAK_TOLERANCE = 0.10
DEFAULT_BREAK_RUNS = 6
FIT_CONFIDENCE = 0.95
# The fewest fitted sizes that give the slope a confidence interval (and so a row count at the limit).
MIN_INTERVAL_POINTS = 3
INCONCLUSIVE_PREFIX = "inconclusive: "
# How long one size takes besides its load (up, seed, idle samples, audit, teardown), until one was measured.
FIRST_GUESS_OVERHEAD_S = 45.0
SEED_LOG = "seed.log"
RUN_CONSOLE = "console.txt"

_ROW_UNITS = {"": 1, "k": 1_000, "m": 1_000_000}
_ROWS_TERM = re.compile(r"(\d+(?:\.\d+)?)([km]?)")

GROW_EXIT_CODES_HELP = """exit codes:
  0    every size held (each run passed: SLO met, no OOM kill, restart or lost write, all of it seen)
  1    a size broke (grow.json's reasons say which and how)
  2    usage or set-up error (a message says what to fix; no grow report is written)
  3    inconclusive: nothing broke, but a run could not observe all it reports on
  130  interrupted (Ctrl-C); 143 terminated (SIGTERM); the stack of the size under way is torn down first
"""


def parse_rows(text: str) -> tuple[int, ...]:
    """Parse --rows ("1k,10k,100k,1m", "2500", "1.5m"): whole row counts, decimal units, in ascending order.

    k is a thousand and m a million (rows are counted, not sized). Raises UsageError for a term that is
    not a whole number of at least one row, or a size given twice.
    """
    sizes: list[int] = []
    for term in text.split(","):
        shown = term.strip()
        match = _ROWS_TERM.fullmatch(shown.lower().replace("_", ""))
        if match is None:
            raise UsageError(f"--rows: not a row count: {shown!r} (expected e.g. 1k,10k,100k,1m or 2500)")
        try:
            value = Decimal(match[1]) * _ROW_UNITS[match[2]]
        except InvalidOperation:
            raise UsageError(f"--rows: not a row count: {shown!r}") from None
        if value != value.to_integral_value():
            raise UsageError(f"--rows: {shown!r} is not a whole number of rows")
        rows = int(value)
        if rows < 1:
            raise UsageError(f"--rows: {shown!r}: a size must be at least one row")
        if rows in sizes:
            raise UsageError(f"--rows: {format_rows(rows)} rows is given twice")
        sizes.append(rows)
    return tuple(sorted(sizes))


def format_rows(rows: int) -> str:
    """Return a row count as --rows spells it: 1000 -> "1k", 2000000 -> "2m", 31623 -> "31,623"."""
    for suffix, unit in (("m", 1_000_000), ("k", 1_000)):
        if rows >= unit and rows % unit == 0:
            return f"{rows // unit}{suffix}"
    return f"{rows:,}"


def parse_tolerance(text: str) -> float:
    """Parse --break-tolerance: "10%" or a ratio "0.1"; above 0 and below 1 (100 %)."""
    cleaned = text.strip()
    try:
        value = float(cleaned[:-1]) / 100 if cleaned.endswith("%") else float(cleaned)
    except ValueError:
        raise UsageError(f"--break-tolerance: not a percentage: {text!r} (expected e.g. 10% or 0.1)") from None
    if not 0 < value < 1:
        raise UsageError(f"--break-tolerance: {text!r} must be above 0 and below 100%")
    return value


@dataclass(frozen=True, kw_only=True)
class GrowPoint:
    """One run at one data size: its verdict and the figures grow compares across sizes.

    error: the run could not be made (the seed command failed, the stack did not start); it then has no
    report and counts as inconclusive. report, page: the run's report.json and report.html, relative to
    the grow's --out folder.
    """

    rows: int
    label: str
    phase: Phase
    verdict: Verdict
    reasons: list[str] = field(default_factory=list)
    error: str | None = None
    seed_s: float | None = None
    peak_bytes: int | None = None
    peak_source: str = ""
    limit_bytes: int | None = None
    peak_ratio: float | None = None
    idle_bytes: int | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    rps: float | None = None
    requests: int | None = None
    failures: int | None = None
    error_ratio: float | None = None
    oom_kills: int | None = None
    restarts: int | None = None
    report: str | None = None
    page: str | None = None

    @property
    def held(self) -> bool:
        """The run passed: SLO met, no OOM kill, restart or lost write, and it saw all it reports on."""
        return self.verdict == "pass"

    @property
    def broke(self) -> bool:
        """Something was seen to go wrong in the run."""
        return self.verdict == "fail"

    @property
    def fittable(self) -> bool:
        """Its peak is the service's own: measured, and not the limit an OOM kill or a restart stands for."""
        return self.peak_bytes is not None and not self.oom_kills and not self.restarts

    @classmethod
    def from_report(
        cls, rows: int, label: str, phase: Phase, report: Report, seed_s: float | None, folder: str
    ) -> GrowPoint:
        """Take one run's figures from its report; `folder` is the run's folder relative to the grow's."""
        memory, latency, requests = report.memory, report.latency_ms, report.requests
        return cls(
            rows=rows,
            label=label,
            phase=phase,
            verdict=report.verdict,
            reasons=list(report.reasons),
            seed_s=None if seed_s is None else round(seed_s, 3),
            peak_bytes=memory.peak_bytes,
            peak_source=memory.peak_source,
            limit_bytes=memory.limit_bytes,
            peak_ratio=memory.peak_ratio,
            idle_bytes=memory.idle_bytes,
            p95_ms=latency.p95,
            p99_ms=latency.p99,
            rps=requests.rps,
            requests=requests.total,
            failures=requests.failures,
            error_ratio=requests.failure_ratio,
            oom_kills=report.oom_kills,
            restarts=report.restarts,
            report=f"{folder}/report.json",
            page=f"{folder}/report.html",
        )

    @classmethod
    def not_run(cls, rows: int, label: str, phase: Phase, error: str, seed_s: float | None = None) -> GrowPoint:
        """A size whose run could not be made: inconclusive, with why."""
        return cls(
            rows=rows,
            label=label,
            phase=phase,
            verdict="inconclusive",
            reasons=[f"the run could not be made: {error}"],
            error=error,
            seed_s=seed_s,
        )


@dataclass(frozen=True, kw_only=True)
class Fit:
    """Peak memory against rows: a robust straight line, and what it says about the limit.

    bytes_per_row: the Theil-Sen slope (the median of the slopes between every two sizes), with its
    `confidence` interval bytes_per_row_low..high (from three sizes on; None below); beside it
    least_squares_bytes_per_row (numpy.polyfit), which one odd size can tilt. peak_spread: (highest peak -
    lowest) / lowest over the fitted sizes. rows_at_limit: where the line reaches the memory limit, only when
    the whole interval of the slope is above zero (otherwise no growth was measured); often an
    extrapolation past the largest size tried.
    """

    method: str = "theil-sen"
    points: int = 0
    bytes_per_row: float | None = None
    bytes_per_row_low: float | None = None
    bytes_per_row_high: float | None = None
    confidence: float = FIT_CONFIDENCE
    intercept_bytes: float | None = None
    least_squares_bytes_per_row: float | None = None
    peak_spread: float | None = None
    rows_at_limit: int | None = None


def fit_bytes_per_row(
    samples: Sequence[tuple[int, int]], limit_bytes: int | None = None, confidence: float = FIT_CONFIDENCE
) -> Fit:
    """Fit peak bytes against rows over (rows, peak_bytes) samples; no slope from fewer than two sizes."""
    if not samples:
        return Fit(confidence=confidence)
    peaks = [peak for _, peak in samples]
    spread = (max(peaks) - min(peaks)) / min(peaks) if len(samples) > 1 and min(peaks) > 0 else None
    if len({rows for rows, _ in samples}) < 2:
        return Fit(points=len(samples), confidence=confidence, peak_spread=spread)
    # Imported here: numpy and scipy take a while to load, and `stackprobe --help` needs neither.
    import numpy
    from scipy.stats import theilslopes

    x = numpy.array([rows for rows, _ in samples], dtype=float)
    y = numpy.array(peaks, dtype=float)
    robust = theilslopes(y, x, alpha=confidence)
    slope, intercept = float(robust.slope), float(robust.intercept)
    least_squares = float(numpy.polyfit(x, y, 1)[0])
    # Two sizes make one slope and no interval: the noise between two runs would pass for a trend.
    low = float(robust.low_slope) if len(samples) >= MIN_INTERVAL_POINTS else None
    high = float(robust.high_slope) if len(samples) >= MIN_INTERVAL_POINTS else None
    rows_at_limit = None
    if limit_bytes is not None and low is not None and low > 0 and slope > 0:
        reach = (limit_bytes - intercept) / slope
        rows_at_limit = int(reach) if reach > 0 else None
    return Fit(
        points=len(samples),
        bytes_per_row=slope,
        bytes_per_row_low=low,
        bytes_per_row_high=high,
        confidence=confidence,
        intercept_bytes=intercept,
        least_squares_bytes_per_row=least_squares,
        peak_spread=spread,
        rows_at_limit=rows_at_limit,
    )


@dataclass(frozen=True, kw_only=True)
class BreakSearch:
    """Where the limit breaks: the most rows seen to hold below the fewest seen to break.

    last_held_rows is None when even the smallest size broke; first_broke_rows is None when nothing broke.
    runs: the bisection's own runs; stop_reason: why it ended.
    """

    last_held_rows: int | None
    first_broke_rows: int | None
    runs: int
    tolerance: float
    stop_reason: str


def find_break(
    points: Sequence[GrowPoint],
    try_rows: Callable[[int], GrowPoint],
    *,
    tolerance: float = DEFAULT_BREAK_TOLERANCE,
    max_runs: int = DEFAULT_BREAK_RUNS,
) -> BreakSearch:
    """Bisect between the last size that held and the first that broke, by row count (a geometric midpoint).

    The bracket starts at the fewest rows that broke and the most rows below it that held. Each run at the
    midpoint moves one end; the search ends when the ends are within `tolerance` of each other (or one row
    apart), after `max_runs` runs, or at a run that neither held nor broke (its side is not known).
    """
    broke = sorted(p.rows for p in points if p.broke)
    if not broke:
        return BreakSearch(
            last_held_rows=None, first_broke_rows=None, runs=0, tolerance=tolerance, stop_reason="no size broke"
        )
    high = broke[0]
    held = [p.rows for p in points if p.held and p.rows < high]
    if not held:
        return BreakSearch(
            last_held_rows=None,
            first_broke_rows=high,
            runs=0,
            tolerance=tolerance,
            stop_reason=f"no size below {format_rows(high)} rows held: nothing to bisect from",
        )
    low = max(held)
    runs = 0
    while True:
        if high - low <= 1:
            reason = "the bracket is one row wide"
            break
        if high <= low * (1 + tolerance):
            reason = f"the bracket is within {tolerance:.0%}"
            break
        if runs >= max_runs:
            reason = f"the bisection's {max_runs} runs are spent"
            break
        middle = min(max(round(math.sqrt(low * high)), low + 1), high - 1)
        point = try_rows(middle)
        runs += 1
        if point.held:
            low = middle
        elif point.broke:
            high = middle
        else:
            reason = f"the run at {format_rows(middle)} rows was inconclusive, so its side is not known"
            break
    return BreakSearch(last_held_rows=low, first_broke_rows=high, runs=runs, tolerance=tolerance, stop_reason=reason)


class GrowAborted(RuntimeError):
    """The first size could not be run at all: a set-up error, and no grow report."""


def run_sizes(
    sizes: Sequence[int],
    run_point: Callable[[int, Phase], GrowPoint],
    *,
    bisect: bool = False,
    tolerance: float = DEFAULT_BREAK_TOLERANCE,
    max_runs: int = DEFAULT_BREAK_RUNS,
) -> tuple[list[GrowPoint], BreakSearch | None]:
    """Run every size in ascending order, then (bisect) the break search; return the points and the search.

    A size whose run could not be made ends the sizes (a larger one would not fare better); when it is the
    first, nothing was measured and GrowAborted is raised instead.
    """
    points: list[GrowPoint] = []
    for rows in sorted(sizes):
        point = run_point(rows, "size")
        if point.error is not None and not points:
            raise GrowAborted(point.error)
        points.append(point)
        if point.error is not None:
            break
    if not bisect:
        return points, None

    def try_rows(rows: int) -> GrowPoint:
        point = run_point(rows, "bisection")
        points.append(point)
        return point

    search = find_break(list(points), try_rows, tolerance=tolerance, max_runs=max_runs)
    return points, search


def grow_verdict(points: Sequence[GrowPoint]) -> tuple[Verdict, list[str]]:
    """Judge the grow: fail when a size broke, inconclusive when one was not fully seen, else pass."""
    points = sorted(points, key=lambda p: p.rows)
    seen = [f"at {format_rows(p.rows)} rows: {_first_reason(p)}" for p in points if p.broke]
    unseen = [f"{INCONCLUSIVE_PREFIX}at {format_rows(p.rows)} rows: {_first_reason(p)}" for p in points if p.error]
    unseen += [
        f"{INCONCLUSIVE_PREFIX}at {format_rows(p.rows)} rows: {_first_reason(p)}"
        for p in points
        if p.verdict == "inconclusive" and not p.error
    ]
    if seen:
        return "fail", seen + unseen
    if unseen:
        return "inconclusive", unseen
    return "pass", []


def _first_reason(point: GrowPoint) -> str:
    if not point.reasons:
        return "the run failed" if point.broke else "the run was inconclusive"
    reason = point.reasons[0].removeprefix(INCONCLUSIVE_PREFIX)
    more = len(point.reasons) - 1
    return reason + (f" (and {more} more)" if more else "")


def grow_document(
    *,
    points: Sequence[GrowPoint],
    search: BreakSearch | None,
    spec: RunSpec,
    seed_command: str,
    started_at: datetime,
    finished_at: datetime,
) -> dict[str, Any]:
    """Return grow.json's structure (grow.schema.json): the runs by size, the fit, the break, the verdict."""
    limit = next((p.limit_bytes for p in points if p.limit_bytes), None)
    fit = fit_bytes_per_row([(p.rows, p.peak_bytes) for p in points if p.fittable and p.peak_bytes], limit)
    verdict, reasons = grow_verdict(points)
    return {
        "schema_version": GROW_SCHEMA_VERSION,
        "stackprobe_version": __version__,
        "started_at": started_at.isoformat(),
        "finished_at": finished_at.isoformat(),
        "duration_s": round((finished_at - started_at).total_seconds(), 3),
        "target": {
            "compose_files": [str(f) for f in spec.compose_files],
            "service": spec.service,
            "memory_limit_bytes": limit,
        },
        "load": {
            "locustfile": str(spec.locustfile),
            "users": spec.users,
            "spawn_rate": spec.spawn_rate,
            "arrival_rate": spec.rate,
            "duration_s": spec.duration_s,
            "slo": spec.slo,
        },
        "seed_command": seed_command,
        "sizes": sorted(p.rows for p in points if p.phase == "size"),
        "points": [_point_dict(p) for p in sorted(points, key=lambda p: (p.rows, p.phase != "size"))],
        "fit": dataclasses.asdict(fit),
        "break": None if search is None else dataclasses.asdict(search),
        "verdict": verdict,
        "reasons": reasons,
    }


def _point_dict(point: GrowPoint) -> dict[str, Any]:
    data = dataclasses.asdict(point)
    data["in_fit"] = point.fittable
    return data


def write_grow_json(document: dict[str, Any], path: Path) -> Path:
    """Write grow.json whole or not at all (beside it, then renamed), and return its path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(json.dumps(document, indent=2, allow_nan=False) + "\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


class SeedError(RuntimeError):
    """The seed command failed, hung past its timeout, or could not be started."""


@dataclass(frozen=True)
class Seeder:
    """The command that fills the data of a run's stack to a number of rows, on the host, before the load."""

    command: str
    compose_files: tuple[Path, ...]
    profiles: tuple[str, ...] = ()
    timeout_s: float = 600.0

    def environment(self, rows: int, project: str, url: str) -> dict[str, str]:
        """Return the command's environment: ours, the run's project, URL and rows, and Compose's own variables.

        With COMPOSE_PROJECT_NAME and COMPOSE_FILE set, a plain `docker compose exec -T db ...` reaches the
        run's stack as `docker compose -p "$STACKPROBE_PROJECT" exec ...` does.
        """
        files = os.pathsep.join(str(Path(f).resolve()) for f in self.compose_files)
        return {
            **os.environ,
            "STACKPROBE_PROJECT": project,
            "STACKPROBE_SERVICE_URL": url,
            "STACKPROBE_ROWS": str(rows),
            "STACKPROBE_COMPOSE_FILES": files,
            "COMPOSE_PROJECT_NAME": project,
            "COMPOSE_FILE": files,
            "COMPOSE_PATH_SEPARATOR": os.pathsep,
            "COMPOSE_PROFILES": ",".join(self.profiles),
        }

    def seed(self, rows: int, project: str, url: str, log: Path) -> float:
        """Run the command (its output into `log`); return its seconds, or raise SeedError saying why it failed.

        It runs in a session of its own and is ended whole (its `docker compose exec` with it) when it runs
        past the timeout or the run is interrupted.
        """
        log.parent.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        with log.open("w") as output:
            try:
                process = subprocess.Popen(
                    ["/bin/sh", "-c", self.command],
                    stdin=subprocess.DEVNULL,
                    stdout=output,
                    stderr=subprocess.STDOUT,
                    env=self.environment(rows, project, url),
                    start_new_session=True,
                )
            except OSError as exc:
                raise SeedError(f"the seed command could not be started: {exc}") from None
            try:
                code = process.wait(timeout=self.timeout_s)
            except subprocess.TimeoutExpired:
                _end_group(process)
                raise SeedError(
                    f"the seed command ran past {self.timeout_s:g} s at {format_rows(rows)} rows and was stopped "
                    f"(see {log})"
                ) from None
            except BaseException:
                _end_group(process)
                raise
        seconds = time.monotonic() - started
        if code != 0:
            tail = "\n".join(line for line in log.read_text(errors="replace").splitlines() if line.strip())[-2000:]
            raise SeedError(
                f"the seed command exited with code {code} at {format_rows(rows)} rows (its output: {log})"
                + (f"\n{tail}" if tail else "")
            )
        return seconds


def _end_group(process: subprocess.Popen[Any]) -> None:
    """Stop a process and its children: SIGTERM, then SIGKILL after five seconds."""
    for signum, wait_s in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 30.0)):
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signum)
        try:
            process.wait(timeout=wait_s)
            return
        except subprocess.TimeoutExpired:
            continue


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `stackprobe grow` with its own flags and every `run` flag."""
    from stackprobe import cli

    parser = commands.add_parser(
        "grow",
        help="memory against data size: one run per row count, the data seeded before each load",
        description=(
            "Run the stack once per data size, on a fresh stack each time: up, seed the data to that many\n"
            "rows, load, report. Then compare: peak memory, p95 and errors against rows, bytes per row\n"
            "fitted, and with --find-break the row count where the limit breaks. Default traffic: the\n"
            "read-heavy persona loadtests/reader.py beside the stack (else loadtests/); default seeder:\n"
            f"{BUNDLED_SEEDER} beside the stack. Each run's report goes to OUT/runs/<label>/."
        ),
        epilog=GROW_EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    data = parser.add_argument_group("data sizes")
    data.add_argument(
        "--rows", required=True, help="row counts to run at, e.g. 1k,10k,100k,1m (k: a thousand, m: a million)"
    )
    data.add_argument(
        "--seed-cmd",
        help="shell command run on the host before each size's load, with STACKPROBE_PROJECT, "
        "STACKPROBE_SERVICE_URL, STACKPROBE_ROWS, COMPOSE_PROJECT_NAME and COMPOSE_FILE set; it must leave "
        f"STACKPROBE_ROWS rows (default: {BUNDLED_SEEDER} beside the compose file, when there is one)",
    )
    data.add_argument(
        "--seed-timeout",
        default=DEFAULT_SEED_TIMEOUT,
        help=f"longest a seed command may run (default: {DEFAULT_SEED_TIMEOUT})",
    )
    data.add_argument(
        "--find-break",
        action="store_true",
        help="bisect between the last size that held and the first that broke, to the row count where it breaks",
    )
    data.add_argument(
        "--break-tolerance",
        default=f"{DEFAULT_BREAK_TOLERANCE:.0%}",
        help=f"stop bisecting when the two ends are this close (default: {DEFAULT_BREAK_TOLERANCE:.0%}%)",
    )
    data.add_argument(
        "--break-runs",
        type=int,
        default=DEFAULT_BREAK_RUNS,
        help=f"most runs the bisection makes (default: {DEFAULT_BREAK_RUNS})",
    )
    cli.add_run_arguments(parser)
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace, console: Console) -> int:
    """Run `stackprobe grow`; return its exit code (0 every size held, 1 one broke, 3 inconclusive)."""
    from stackprobe import cli
    from stackprobe.probe import SetupError

    sizes = parse_rows(args.rows)
    tolerance = parse_tolerance(args.break_tolerance)
    if args.break_runs < 1:
        raise UsageError("--break-runs must be at least 1")
    if args.keep_up:
        raise UsageError("--keep-up: grow runs each size on a stack of its own and tears it down before the next")
    seed_timeout_s = parse_duration(args.seed_timeout)
    if seed_timeout_s <= 0:
        raise UsageError("--seed-timeout must be above 0")
    if args.locustfile is None:
        compose_files = args.compose_file or [find_compose_file(Path.cwd())]
        reader = Path(compose_files[0]).resolve().parent / BUNDLED_READER
        if reader.is_file():
            args.locustfile = reader
    spec = cli.spec_from_args(args)
    seeder = Seeder(
        command=_seed_command(args.seed_cmd, spec),
        compose_files=tuple(spec.compose_files),
        profiles=tuple(spec.profiles),
        timeout_s=seed_timeout_s,
    )
    if "before_load" not in {f.name for f in dataclasses.fields(RunSpec)}:
        raise SetupError(
            "this stackprobe's run has no hook between `up` and the load (RunSpec.before_load), "
            "so grow cannot seed a run's stack"
        )
    out = spec.out
    for name in GROW_FILES:
        (out / name).unlink(missing_ok=True)
    started_at = datetime.now(UTC)
    runner = _Runner(spec=spec, seeder=seeder, console=console, sizes=sizes, max_break_runs=args.break_runs)
    console.print(
        f"Growing {spec.service}'s data: {', '.join(format_rows(r) for r in sizes)} rows, "
        f"{spec.duration_s:g} s of load each, on a fresh stack each; seeding with {seeder.command}",
        highlight=False,
    )
    try:
        points, search = run_sizes(
            sizes, runner.run, bisect=args.find_break, tolerance=tolerance, max_runs=args.break_runs
        )
    except GrowAborted as exc:
        # The size's own line has just said why; the abort adds only the output's tail.
        first, _, tail = str(exc).partition("\n")
        message = f"grow stopped at its first size, nothing measured: {first}" + (f"\n{tail}" if tail else "")
        raise SetupError(message) from None
    document = grow_document(
        points=points,
        search=search,
        spec=spec,
        seed_command=seeder.command,
        started_at=started_at,
        finished_at=datetime.now(UTC),
    )
    from stackprobe.report.grow_page import render_grow_console, render_grow_html

    write_grow_json(document, out / "grow.json")
    render_grow_html(document, out / "grow.html")
    render_grow_console(document, console)
    console.print(f"Grow report: {out / 'grow.json'}, {out / 'grow.html'}", highlight=False, soft_wrap=True)
    return cli.EXIT_CODES[document["verdict"]]


def _seed_command(given: str | None, spec: RunSpec) -> str:
    """Return the seed command: the one given, else the bundled seeder beside the compose file."""
    if given is not None:
        if not given.strip():
            raise UsageError("--seed-cmd is empty")
        return given
    bundled = Path(spec.compose_files[0]).resolve().parent / BUNDLED_SEEDER
    if not bundled.is_file():
        raise UsageError(
            f"--seed-cmd is needed: no seeder beside {spec.compose_files[0]} ({BUNDLED_SEEDER}). Give a command that "
            "fills the stack's data to $STACKPROBE_ROWS rows, e.g. "
            "--seed-cmd 'docker compose -p \"$STACKPROBE_PROJECT\" exec -T db psql ...'"
        )
    return shlex.quote(str(bundled))


@dataclass
class _Runner:
    """Runs one size: a RunSpec of its own (its folder, the seed hook), its console output in a file."""

    spec: RunSpec
    seeder: Seeder
    console: Console
    sizes: Sequence[int]
    max_break_runs: int
    done: int = 0
    bisections: int = 0
    seconds: list[float] = field(default_factory=list)
    labels: set[str] = field(default_factory=set)

    def run(self, rows: int, phase: Phase) -> GrowPoint:
        from stackprobe.probe import SetupError, run_probe

        label = self._label(rows)
        folder = Path("runs") / label
        out = self.spec.out / folder
        out.mkdir(parents=True, exist_ok=True)
        seeded: list[float] = []
        teardowns: list[Teardown] = []
        started = time.monotonic()
        header = self._header(rows, phase)
        with self.console.status(f"{header}: starting a stack …") as status:

            def before_load(project: str, url: str) -> None:
                status.update(f"{header}: seeding {format_rows(rows)} rows …")
                seeded.append(self.seeder.seed(rows, project, url, out / SEED_LOG))
                status.update(f"{header}: loading for {self.spec.duration_s:g} s, then auditing and tearing down …")

            spec = dataclasses.replace(self.spec, out=out, keep_up=False, before_load=before_load)
            try:
                with _file_console(out / RUN_CONSOLE) as run_console:
                    report = run_probe(spec, run_console, teardowns)
            except (SetupError, SeedError) as exc:
                point = GrowPoint.not_run(rows, label, phase, str(exc), seeded[0] if seeded else None)
            else:
                point = GrowPoint.from_report(
                    rows, label, phase, report, seeded[0] if seeded else None, folder.as_posix()
                )
            finally:
                self._say_teardown(teardowns, rows)
        self.seconds.append(time.monotonic() - started)
        self.done += 1
        if phase == "bisection":
            self.bisections += 1
        self._say_point(point, header)
        return point

    def _label(self, rows: int) -> str:
        """Return a folder name for a run at `rows`, e.g. rows-10k or rows-31623, -2 and on when one is taken."""
        base = f"rows-{format_rows(rows).replace(',', '')}"
        label, again = base, 2
        while label in self.labels:
            label, again = f"{base}-{again}", again + 1
        self.labels.add(label)
        return label

    def _header(self, rows: int, phase: Phase) -> str:
        if phase == "bisection":
            return f"[bisection {self.bisections + 1} of at most {self.max_break_runs}] {format_rows(rows)} rows"
        left = len(self.sizes) - self.done
        per_run = (
            sum(self.seconds) / len(self.seconds) if self.seconds else self.spec.duration_s + FIRST_GUESS_OVERHEAD_S
        )
        minutes = max(1, round(left * per_run / 60))
        return f"[{self.done + 1}/{len(self.sizes)}] {format_rows(rows)} rows (about {minutes} min left)"

    def _say_point(self, point: GrowPoint, header: str) -> None:
        from stackprobe.report.grow_page import describe_point

        self.console.print(f"{escape(header)}: {escape(describe_point(point))}", highlight=False)

    def _say_teardown(self, teardowns: Sequence[Teardown], rows: int) -> None:
        for teardown in teardowns:
            if not teardown.ok:
                self.console.print(
                    f"[bold red]Teardown incomplete[/] after {format_rows(rows)} rows: {escape(teardown.message)}\n"
                    f"Remove what is left with: {escape(teardown.leftover_command)}",
                    highlight=False,
                )


@contextmanager
def _file_console(path: Path) -> Iterator[Console]:
    """A console that writes a run's own output (its report, its progress) to a file instead of the terminal."""
    with path.open("w", encoding="utf-8") as handle:
        yield Console(file=handle, width=120, force_terminal=False, color_system=None, highlight=False)
