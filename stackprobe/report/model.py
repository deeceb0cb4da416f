"""The Report of one probe run: dataclasses whose asdict() is report.json."""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Literal

SCHEMA_VERSION = 3

EventAction = Literal["oom", "die", "restart", "start"]
FaultAction = Literal["kill", "restart", "stop", "pause", "disconnect", "squeeze"]
# recovered: the SLO held again within the allowance; not_recovered: it did not (fails the run);
# not_observed: the load ended, or another fault began, before it could be seen (inconclusive);
# not_applicable: the fault was not done, or lasted to the load's end.
RecoveryStatus = Literal["recovered", "not_recovered", "not_observed", "not_applicable"]
SloOp = Literal["<", "<=", ">", ">="]
# pass: every check held and the run saw what it reports on; fail: something was seen to go wrong;
# inconclusive: nothing was seen to go wrong, but the run could not observe all it reports on.
Verdict = Literal["pass", "fail", "inconclusive"]

# The unit of an SLO check's threshold and actual, by metric: latency in milliseconds, errors in percent
# of requests, rps in requests per second.
SLO_UNITS = {
    "p50": "ms",
    "p95": "ms",
    "p99": "ms",
    "avg": "ms",
    "max": "ms",
    "errors": "%",
    "rps": "/s",
    "mem_slope": "MiB/min",
}


@dataclass(kw_only=True)
class Target:
    """The stack under test and the URL the load goes to."""

    compose_files: list[str] = field(default_factory=list)
    project: str = ""
    service: str = ""
    url: str = ""


@dataclass(kw_only=True)
class Step:
    """One step of the step shape: its users, its own requests, and its SLO checks' actual values."""

    users: int = 0
    requests: int = 0
    seconds: float = 0.0
    passed: bool = False
    checks: dict[str, float | None] = field(default_factory=dict)


@dataclass(kw_only=True)
class StepSearch:
    """What the step shape found: the most users that held the SLO, the fewest that broke it."""

    last_passing_users: int | None = None
    first_failing_users: int | None = None
    stop_reason: str = ""
    slo: str = ""
    steps: list[Step] = field(default_factory=list)


@dataclass(kw_only=True)
class LoadWorker:
    """One Locust worker of a distributed run: where it ran, the requests it made, and its CPU.

    id: Locust's client id ("<hostname>_<uuid>"); host, pid: the worker's own, as stackprobe's listener
    in it said (None: it ran without the listener); local: started by stackprobe on this machine.
    requests, failures: the sum of its stats reports to the master (Locust's stats_total per report), the
    figures the master's totals add up. listener: its requests reached the 1-s windows.
    cpu_percent: stackprobe's measure (psutil, /proc) of its CPU over its life, percent of one core;
    cpu_busiest_percent: the same over its busiest 10 s (its life when shorter); both None for a worker
    on another machine. locust_cpu_percent_max: the highest share Locust's heartbeats gave (psutil's
    cpu_percent over Locust's 10-s monitor interval; None: none above 0, as in its first 20 s).
    cpu_warning: Locust's own "exceeded cpu threshold" for it (above 90 %). saturated: over
    GENERATOR_CPU_SATURATED_PERCENT of a core by any of these: it, not the service, may have set the pace.
    missing: the master lost its heartbeats during the run (Locust's "missing" state: it died or hung);
    exit_code: how a worker started here ended (0 when it followed its master; None for one elsewhere).
    """

    id: str = ""
    host: str | None = None
    pid: int | None = None
    local: bool = False
    requests: int = 0
    failures: int = 0
    listener: bool = False
    cpu_percent: float | None = None
    cpu_busiest_percent: float | None = None
    locust_cpu_percent_max: float | None = None
    cpu_warning: bool = False
    saturated: bool = False
    missing: bool = False
    exit_code: int | None = None


