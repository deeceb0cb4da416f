"""`stackprobe fit`: the smallest memory (or CPU) limit that holds, found by bisection with a failing run as evidence.

A limit holds when its run's verdict is "pass": SLO met, no OOM kill, no restart, no lost write, and the run
saw everything it reports on. The search runs over a grid (low, low + step, ..., high): the top first (does
anything hold?), then bisection between the highest limit that failed and the lowest that held. An
inconclusive run (or one that hit a set-up error) counts neither as a pass nor as a fail: it is retried once,
and a limit still inconclusive is "uncertain"; the search goes on around it and the answer says so. Once the
bracket is one step wide, the lowest holding limit is run again until it has passed `--repeat` times (the
limit below it has already failed at least once); a failure there moves the bracket up. `--budget` stops
the search before a run that would end past it, with the best bracket found.

The search itself (search_limit) and the recommendations are pure functions: run_at(limit) -> Outcome is
injected, so they are tested without Docker. The command (handle) runs each limit as a full probe run.
"""

from __future__ import annotations

import argparse
import itertools
import math
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal

from stackprobe import __version__, cli
from stackprobe.report.comparison import (
    EXIT_FAIL,
    EXIT_INCONCLUSIVE,
    EXIT_PASS,
    Fit,
    FitFailing,
    FitHolding,
    FitPoint,
    FitRange,
    FitRecommendation,
    FitRules,
    RunRow,
)
from stackprobe.spec import UsageError, parse_bytes, parse_duration

if TYPE_CHECKING:
    from rich.console import Console

    from stackprobe.spec import RunSpec

MIB = 1024**2
DEFAULT_MEMORY_STEP = 8 * MIB
DEFAULT_CPU_STEP = 0.25
DEFAULT_REPEAT = 3
DEFAULT_MARGIN = 0.15
# A grid longer than this is a typo (a step in bytes where MiB was meant), not a search.
MAX_GRID_POINTS = 4096
# Kubernetes' Vertical Pod Autoscaler, recommender defaults: the target is the 90th percentile of the
# memory peaks it saw (--target-memory-percentile=0.9), plus a 15 % safety margin
# (--recommendation-margin-fraction=0.15), and never below 250 MiB a pod (--pod-recommendation-min-memory-mb).
VPA_PERCENTILE = 0.90
VPA_MARGIN = 0.15
VPA_MIN_BYTES = 250 * MIB
VPA_SOURCE = (
    "Kubernetes VPA recommender defaults: --target-memory-percentile=0.9, --recommendation-margin-fraction=0.15, "
    "--pod-recommendation-min-memory-mb=250"
)
# Robusta KRR's "simple" strategy: memory = the maximum usage seen + 15 % (--memory_buffer_percentage=15).
KRR_MARGIN = 0.15
KRR_SOURCE = "Robusta KRR simple strategy: max memory usage + --memory_buffer_percentage=15"

Verdict = Literal["pass", "fail", "inconclusive"]
PointStatus = Literal["hold", "fail", "uncertain", "untested"]
Phase = Literal["search", "confirm"]
Status = Literal["found", "budget", "none_holds", "uncertain"]
EXIT_HELP = """exit codes:
  0    a limit held within the range (status found, or budget: the best bracket when --budget ran out)
  1    no limit in the range held: the top of the range failed
  2    usage or set-up error (a message says what to fix)
  3    runs were inconclusive: a limit stayed inconclusive after its retry, so the bracket is uncertain
  130  interrupted (Ctrl-C); 143 terminated (SIGTERM); the stack is torn down first, fit.json is written
"""


@dataclass(frozen=True)
class Outcome:
    """How one run at a limit ended: its verdict, its reasons, its peak memory (bytes), and its row.

    A run that hit a set-up error is "inconclusive" here: it says nothing about the limit.
    """

    verdict: Verdict
    reasons: tuple[str, ...] = ()
    peak_bytes: int | None = None
    row: RunRow | None = None


