"""What a loop of runs found (sweep.json, fit.json): each run's key figures beside the others, and their files.

A run of a sweep or fit is one full probe run with its own report.json and report.html; the loop keeps only
its key figures (RunRow) and where its report is, relative to the loop's own folder, so the pages link to
each run's page and the folder can be moved whole. Units: bytes, seconds, milliseconds for latency, CPU
limits in CPUs; null is unknown or not applicable.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import tempfile
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from stackprobe.report.model import Report

SWEEP_SCHEMA_VERSION = 1
FIT_SCHEMA_VERSION = 1
# "error": the run could not be made (a set-up error: the stack could not start for a reason other than its
# target dying, Locust could not run); it has no report, only the message.
RunVerdict = Literal["pass", "fail", "inconclusive", "error"]
RUN_VERDICTS: tuple[str, ...] = ("pass", "fail", "inconclusive", "error")
# Exit code of sweep and fit for inconclusive outcomes, as `run` uses it.
EXIT_PASS, EXIT_FAIL, EXIT_INCONCLUSIVE = 0, 1, 3


@dataclass(kw_only=True)
class RunRow:
    """One run of a sweep or fit: the limits it ran under, its verdict, key figures and report files.

    memory_bytes and cpus are the limits asked for the target (None: the compose file's own). repeat is
    1-based: the n-th run at these limits. report_json/report_html are paths relative to the sweep's or
    fit's folder (None: a set-up error left no report). wall_s is the run's whole time in seconds, from
    the start of `up` to the end of the teardown. failure_ratio is failed requests over all (0..1).
    first_oom_t is when the target was first OOM-killed, in seconds since the load started (negative:
    while the stack started), from the engine's oom event (or its die event with exit code 137).
    phase is the fit's step that asked for the run ("search" or "confirm"; None in a sweep), and retry
    says the run repeats an inconclusive one.
    """

    label: str
    memory_bytes: int | None = None
    cpus: float | None = None
    repeat: int = 1
    verdict: RunVerdict = "error"
    reasons: list[str] = field(default_factory=list)
    error: str | None = None
    report_json: str | None = None
    report_html: str | None = None
    wall_s: float = 0.0
    requests: int | None = None
    rps: float | None = None
    failure_ratio: float | None = None
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    peak_bytes: int | None = None
    peak_source: str = ""
    limit_bytes: int | None = None
    peak_ratio: float | None = None
    oom_kills: int | None = None
    first_oom_t: float | None = None
    restarts: int | None = None
    cpu_avg_percent: float | None = None
    cpu_throttled_s: float | None = None
    phase: str | None = None
    retry: bool = False


def first_oom_t(report: Report) -> float | None:
    """Return when the target was first OOM-killed (s since the load started), from the engine's events.

    The engine's `oom` event of the target, else its `die` with exit code 137 (SIGKILL, as an OOM kill of
    PID 1 ends); None when neither was seen (a kill counted only by the kernel's counter has no time).
    """
    service = report.target.service
    ooms = [e.t for e in report.events if e.service == service and e.action == "oom"]
    if ooms:
        return min(ooms)
    if report.oom_kills:
        killed = [e.t for e in report.events if e.service == service and e.action == "die" and e.exit_code == 137]
        if killed:
            return min(killed)
    return None


def row_from_report(
    report: Report,
    *,
    label: str,
    memory_bytes: int | None,
    cpus: float | None,
    repeat: int,
    run_dir: Path,
    root: Path,
    wall_s: float,
    phase: str | None = None,
    retry: bool = False,
) -> RunRow:
    """Return the key figures of one finished run, its report files named relative to `root`."""
    relative = Path(os.path.relpath(run_dir, root))
    return RunRow(
        label=label,
        memory_bytes=memory_bytes,
        cpus=cpus,
        repeat=repeat,
        verdict=report.verdict,
        reasons=list(report.reasons),
        report_json=(relative / "report.json").as_posix(),
        report_html=(relative / "report.html").as_posix(),
        wall_s=round(wall_s, 3),
        requests=report.requests.total,
        rps=report.requests.rps,
        failure_ratio=report.requests.failure_ratio,
        p50_ms=report.latency_ms.p50,
        p95_ms=report.latency_ms.p95,
        p99_ms=report.latency_ms.p99,
        peak_bytes=report.memory.peak_bytes,
        peak_source=report.memory.peak_source,
        limit_bytes=report.memory.limit_bytes,
        peak_ratio=report.memory.peak_ratio,
        oom_kills=report.oom_kills,
        first_oom_t=first_oom_t(report),
        restarts=report.restarts,
        cpu_avg_percent=report.cpu.avg_percent,
        cpu_throttled_s=report.cpu.throttled_seconds,
        phase=phase,
        retry=retry,
    )


def row_from_error(
    message: str,
    *,
    label: str,
    memory_bytes: int | None,
    cpus: float | None,
    repeat: int,
    wall_s: float,
    phase: str | None = None,
    retry: bool = False,
) -> RunRow:
    """Return the row of a run that hit a set-up error: no figures, no report, the message as its reason."""
    return RunRow(
        label=label,
        memory_bytes=memory_bytes,
        cpus=cpus,
        repeat=repeat,
        verdict="error",
        reasons=[f"set-up error: {message}"],
        error=message,
        wall_s=round(wall_s, 3),
        phase=phase,
        retry=retry,
    )


@dataclass(kw_only=True)
class LoopTarget:
    """The stack and service every run of the loop probed (the service whose limits vary), and the memory
    limits other services were held at in every run (bytes by service; --memory db=256m)."""

    compose_files: list[str] = field(default_factory=list)
    service: str = ""
    other_memory_bytes: dict[str, int] = field(default_factory=dict)


@dataclass(kw_only=True)
class LoopLoad:
    """The load every run of the loop applied (as asked: each run's report has what it resolved to).

    arrival_rate: arrivals per second under the open model (--rate), None for the closed model (--users).
    """

    locustfile: str = ""
    users: int = 0
    spawn_rate: float = 0.0
    duration_s: float = 0.0
    shape: str | None = None
    arrival_rate: float | None = None


@dataclass(kw_only=True)
class SweepGrid:
    """The limits swept: each memory (bytes) against each CPU limit, `repeat` runs each; None: not swept."""

    memory_bytes: list[int] | None = None
    cpus: list[float] | None = None
    repeat: int = 1


@dataclass(kw_only=True)
class SweepPoint:
    """One point of the grid: how its runs ended; verdict "pass" only when every run there passed."""

    memory_bytes: int | None = None
    cpus: float | None = None
    runs: int = 0
    passed: int = 0
    failed: int = 0
    inconclusive: int = 0
    errors: int = 0
    verdict: RunVerdict = "error"


@dataclass(kw_only=True)
class SweepFinding:
    """Along one swept axis, the other limit fixed: where the runs started to hold.

    axis: "memory_bytes" or "cpus"; fixed: the other limit's value (None: not swept, the file's own).
    lowest_holding: the lowest value from which every run, there and at every higher value, passed (None:
    the highest value did not hold). highest_failing: the highest value at which a run failed. oom_at: the
    values at which a run saw an OOM kill.
    """

    axis: Literal["memory_bytes", "cpus"]
    fixed: float | None = None
    lowest_holding: float | None = None
    highest_failing: float | None = None
    oom_at: list[float] = field(default_factory=list)


@dataclass(kw_only=True)
class Sweep:
    """sweep.json: every run of a sweep with its key figures, each point's tally, and what was found."""

    schema_version: int = SWEEP_SCHEMA_VERSION
    kind: Literal["sweep"] = "sweep"
    stackprobe_version: str = ""
    started_at: str = ""
    finished_at: str = ""
    duration_s: float = 0.0
    # False: the sweep was stopped (Ctrl-C, SIGTERM, a usage error) before its last run.
    complete: bool = True
    target: LoopTarget = field(default_factory=LoopTarget)
    load: LoopLoad = field(default_factory=LoopLoad)
    slo: str = ""
    grid: SweepGrid = field(default_factory=SweepGrid)
    runs: list[RunRow] = field(default_factory=list)
    points: list[SweepPoint] = field(default_factory=list)
    findings: list[SweepFinding] = field(default_factory=list)
    summary: list[str] = field(default_factory=list)
    # Runs by verdict: pass, fail, inconclusive, error.
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(RUN_VERDICTS, 0))
    # "pass": every run passed; "fail": a run failed; "inconclusive": none failed, some could not tell.
    verdict: Literal["pass", "fail", "inconclusive"] = "inconclusive"
    exit_code: int = EXIT_INCONCLUSIVE

    def to_dict(self) -> dict[str, Any]:
        """Return sweep.json's structure."""
        return finite(dataclasses.asdict(self))