@dataclass(kw_only=True)
class Distributed:
    """Locust's distributed mode: the master's address, its workers, and whether the generator was the limit.

    master: HOST:PORT the master listened on for workers; workers_started: worker processes stackprobe
    started here (--workers); workers_expected: how many the master waited for before the load began
    (--expect-workers, those started here included); master_cpu_percent: the master process's CPU over
    the run, percent of one core (stackprobe's measure: its CPU time over the load's wall time);
    generator_bound: a worker or the master was saturated, so the generator may have set the pace;
    workers: one entry per worker that reported to the master, by id.
    """

    master: str = ""
    workers_started: int = 0
    workers_expected: int = 0
    master_cpu_percent: float | None = None
    generator_bound: bool = False
    workers: list[LoadWorker] = field(default_factory=list)


@dataclass(kw_only=True)
class Load:
    """The Locust run as it was asked for, and (step shape) what its search found."""

    locustfile: str = ""
    users: int = 0
    spawn_rate: float = 0.0
    duration_s: float = 0.0
    # None: the locustfile offers no load shape, so Locust ran -u users at -r per second for -t.
    shape: str | None = "steady"
    step_search: StepSearch | None = None
    # Locust's own exit code: non-zero (its --exit-code-on-error, a quitting listener's process_exit_code,
    # an unhandled greenlet error) with complete results is a verdict reason, not a crash.
    locust_exit_code: int | None = None
    # Why Locust had to be stopped past --duration (a shape that never ends, a task that blocks); None if not.
    overran: str | None = None
    # The open model (--rate): arrivals per second asked for, and task runs started per second over the run
    # (Locust's own clock); both None for the closed model (--users alone).
    arrival_rate: float | None = None
    achieved_rate: float | None = None
    # Locust's distributed mode (--workers, --master-bind); None: one Locust process.
    distributed: Distributed | None = None


@dataclass(kw_only=True)
class OtherLimit:
    """A memory limit asked for another service than the target (--memory app=128m,db=256m), and its fate."""

    service: str = ""
    memory_requested_bytes: int | None = None
    memory_applied_bytes: int | None = None
    applied_matches: bool = False
    problems: list[str] = field(default_factory=list)


@dataclass(kw_only=True)
class Limits:
    """Limits asked for, declared in Compose, and applied by the engine and the cgroup."""

    memory_requested_bytes: int | None = None
    memory_declared_bytes: int | None = None
    memory_applied_bytes: int | None = None
    memswap_applied_bytes: int | None = None
    memory_cgroup_bytes: int | None = None
    cgroup_version: Literal[1, 2] | None = None
    cpus_requested: float | None = None
    cpus_applied: float | None = None
    applied_matches: bool = False
    problems: list[str] = field(default_factory=list)
    # What is worth knowing but changes nothing (e.g. an engine without swap accounting, a limit strict in
    # effect because the host has no swap).
    notes: list[str] = field(default_factory=list)
    others: list[OtherLimit] = field(default_factory=list)


@dataclass(kw_only=True)
class Requests:
    """Request totals over the whole run."""

    total: int = 0
    failures: int = 0
    rps: float = 0.0
    failure_ratio: float = 0.0
    # Exceptions raised in the locustfile's tasks (Locust's exceptions table): not requests, but load that
    # was never sent, so they count against the run.
    exceptions: int = 0


@dataclass(kw_only=True)
class Latency:
    """Response times over the whole run, in milliseconds; None when no request finished."""

    p50: float | None = None
    p95: float | None = None
    p99: float | None = None
    avg: float | None = None
    max: float | None = None


@dataclass(kw_only=True)
class MemoryTrend:
    """The slope of the target's memory after a warm-up, by a robust fit, and when it would reach the limit.

    memory(t) = intercept_bytes + slope_mib_per_min * MiB / 60 * t, t in seconds on the run's axis;
    slope_low..slope_high is the fit's confidence interval (`confidence`, e.g. 0.95) in MiB/min.
    time_to_limit_s: seconds after the load's end at which the slope would reach the limit (None: it does
    not grow, or there is no limit). source names the fit and the series it was fitted to.
    """

    slope_mib_per_min: float | None = None
    slope_low: float | None = None
    slope_high: float | None = None
    confidence: float = 0.95
    intercept_bytes: float | None = None
    warmup_s: float = 0.0
    points: int = 0
    time_to_limit_s: float | None = None
    source: str = ""