@dataclass(frozen=True)
class Attempt:
    """One run of the search: the limit, how it ended, the step that asked for it, its time in seconds."""

    value: float
    outcome: Outcome
    phase: Phase
    retry: bool
    seconds: float


@dataclass(frozen=True)
class Planned:
    """The run about to start, for a progress display: its limit, step, number, and what is left.

    runs_left counts this run; seconds_left is runs_left times the mean run so far (None before the first
    run), never past the budget.
    """

    value: float
    phase: Phase
    retry: bool
    number: int
    repeat: int
    runs_left: int
    seconds_left: float | None


@dataclass
class Search:
    """What the search found over `grid` (ascending limits).

    status: "found" (bracket one step wide, the lowest holding limit passed `repeat` times), "budget" (the
    budget ended it first: the best bracket so far), "none_holds" (the top failed), "uncertain" (a limit
    inside the bracket, or the top, stayed inconclusive). lowest_holding / highest_failing: limits (None:
    none). uncertain: the uncertain limits between them. notes: what the runs showed beside the answer
    (e.g. a limit that held below one that failed).
    """

    grid: tuple[float, ...]
    attempts: list[Attempt] = field(default_factory=list)
    points: list[FitPoint] = field(default_factory=list)
    status: Status = "uncertain"
    lowest_holding: float | None = None
    highest_failing: float | None = None
    uncertain: list[float] = field(default_factory=list)
    confirmed: bool = False
    budget_exhausted: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        """0 when a limit held (found, or budget with one), 1 when none holds, 3 when uncertain."""
        if self.status == "none_holds":
            return EXIT_FAIL
        if self.status == "uncertain" or self.lowest_holding is None:
            return EXIT_INCONCLUSIVE
        return EXIT_PASS


def _point_status(verdicts: Sequence[str]) -> PointStatus:
    """A limit fails once any run there failed, is uncertain once one stayed inconclusive, holds otherwise."""
    if not verdicts:
        return "untested"
    if "fail" in verdicts:
        return "fail"
    if "inconclusive" in verdicts:
        return "uncertain"
    return "hold"