@dataclass(kw_only=True)
class FitRange:
    """The range searched: from `low` to `high` by `step` (bytes for memory, CPUs for cpus)."""

    low: float = 0
    high: float = 0
    step: float = 0


@dataclass(kw_only=True)
class FitPoint:
    """One limit of the grid and how its runs went.

    status: "hold" (every run there passed), "fail" (a run failed), "uncertain" (a run stayed inconclusive
    after its retry, none failed), "untested".
    """

    value: float
    status: Literal["hold", "fail", "uncertain", "untested"] = "untested"
    passed: int = 0
    failed: int = 0
    inconclusive: int = 0


@dataclass(kw_only=True)
class FitHolding:
    """The lowest limit that held: its runs (all passed) and the page of the first."""

    value: float
    passed: int = 0
    labels: list[str] = field(default_factory=list)
    report_html: str | None = None


@dataclass(kw_only=True)
class FitFailing:
    """The highest limit that failed, and how its (first failing) run failed, with a link to it."""

    value: float
    label: str = ""
    report_html: str | None = None
    reasons: list[str] = field(default_factory=list)
    oom_kills: int | None = None
    first_oom_t: float | None = None
    p95_ms: float | None = None
    failure_ratio: float | None = None


@dataclass(kw_only=True)
class FitRecommendation:
    """A recommended limit, the rule that gave it, and where the rule comes from."""

    value: float | None = None
    rule: str = ""
    source: str = ""