@dataclass(kw_only=True)
class Memory:
    """Memory of the service under test: its peak from the truest source read, and the others beside it.

    `peak_bytes` is the cgroup's own high-water mark when it was read (v1 memory.max_usage_in_bytes, reset
    at the load's start; v2 memory.peak), since it sees spikes between samples and is what the kernel holds
    against the limit; else the sampled peak. `peak_source` names which. `peak_sampled_bytes` is the peak
    of `docker stats` samples (usage less inactive page cache, about one a second).
    """

    peak_bytes: int | None = None
    peak_source: str = ""
    peak_kernel_bytes: int | None = None
    peak_sampled_bytes: int | None = None
    limit_bytes: int | None = None
    peak_ratio: float | None = None
    idle_bytes: int | None = None
    # When the cgroup was first seen frozen at its limit (oom_kill_disable: the kernel's under_oom), else None.
    frozen_at: float | None = None
    trend: MemoryTrend | None = None


@dataclass(kw_only=True)
class Cpu:
    """CPU use and throttling of the service under test."""

    peak_percent: float | None = None
    avg_percent: float | None = None
    throttled_periods: int | None = None
    throttled_seconds: float | None = None


@dataclass(kw_only=True)
class Event:
    """A container event, at t seconds since the load started."""

    t: float
    action: EventAction
    container: str
    service: str
    exit_code: int | None = None


@dataclass(kw_only=True)
class Listing:
    """How the audit read the writes through the listing the write log declares (its "scan" line).

    url: the listing's first page. pages, records: what the audit read of it. complete: it read every page
    (to a null `next`). verified: the acknowledged writes verified on the listing's word (their record as
    acknowledged, the only one of their name); the rest of the audit's verified were read back alone, at
    their lookup or location. spot_checked: writes the listing showed that were read back alone as well
    (2 %, at least 100); spot_check_disagreed: of those, how many read otherwise (missing, different, their
    name held twice): any sets the listing aside. problem: why the listing settled no write (not read whole,
    a spot-check that disagreed, no record with a write's key); every write was then read back alone.
    """

    url: str
    pages: int
    records: int
    complete: bool
    verified: int
    spot_checked: int = 0
    spot_check_disagreed: int = 0
    problem: str | None = None


@dataclass(kw_only=True)
class Writes:
    """The audit of the load's writes, in Jepsen's terms; counts are None when the load logged none.

    Acknowledged creates: verified (found as acknowledged), lost (404, a different body, or no record of
    that name: fails the run), unverified (the audit could not look: 5xx/429 after retries, timeouts,
    refused, or it gave up; the run is inconclusive). acknowledged = verified + lost + unverified.
    Indeterminate creates (timed out, connection broken, no completion): recovered (found: applied), not
    applied (not found), unresolved (could not look). indeterminate = recovered + not_applied + unresolved.
    failed: creates definitely refused; failed_applied of them were found written all the same.
    duplicated: writes whose name the service holds more than once. The new counts are None in a report
    from an audit that did not make them (a log in the first format has no invokes to settle).
    listing: how the writes were read through the listing the log declares; None when it declares none
    (each write was then read back alone).
    """

    applicable: bool = False
    acknowledged: int | None = None
    verified: int | None = None
    lost: int | None = None
    unverified: int | None = None
    lost_examples: list[str] = field(default_factory=list)
    unverified_examples: list[str] = field(default_factory=list)
    gave_up: str | None = None
    indeterminate: int | None = None
    recovered: int | None = None
    not_applied: int | None = None
    unresolved: int | None = None
    failed: int | None = None
    failed_applied: int | None = None
    duplicated: int | None = None
    unresolved_examples: list[str] = field(default_factory=list)
    failed_applied_examples: list[str] = field(default_factory=list)
    duplicated_examples: list[str] = field(default_factory=list)
    listing: Listing | None = None