def search_limit(
    grid: Sequence[float],
    run_at: Callable[[float], Outcome],
    *,
    repeat: int = DEFAULT_REPEAT,
    budget_s: float | None = None,
    clock: Callable[[], float] = time.monotonic,
    before_run: Callable[[Planned], None] | None = None,
) -> Search:
    """Find the lowest limit of `grid` whose runs all pass, by bisection, confirmed with `repeat` passes.

    grid: limits in ascending order (bytes or CPUs); run_at(limit) makes one run and returns its Outcome.
    The top of the grid is run first; then the middle untested limit between the highest that failed and
    the lowest that held, until they are adjacent (uncertain limits left out); then the lowest holding one
    again until it passed `repeat` times in all. An inconclusive run is retried at once, one time; if the
    retry is inconclusive too, the limit is uncertain. budget_s: no run starts when the time so far
    (by `clock`, seconds) plus the mean run so far would pass it. before_run is called before each run.
    Raises ValueError for an empty or unsorted grid, or repeat < 1.
    """
    values = tuple(grid)
    if not values:
        raise ValueError("the grid of limits is empty")
    if any(b <= a for a, b in itertools.pairwise(values)):
        raise ValueError("the grid of limits must be strictly ascending")
    if repeat < 1:
        raise ValueError("repeat must be at least 1")
    search = Search(grid=values)
    settled: list[list[str]] = [[] for _ in values]
    durations: list[float] = []
    start = clock()
    count = len(values)

    def statuses() -> list[PointStatus]:
        return [_point_status(v) for v in settled]

    def bracket(status: list[PointStatus]) -> tuple[int, int | None, list[int]]:
        failing = max((i for i, s in enumerate(status) if s == "fail"), default=-1)
        holding = next((i for i in range(failing + 1, count) if status[i] == "hold"), None)
        upper = count if holding is None else holding
        return failing, holding, [i for i in range(failing + 1, upper) if status[i] == "untested"]

    def runs_left(phase: Phase, index: int) -> int:
        if phase == "confirm":
            return max(1, repeat - settled[index].count("pass"))
        _, _, candidates = bracket(statuses())
        return max(1, math.ceil(math.log2(len(candidates) + 1))) + repeat - 1

    def run(index: int, phase: Phase, retry: bool) -> Outcome | None:
        elapsed = clock() - start
        mean = sum(durations) / len(durations) if durations else 0.0
        if budget_s is not None and elapsed + mean > budget_s:
            search.budget_exhausted = True
            return None
        if before_run is not None:
            left = runs_left(phase, index) + (1 if retry else 0)
            seconds = left * mean if durations else None
            if seconds is not None and budget_s is not None:
                seconds = min(seconds, max(0.0, budget_s - elapsed))
            before_run(Planned(values[index], phase, retry, len(search.attempts) + 1, repeat, left, seconds))
        began = clock()
        outcome = run_at(values[index])
        took = clock() - began
        durations.append(took)
        search.attempts.append(Attempt(values[index], outcome, phase, retry, took))
        return outcome

    def settle(index: int, phase: Phase) -> bool:
        """Run once (and retry an inconclusive run once); False when the budget stopped it."""
        outcome = run(index, phase, retry=False)
        if outcome is None:
            return False
        verdict: str = outcome.verdict
        if verdict == "inconclusive":
            again = run(index, phase, retry=True)
            if again is None:
                settled[index].append("inconclusive")
                return False
            verdict = again.verdict
        settled[index].append(verdict)
        return True

    while True:
        status = statuses()
        _, holding, candidates = bracket(status)
        if candidates:
            top_unknown = holding is None and candidates[-1] == count - 1
            pick = count - 1 if top_unknown else candidates[(len(candidates) - 1) // 2]
            if not settle(pick, "search"):
                break
            continue
        if holding is None or settled[holding].count("pass") >= repeat:
            break
        if not settle(holding, "confirm"):
            break
    _conclude(search, settled, repeat)
    return search


def _conclude(search: Search, settled: list[list[str]], repeat: int) -> None:
    """Fill in the search's answer from the verdicts settled at each limit."""
    values = search.grid
    status = [_point_status(v) for v in settled]
    search.points = [
        FitPoint(
            value=value,
            status=status[i],
            passed=settled[i].count("pass"),
            failed=settled[i].count("fail"),
            inconclusive=settled[i].count("inconclusive"),
        )
        for i, value in enumerate(values)
    ]
    failing = max((i for i, s in enumerate(status) if s == "fail"), default=-1)
    holding = next((i for i in range(failing + 1, len(values)) if status[i] == "hold"), None)
    upper = len(values) if holding is None else holding
    between = range(failing + 1, upper)
    search.highest_failing = values[failing] if failing >= 0 else None
    search.lowest_holding = values[holding] if holding is not None else None
    search.uncertain = [values[i] for i in between if status[i] == "uncertain"]
    untested = [i for i in between if status[i] == "untested"]
    search.confirmed = holding is not None and settled[holding].count("pass") >= repeat
    odd = [values[i] for i in range(max(failing, 0)) if status[i] == "hold"]
    if odd:
        search.notes.append(
            f"limits below the highest failing one held ({', '.join(map(str, odd))}): the runs vary, or the "
            "need is not monotone in the limit; more --repeat gives a firmer answer"
        )
    if search.uncertain:
        search.status = "uncertain"
    elif holding is None:
        if failing == len(values) - 1:
            search.status = "none_holds"
        else:
            # The budget ran out before the top of the range was known.
            search.status = "budget" if search.budget_exhausted else "uncertain"
    elif search.budget_exhausted and (untested or not search.confirmed):
        search.status = "budget"
    else:
        search.status = "found"


def build_grid(low: float, high: float, step: float, *, integer: bool) -> list[float]:
    """Return low, low + step, ... up to high, with high itself as the last limit even off the step.

    integer: memory in bytes (whole numbers); else CPUs, rounded to 6 decimals so 0.1 steps add up.
    Raises UsageError for a range that is empty, reversed, or longer than MAX_GRID_POINTS limits.
    """
    if step <= 0:
        raise UsageError("--step must be above 0")
    if high <= low:
        raise UsageError("a range must go from a lower to a higher limit, e.g. 32m..512m")
    if step > high - low:
        raise UsageError("--step is larger than the range: a fit needs at least one limit between its ends")
    count = math.floor((high - low) / step + 1e-9)
    if count + 1 > MAX_GRID_POINTS:
        raise UsageError(f"the range holds {count + 1} limits at this --step (at most {MAX_GRID_POINTS}): widen --step")
    grid: list[float] = []
    for i in range(count + 1):
        value = low + i * step
        grid.append(int(value) if integer else round(value, 6))
    if grid[-1] < high - (0 if integer else 1e-9):
        grid.append(int(high) if integer else round(high, 6))
    return grid


def round_up_to_step(value: float, step: float, *, integer: bool) -> float:
    """Return the smallest multiple of `step` at or above `value` (bytes stay whole; CPUs to 6 decimals)."""
    units = math.ceil(round(value / step, 9))
    return int(units * step) if integer else round(units * step, 6)


def recommended_limit(lowest_holding: float, margin: float, step: float, *, integer: bool) -> float:
    """Return the recommended limit: the lowest that held x (1 + margin), rounded up to a multiple of step."""
    return round_up_to_step(lowest_holding * (1 + margin), step, integer=integer)


def nearest_rank_percentile(values: Sequence[float], q: float) -> float:
    """Return the q-th percentile (0 < q <= 1) by nearest rank: the smallest value with q of them at or below.

    Raises ValueError for no values.
    """
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def vpa_style(peaks_bytes: Sequence[int]) -> int | None:
    """Return what VPA's recommender would set from these peaks: p90 + 15 %, at least 250 MiB (bytes).

    The recommender keeps a histogram of memory peaks and targets its 90th percentile with a 15 % margin,
    never below 250 MiB a pod (its defaults, VPA_SOURCE); here the percentile is by nearest rank over the
    runs' peaks. None when no run measured a peak.
    """
    if not peaks_bytes:
        return None
    return max(math.ceil(nearest_rank_percentile(peaks_bytes, VPA_PERCENTILE) * (1 + VPA_MARGIN)), VPA_MIN_BYTES)


def krr_style(peaks_bytes: Sequence[int]) -> int | None:
    """Return what KRR's simple strategy would set from these peaks: the maximum + 15 % (bytes); None if none."""
    if not peaks_bytes:
        return None
    return math.ceil(max(peaks_bytes) * (1 + KRR_MARGIN))


def conclusive_peaks(attempts: Sequence[Attempt]) -> list[int]:
    """Return the peak memory (bytes) of every run that passed or failed and measured one, in run order."""
    return [
        a.outcome.peak_bytes
        for a in attempts
        if a.outcome.verdict in ("pass", "fail") and a.outcome.peak_bytes is not None
    ]


# --- the command -------------------------------------------------------------------------------------------


_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*")
_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


def parse_step_bytes(text: str) -> int:
    """Parse a memory step ("8m", "512k", "1g"): Docker's size units, binary; raise UsageError otherwise."""
    match = _SIZE.fullmatch(text.lower())
    if not match or float(match.group(1)) * _UNITS[match.group(2)] < 1:
        raise UsageError(f"--step: not a size: {text!r} (expected e.g. 8m, 16m, 512k)")
    return int(float(match.group(1)) * _UNITS[match.group(2)])


MAX_MARGIN_PERCENT = 1000


def parse_margin(text: str) -> float:
    """Parse --margin as a percentage ("15%" or "15") into a fraction (0.15).

    Raises UsageError when it is not a percentage, is negative, or is above MAX_MARGIN_PERCENT (a margin
    that multiplies the limit found by more than 11 says nothing the run measured).
    """
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*%?\s*", text)
    if not match:
        raise UsageError(f"--margin: not a percentage: {text!r} (expected e.g. 15%)")
    percent = float(match.group(1))
    if percent > MAX_MARGIN_PERCENT:
        raise UsageError(f"--margin: {text.strip()} is above {MAX_MARGIN_PERCENT:g}% (expected e.g. 15%)")
    return percent / 100


def parse_cpus(text: str, flag: str = "--cpus") -> float:
    """Parse a CPU limit ("0.5", "2"); UsageError unless it is a number above 0."""
    try:
        value = float(text)
    except ValueError:
        raise UsageError(f"{flag}: not a number of CPUs: {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise UsageError(f"{flag}: a CPU limit must be above 0, not {text!r}")
    return value


def _split_range(text: str) -> tuple[str, str] | None:
    low, sep, high = text.partition("..")
    return (low, high) if sep else None


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Add `stackprobe fit` with every `run` flag, its --memory/--cpus taking a range."""
    parser = commands.add_parser(
        "fit",
        help="find the smallest memory (or CPU) limit that holds, by bisection, with the failing run as evidence",
        description=(
            "Bisect a range of limits for the lowest at which a run passes (SLO met, no OOM kill, restart or "
            "lost write, not inconclusive), confirm it with --repeat runs, and recommend it plus --margin; "
            "beside it, what VPA-style and KRR-style rules would recommend from the same runs' memory peaks. "
            "Writes fit.json, fit.html and each run's report under OUT/runs/<label>/."
        ),
        epilog=EXIT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        conflict_handler="resolve",
    )
    cli.add_run_arguments(parser)
    group = parser.add_argument_group("fit")
    group.add_argument(
        "--memory",
        "-m",
        help="memory range to search, e.g. 32m..512m; or one limit, held while --cpus is searched; SERVICE=SIZE "
        "terms (db=256m) hold another service at one limit in every run",
    )
    group.add_argument(
        "--cpus", help="CPU range to search, e.g. 0.25..2; or one limit, held while --memory is searched"
    )
    group.add_argument(
        "--step", help=f"grid step: a size for memory (default 8m), CPUs for --cpus (default {DEFAULT_CPU_STEP:g})"
    )
    group.add_argument(
        "--repeat",
        type=int,
        default=DEFAULT_REPEAT,
        help=f"runs the found limit must pass, in all (default {DEFAULT_REPEAT})",
    )
    group.add_argument("--budget", help="stop before a run that would end past this much time, e.g. 15m")
    group.add_argument(
        "--margin", default="15%", help="recommended = lowest holding x (1 + margin), rounded up (default 15%%)"
    )
    parser.set_defaults(handler=handle)


@dataclass(frozen=True)
class FitPlan:
    """What the fit command was asked: the resource searched, its grid, the other limit, the settings."""

    resource: Literal["memory", "cpus"]
    low: float
    high: float
    step: float
    grid: list[float]
    fixed_memory_bytes: int | None
    fixed_cpus: float | None
    repeat: int
    budget_s: float | None
    margin: float
    # Other services' memory limits, held in every run (bytes by service).
    other_memory: dict[str, int] = field(default_factory=dict)


def plan_from_args(args: argparse.Namespace) -> FitPlan:
    """Read fit's own flags into a FitPlan; UsageError names what is wrong."""
    from stackprobe.sweep import split_memory_terms

    terms, others = split_memory_terms(args.memory, args.service) if args.memory else ([], {})
    if len(terms) > 1:
        raise UsageError(f"--memory {args.memory!r}: give the target one range (e.g. 32m..512m) or one limit")
    memory = terms[0] if terms else None
    memory_range = _split_range(memory) if memory else None
    cpus_range = _split_range(args.cpus) if args.cpus else None
    if memory_range and cpus_range:
        raise UsageError("fit searches one limit at a time: give a range to --memory or to --cpus, not both")
    if not memory_range and not cpus_range:
        raise UsageError("fit needs a range to search: e.g. --memory 32m..512m or --cpus 0.25..2")
    if args.repeat < 1:
        raise UsageError("--repeat must be at least 1")
    budget = parse_duration(args.budget) if args.budget else None
    if budget is not None and budget <= 0:
        raise UsageError("--budget must be above 0 (the time the whole fit may take, e.g. 15m)")
    margin = parse_margin(args.margin)
    if memory_range:
        low, high = (parse_bytes(side) for side in memory_range)
        step = parse_step_bytes(args.step) if args.step else DEFAULT_MEMORY_STEP
        grid = build_grid(low, high, step, integer=True)
        fixed_cpus = parse_cpus(args.cpus) if args.cpus else None
        return FitPlan("memory", low, high, step, grid, None, fixed_cpus, args.repeat, budget, margin, others)
    assert cpus_range is not None
    low_c, high_c = (parse_cpus(side) for side in cpus_range)
    step_c = parse_cpus(args.step, "--step") if args.step else DEFAULT_CPU_STEP
    grid = build_grid(low_c, high_c, step_c, integer=False)
    fixed_memory = parse_bytes(memory) if memory else None
    return FitPlan("cpus", low_c, high_c, step_c, grid, fixed_memory, None, args.repeat, budget, margin, others)


def label_for(plan: FitPlan, value: float, repeat: int) -> str:
    """Return a run's folder name, e.g. "mem-64m-r2" or "cpu-0.5-r1"."""
    from stackprobe.sweep import cpu_label, memory_label

    base = memory_label(int(value)) if plan.resource == "memory" else cpu_label(value)
    return f"{base}-r{repeat}"


def handle(args: argparse.Namespace, console: Console) -> int:
    """Run `stackprobe fit`; return 0 (a limit held), 1 (none held) or 3 (uncertain)."""
    from stackprobe.sweep import RunLoop

    plan = plan_from_args(args)
    base = RunLoop.base_spec(args, plan.other_memory)
    loop = RunLoop(base, console, output_names=("fit.json", "fit.html"))
    counts: dict[float, int] = {}
    phases: list[tuple[Phase, bool]] = []

    def run_at(value: float) -> Outcome:
        counts[value] = counts.get(value, 0) + 1
        phase, retry = phases[-1] if phases else ("search", False)
        memory = int(value) if plan.resource == "memory" else plan.fixed_memory_bytes
        cpus = value if plan.resource == "cpus" else plan.fixed_cpus
        row = loop.run(
            label_for(plan, value, counts[value]),
            memory_bytes=memory,
            cpus=cpus,
            repeat=counts[value],
            phase=phase,
            retry=retry,
        )
        verdict: Verdict = "inconclusive" if row.verdict == "error" else row.verdict
        return Outcome(verdict=verdict, reasons=tuple(row.reasons), peak_bytes=row.peak_bytes, row=row)

    def before_run(planned: Planned) -> None:
        phases.append((planned.phase, planned.retry))
        what = describe_value(plan.resource, planned.value)
        step = {
            "search": "bisecting",
            "confirm": f"confirming (run {counts.get(planned.value, 0) + 1} of {plan.repeat})",
        }
        note = " retry of an inconclusive run" if planned.retry else ""
        loop.progress.before(
            f"run {planned.number}: {what}, {step[planned.phase]}{note}",
            runs_left=planned.runs_left,
            seconds_left=planned.seconds_left,
        )

    started_at = datetime.now(UTC)
    search: Search | None = None
    try:
        with loop.progress.live(total=None):
            search = search_limit(plan.grid, run_at, repeat=plan.repeat, budget_s=plan.budget_s, before_run=before_run)
    finally:
        fit = build_fit(plan, base, search, loop.rows, started_at, complete=search is not None)
        loop.write(fit.to_dict(), fit_html(fit))
    show_fit(fit, console)
    loop.finish(console)
    return fit.exit_code


def describe_value(resource: str, value: float | None) -> str:
    """Return a limit for people: "64.0 MiB" for memory, "0.5 CPUs" for cpus, "n/a" for None."""
    from stackprobe.report.fmt import format_bytes

    if value is None:
        return "n/a"
    return format_bytes(int(value)) if resource == "memory" else f"{value:g} CPUs"


def build_fit(
    plan: FitPlan,
    base: RunSpec,
    search: Search | None,
    rows: Sequence[RunRow],
    started_at: datetime,
    *,
    complete: bool = True,
) -> Fit:
    """Put the search's answer, the recommendations and every run's row into fit.json's structure.

    search None: the fit was stopped before it concluded; its answer is rebuilt from the runs made so far.
    """
    from stackprobe.sweep import loop_load, loop_target

    if search is None:
        search = _search_from_rows(plan, rows)
    finished_at = datetime.now(UTC)
    integer = plan.resource == "memory"
    fit = Fit(
        stackprobe_version=__version__,
        started_at=started_at.isoformat(),
        finished_at=finished_at.isoformat(),
        duration_s=round((finished_at - started_at).total_seconds(), 3),
        complete=complete,
        target=loop_target(base),
        load=loop_load(base),
        slo=base.slo,
        resource=plan.resource,
        range=FitRange(low=plan.low, high=plan.high, step=plan.step),
        grid=list(plan.grid),
        fixed_memory_bytes=plan.fixed_memory_bytes,
        fixed_cpus=plan.fixed_cpus,
        repeat=plan.repeat,
        budget_s=plan.budget_s,
        margin=plan.margin,
        status=search.status,
        confirmed=search.confirmed,
        budget_exhausted=search.budget_exhausted,
        uncertain=list(search.uncertain),
        points=list(search.points),
        runs=list(rows),
        notes=list(search.notes),
        # A fit stopped by Ctrl-C or SIGTERM ends as interrupted, whatever its bracket so far says.
        exit_code=search.exit_code if complete else cli.EXIT_INTERRUPTED,
    )
    value_of = {id(a.outcome.row): a.value for a in search.attempts if a.outcome.row is not None}

    def rows_at(value: float) -> list[RunRow]:
        return [row for row in rows if value_of.get(id(row)) == value]

    if search.lowest_holding is not None:
        held = [row for row in rows_at(search.lowest_holding) if row.verdict == "pass"]
        fit.lowest_holding = FitHolding(
            value=search.lowest_holding,
            passed=len(held),
            labels=[row.label for row in held],
            report_html=held[0].report_html if held else None,
        )
        fit.recommended = FitRecommendation(
            value=recommended_limit(search.lowest_holding, plan.margin, plan.step, integer=integer),
            rule=f"lowest holding limit x (1 + {plan.margin:.0%}), rounded up to a multiple of the step",
            source="stackprobe fit --margin",
        )
    else:
        fit.recommended = FitRecommendation(rule="no limit held: nothing to recommend", source="stackprobe fit")
    if search.highest_failing is not None:
        failed = [row for row in rows_at(search.highest_failing) if row.verdict == "fail"]
        first = failed[0] if failed else None
        fit.highest_failing = FitFailing(
            value=search.highest_failing,
            label=first.label if first else "",
            report_html=first.report_html if first else None,
            reasons=list(first.reasons) if first else [],
            oom_kills=first.oom_kills if first else None,
            first_oom_t=first.first_oom_t if first else None,
            p95_ms=first.p95_ms if first else None,
            failure_ratio=first.failure_ratio if first else None,
        )
    peaks = conclusive_peaks(search.attempts)
    fit.rules = FitRules(
        peaks_bytes=peaks,
        vpa=FitRecommendation(
            value=vpa_style(peaks),
            rule="p90 of the runs' memory peaks + 15 %, at least 250 MiB",
            source=VPA_SOURCE,
        ),
        krr=FitRecommendation(value=krr_style(peaks), rule="max of the runs' memory peaks + 15 %", source=KRR_SOURCE),
    )
    fit.summary = fit_summary(fit)
    return fit


def _search_from_rows(plan: FitPlan, rows: Sequence[RunRow]) -> Search:
    """Rebuild a search's answer from the rows of an interrupted fit: each row's limit and verdict replayed."""
    attempts: list[Attempt] = []
    for row in rows:
        value = row.memory_bytes if plan.resource == "memory" else row.cpus
        if value is None:
            continue
        verdict: Verdict = "inconclusive" if row.verdict == "error" else row.verdict
        outcome = Outcome(verdict=verdict, reasons=tuple(row.reasons), peak_bytes=row.peak_bytes, row=row)
        attempts.append(
            Attempt(value, outcome, "confirm" if row.phase == "confirm" else "search", row.retry, row.wall_s)
        )
    settled: list[list[str]] = [[] for _ in plan.grid]
    index = {value: i for i, value in enumerate(plan.grid)}
    for number, attempt in enumerate(attempts):
        nxt = attempts[number + 1] if number + 1 < len(attempts) else None
        # An inconclusive run followed by its retry is settled by the retry.
        if attempt.outcome.verdict == "inconclusive" and nxt is not None and nxt.retry and nxt.value == attempt.value:
            continue
        if attempt.value in index:
            settled[index[attempt.value]].append(attempt.outcome.verdict)
    search = Search(grid=tuple(plan.grid), attempts=attempts, budget_exhausted=False)
    _conclude(search, settled, plan.repeat)
    if search.status == "found" and not search.confirmed:
        search.status = "budget"
    search.notes.append("the fit was stopped before it ended: this is the bracket of the runs it made")
    return search


def fit_summary(fit: Fit) -> list[str]:
    """Return the answer in sentences, for the console and the page."""
    what = "memory" if fit.resource == "memory" else "CPU"
    lines: list[str] = []
    holding, failing = fit.lowest_holding, fit.highest_failing
    if holding is not None:
        lines.append(
            f"lowest {what} limit that held: {describe_value(fit.resource, holding.value)} "
            f"({holding.passed} of {holding.passed} runs passed{'' if fit.confirmed else ', not confirmed'})"
        )
    else:
        lines.append(f"no {what} limit in the range held")
    if failing is not None:
        lines.append(
            f"highest that failed: {describe_value(fit.resource, failing.value)} ({failing.label}: "
            f"{describe_failure(failing)})"
        )
    elif holding is not None:
        lines.append("the bottom of the range held: nothing below it was tried, so the need may be lower still")
    if fit.uncertain:
        values = ", ".join(describe_value(fit.resource, v) for v in fit.uncertain)
        lines.append(f"uncertain (inconclusive after a retry): {values}")
    if fit.recommended.value is not None:
        lines.append(f"recommended: {describe_value(fit.resource, fit.recommended.value)} ({fit.recommended.rule})")
    for name, rule in (("VPA-style", fit.rules.vpa), ("KRR-style", fit.rules.krr)):
        if rule.value is not None:
            value = describe_value("memory", rule.value)
            lines.append(f"{name} memory from the same runs' peaks: {value} ({rule.rule})")
    if fit.budget_exhausted:
        lines.append("the budget ran out: this is the best bracket found")
    lines.extend(fit.notes)
    return lines


def describe_failure(failing: FitFailing) -> str:
    """Return how a run failed in a few words: its OOM kills and when, its p95 and its errors."""
    from stackprobe.report.fmt import format_ms, format_ratio

    parts = []
    if failing.oom_kills:
        when = f", the first at t={failing.first_oom_t:.1f} s" if failing.first_oom_t is not None else ""
        parts.append(f"{failing.oom_kills} OOM kill{'s' if failing.oom_kills != 1 else ''}{when}")
    parts.append(f"p95 {format_ms(failing.p95_ms)}")
    parts.append(f"errors {format_ratio(failing.failure_ratio, 2)}")
    if not failing.oom_kills and failing.reasons:
        parts.append(failing.reasons[0])
    return ", ".join(parts)


def fit_html(fit: Fit) -> str:
    """Return fit.html's text."""
    from stackprobe.report.comparison_page import fit_page

    return fit_page(fit)


def show_fit(fit: Fit, console: Console) -> None:
    """Print the fit's runs and answer."""
    from stackprobe.report.comparison_console import render_fit_console

    render_fit_console(fit, console)