@dataclass(kw_only=True)
class FitRules:
    """What usage-based rules would recommend for memory from the same runs' peaks (bytes).

    peaks_bytes: the peak memory (report memory.peak_bytes) of every conclusive run that measured one; an
    OOM-killed run's peak is its limit. vpa and krr: the rules applied to those peaks.
    """

    peaks_bytes: list[int] = field(default_factory=list)
    vpa: FitRecommendation = field(default_factory=FitRecommendation)
    krr: FitRecommendation = field(default_factory=FitRecommendation)


@dataclass(kw_only=True)
class Fit:
    """fit.json: the search for the smallest limit that holds, its runs, the answer and the recommendations."""

    schema_version: int = FIT_SCHEMA_VERSION
    kind: Literal["fit"] = "fit"
    stackprobe_version: str = ""
    started_at: str = ""
    finished_at: str = ""
    duration_s: float = 0.0
    complete: bool = True
    target: LoopTarget = field(default_factory=LoopTarget)
    load: LoopLoad = field(default_factory=LoopLoad)
    slo: str = ""
    # The limit searched: "memory" (values in bytes) or "cpus" (values in CPUs); the other is held fixed.
    resource: Literal["memory", "cpus"] = "memory"
    range: FitRange = field(default_factory=FitRange)
    grid: list[float] = field(default_factory=list)
    fixed_memory_bytes: int | None = None
    fixed_cpus: float | None = None
    repeat: int = 3
    budget_s: float | None = None
    margin: float = 0.15
    # "found": the bracket is one step wide and confirmed; "budget": --budget ended the search with the best
    # bracket so far; "none_holds": the top of the range failed; "uncertain": runs stayed inconclusive.
    status: Literal["found", "budget", "none_holds", "uncertain"] = "uncertain"
    confirmed: bool = False
    budget_exhausted: bool = False
    lowest_holding: FitHolding | None = None
    highest_failing: FitFailing | None = None
    uncertain: list[float] = field(default_factory=list)
    recommended: FitRecommendation = field(default_factory=FitRecommendation)
    rules: FitRules = field(default_factory=FitRules)
    points: list[FitPoint] = field(default_factory=list)
    runs: list[RunRow] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    summary: list[str] = field(default_factory=list)
    exit_code: int = EXIT_INCONCLUSIVE

    def to_dict(self) -> dict[str, Any]:
        """Return fit.json's structure."""
        return finite(dataclasses.asdict(self))


def finite(value: Any) -> Any:
    """Return `value` with every non-finite float (unknown) as None: JSON has no NaN or Infinity."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [finite(item) for item in value]
    return value


def write_json(data: dict[str, Any], path: str | Path) -> Path:
    """Write `data` as indented JSON to `path`, whole or not at all (beside it, then renamed); return the path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(data, indent=2, allow_nan=False) + "\n"
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def load_sweep_schema() -> dict[str, Any]:
    """Return sweep.json's JSON Schema (draft 2020-12)."""
    return json.loads((resources.files("stackprobe.report") / "sweep.schema.json").read_text(encoding="utf-8"))


def load_fit_schema() -> dict[str, Any]:
    """Return fit.json's JSON Schema (draft 2020-12)."""
    return json.loads((resources.files("stackprobe.report") / "fit.schema.json").read_text(encoding="utf-8"))