@dataclass(kw_only=True)
class Recovery:
    """How the load fared through one fault and after it, from the listener's 1-s windows.

    reference: "start" (kill, restart: timed from when the action was sent) or "end" (the others: from
    when the fault was undone); from_t: that instant on the run's axis, seconds. requests, errors: in the
    1-s windows overlapping the fault (started..ended). first_success_s: from from_t to the start of
    the first window that begins at or after it and holds a successful request (the success came in the
    second after). recovered_s: from from_t to the start of the first 5-s span (five windows, each beginning
    at or after from_t, the first holding a success) in which every request term of the SLO that held
    over the 5 s before the fault (judged_on) holds; a span may not overlap another fault.
    requests_to_recovery, errors_to_recovery: from from_t to that span (or to the end of the allowance).
    status: see RecoveryStatus; summary: it in words, e.g. "recovered in 3.1 s".
    """

    reference: Literal["start", "end"] = "end"
    from_t: float | None = None
    allowance_s: float = 10.0
    requests: int = 0
    errors: int = 0
    first_success_s: float | None = None
    recovered_s: float | None = None
    requests_to_recovery: int = 0
    errors_to_recovery: int = 0
    status: RecoveryStatus = "not_applicable"
    summary: str = ""
    # The SLO's request terms the recovery was judged on: those that held over the 5 s before the fault.
    judged_on: str = ""
    source: str = ""


@dataclass(kw_only=True)
class FaultRecord:
    """One fault of the schedule and what became of it; times in seconds on the run's axis.

    at, for_ (JSON "for"): as scheduled (for: None for kill and restart, or a fault lasting to the load's
    end); signal: what a kill sent; sent_via: how, "host" (to PID 1 from the engine's host, as a crash or the
    OOM killer: the restart policy decides what follows) or "engine" (`docker kill`, which the engine takes
    as a stop: no restart policy applies); size_bytes: a squeeze's limit. done: carried out and, for a lasting
    fault, undone; error: why not, in the engine's words. started, ended: when it was sent and when it was
    over (undone, or the engine's answer to kill/restart); undone_by: "schedule", "load end" or
    "interrupted". kernel: what a squeeze met, "refused" (the engine would not lower the limit: cgroup v1
    below the usage), "oom_kill" (the service was OOM-killed under it) or "reclaim" (the limit took and
    the service ran under it); kernel_detail: the figures behind it. recovery: None when not measured.
    """

    action: FaultAction
    service: str
    at: float
    for_: float | None = field(default=None, metadata={"json": "for"})
    signal: str | None = None
    sent_via: Literal["host", "engine"] | None = None
    size_bytes: int | None = None
    done: bool = False
    error: str | None = None
    started: float | None = None
    ended: float | None = None
    undone_by: str | None = None
    containers: list[str] = field(default_factory=list)
    limit_before_bytes: int | None = None
    kernel: Literal["refused", "oom_kill", "reclaim"] | None = None
    kernel_detail: str | None = None
    recovery: Recovery | None = None


@dataclass(kw_only=True)
class FaultEffects:
    """What the faults explain: the target's restarts and OOM kills inside a fault's window (plus its
    recovery allowance) on the target itself, counted apart from those no fault explains (which fail the run).

    Restarts are matched by their die event's time, OOM kills by the engine's oom events' times;
    recovery_allowance_s is --recovery. Errors inside those windows are left out of the SLO (see Slo.excluded).
    """

    recovery_allowance_s: float | None = None
    restarts_explained: int = 0
    restarts_unexplained: int = 0
    oom_kills_explained: int = 0
    oom_kills_unexplained: int = 0


@dataclass(kw_only=True)
class SloCheck:
    """One SLO term and how the run measured against it."""

    metric: str
    op: SloOp
    threshold: float
    actual: float | None
    passed: bool


@dataclass(kw_only=True)
class Slo:
    """The SLO spec and its checks; passed when every check passed."""

    spec: str = ""
    checks: list[SloCheck] = field(default_factory=list)
    passed: bool = True
    # The request terms are judged outside these spans [from, to] (seconds on the run's axis): each fault's
    # window plus its recovery allowance. Empty: judged on the whole load (Locust's totals).
    excluded: list[list[float]] = field(default_factory=list)
    scope: str = ""


@dataclass(kw_only=True)
class BaselineFigure:
    """One figure of the base run beside this run's, and the bound it was held to (--baseline).

    `base` and `new` are in `unit` ("ms", "req/s", "%", "bytes", "count", "MiB/min"); None: not measured.
    `change` is new / base - 1 (0.12 = 12 % higher; None when either is missing or base is 0). `bound` is the
    change allowed as given in --max-regression ("+10%", "-10%", "+20ms"; None: shown, not held to a bound)
    and `allowed` the figure it allows (the worst `new` that is no regression). `regressed`: `new` is beyond
    `allowed`. `source` names where this run's figure comes from, `base_source` the base run's when it differs.
    """

    metric: str
    unit: str
    base: float | None = None
    new: float | None = None
    change: float | None = None
    bound: str | None = None
    allowed: float | None = None
    regressed: bool = False
    source: str = ""
    base_source: str = ""


@dataclass(kw_only=True)
class Baseline:
    """The run this one was compared with (--baseline BASE.json), figure by figure, and whether it regressed."""

    path: str = ""
    max_regression: str = ""
    base_started_at: str = ""
    base_project: str = ""
    base_verdict: Verdict = "pass"
    figures: list[BaselineFigure] = field(default_factory=list)
    regressed: bool = False


@dataclass(kw_only=True)
class LoadSeries:
    """Locust's view over time; latency lists hold None where no request finished."""

    source: str = ""
    t: list[float] = field(default_factory=list)
    users: list[int] = field(default_factory=list)
    rps: list[float] = field(default_factory=list)
    failures_per_s: list[float] = field(default_factory=list)
    p50_ms: list[float | None] = field(default_factory=list)
    p95_ms: list[float | None] = field(default_factory=list)
    p99_ms: list[float | None] = field(default_factory=list)


@dataclass(kw_only=True)
class ContainerSeries:
    """One container's samples over time (the docker CLI's stats formulas), keyed by container name."""

    service: str = ""
    t: list[float] = field(default_factory=list)
    memory_bytes: list[int] = field(default_factory=list)
    limit_bytes: int | None = None
    cpu_percent: list[float] = field(default_factory=list)


@dataclass(kw_only=True)
class Series:
    """Everything over time, on one axis: seconds since the load started."""

    load: LoadSeries = field(default_factory=LoadSeries)
    containers: dict[str, ContainerSeries] = field(default_factory=dict)


@dataclass(kw_only=True)
class Cost:
    """What watching and loading cost the machine, in percent of one core over the run."""

    prober_cpu_seconds: float = 0.0
    prober_cpu_percent: float = 0.0
    load_generator_cpu_percent: float | None = None
    # Locust's own "CPU usage above 90%" warning: the generator, not the service, may have set the pace.
    load_generator_cpu_warning: bool = False


@dataclass(kw_only=True)
class Failure:
    """One row of Locust's failures table: a request that failed, grouped by endpoint and error."""

    method: str = ""
    name: str = ""
    error: str = ""
    occurrences: int = 0
    first_t: float | None = None
    last_t: float | None = None


@dataclass(kw_only=True)
class LocustException:
    """One row of Locust's exceptions table: an error raised in the locustfile's own code."""

    message: str = ""
    count: int = 0
    traceback: str = ""
    first_t: float | None = None
    last_t: float | None = None


@dataclass(kw_only=True)
class ClientErrors:
    """What the load's clients saw go wrong, on the run's time axis (from stackprobe's Locust listener)."""

    failures: list[Failure] = field(default_factory=list)
    exceptions: list[LocustException] = field(default_factory=list)


@dataclass(kw_only=True)
class Report:
    """Everything one probe run found; `asdict` of it is report.json."""

    schema_version: int = SCHEMA_VERSION
    stackprobe_version: str = ""
    started_at: str = ""
    finished_at: str = ""
    duration_s: float = 0.0
    target: Target = field(default_factory=Target)
    load: Load = field(default_factory=Load)
    limits: Limits = field(default_factory=Limits)
    requests: Requests = field(default_factory=Requests)
    latency_ms: Latency = field(default_factory=Latency)
    memory: Memory = field(default_factory=Memory)
    cpu: Cpu = field(default_factory=Cpu)
    # OOM kills by the kernel's own counter (oom_kill in memory.oom_control / memory.events), PID-1 kills
    # recovered from the engine's die events; `oom_events` is the engine's oom event count beside it.
    oom_kills: int = 0
    oom_kills_source: str = ""
    oom_events: int = 0
    restarts: int = 0
    # Target containers that stopped during the run and were not started again (no restart policy).
    target_exits: list[str] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    writes: Writes = field(default_factory=Writes)
    client_errors: ClientErrors = field(default_factory=ClientErrors)
    faults: list[FaultRecord] = field(default_factory=list)
    fault_effects: FaultEffects = field(default_factory=FaultEffects)
    slo: Slo = field(default_factory=Slo)
    # The base run this one was held against (--baseline); None: no baseline was given.
    baseline: Baseline | None = None
    series: Series = field(default_factory=Series)
    cost: Cost = field(default_factory=Cost)
    # What the run could not observe (a cut event stream, an unread cgroup, ...): each makes it inconclusive.
    problems: list[str] = field(default_factory=list)
    verdict: Verdict = "fail"
    # Why the verdict is what it is: the failures for "fail", what could not be seen for "inconclusive".
    reasons: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Return the report as report.json's plain structure."""
        return _finite(_plain(self))

    def to_json(self, indent: int | None = 2) -> str:
        """Return report.json's text."""
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Report:
        """Build a Report from report.json's structure; ValueError names what does not fit."""
        version = data.get("schema_version")
        if version != SCHEMA_VERSION:
            raise ValueError(f"report schema_version {version!r} is not {SCHEMA_VERSION}")
        return _build(cls, data, "report")

    @classmethod
    def from_json(cls, text: str) -> Report:
        """Build a Report from report.json's text."""
        return cls.from_dict(json.loads(text))


def step_search_from_dict(data: dict[str, Any]) -> StepSearch:
    """Build a StepSearch from the step shape's JSON summary; ValueError names what does not fit."""
    return _build(StepSearch, data, "step result")


def _json_name(f: dataclasses.Field[Any]) -> str:
    """Return a field's report.json key: its name, or metadata["json"] where that is a Python keyword."""
    return str(f.metadata.get("json", f.name))


def _plain(value: Any) -> Any:
    """Return a dataclass tree as plain JSON data, as dataclasses.asdict does, with each field's JSON key."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {_json_name(f): _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return value


def _finite(value: Any) -> Any:
    # JSON has no NaN or Infinity; a measurement that came out non-finite is unknown, which is null.
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_finite(item) for item in value]
    return value


def _build(tp: Any, value: Any, where: str) -> Any:
    """Convert plain JSON data to the annotated type `tp`, naming `where` when it does not fit."""
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        if not isinstance(value, dict):
            raise ValueError(f"{where}: expected an object, got {type(value).__name__}")
        hints = typing.get_type_hints(tp)
        names = {_json_name(f): f.name for f in dataclasses.fields(tp)}
        unknown = sorted(set(value) - set(names))
        if unknown:
            raise ValueError(f"{where}: unknown keys {unknown}")
        kwargs = {names[key]: _build(hints[names[key]], item, f"{where}.{key}") for key, item in value.items()}
        try:
            return tp(**kwargs)
        except TypeError as exc:
            raise ValueError(f"{where}: {exc}") from None
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        (inner,) = [arg for arg in args if arg is not type(None)]
        return _build(inner, value, where)
    if origin is list:
        if not isinstance(value, list):
            raise ValueError(f"{where}: expected a list, got {type(value).__name__}")
        (item_tp,) = typing.get_args(tp)
        return [_build(item_tp, item, f"{where}[{i}]") for i, item in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ValueError(f"{where}: expected an object, got {type(value).__name__}")
        _, item_tp = typing.get_args(tp)
        return {key: _build(item_tp, item, f"{where}.{key}") for key, item in value.items()}
    if origin is Literal:
        if value not in typing.get_args(tp):
            raise ValueError(f"{where}: {value!r} is not one of {list(typing.get_args(tp))}")
        return value
    return _scalar(tp, value, where)


def _scalar(tp: Any, value: Any, where: str) -> Any:
    # bool is an int in Python; a JSON true where a count belongs is still a mistake.
    if tp is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if tp in (int, str, bool) and type(value) is tp:
        return value
    raise ValueError(f"{where}: expected {tp.__name__}, got {value!r}")
