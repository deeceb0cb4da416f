"""Watch the containers of one Compose project: memory, CPU, OOM kills, frozen cgroups, deaths and restarts.

Three sources, each named wherever its figures are reported:

- the engine's stats stream, one thread per container, about one sample a second: the memory series
  (usage less inactive page cache, as `docker stats` shows it), CPU percent (the docker CLI's formula) and
  CFS throttling. A spike between two samples is invisible here;
- the container's cgroup, read by one thread for every container: every 0.5 s from the engine host's
  cgroup tree, at once and then every 5 ms for 0.1 s after an `oom` event, at a `start` event and once
  more at stop (by `cat` inside the container when that tree is not visible: every 2 s, and at an event
  no sooner than 0.5 s after the last reading); a reading due within 0.1 s is made with one due now, so
  that the containers share a wake-up of the thread. It gives the kernel's own high-water mark (v1
  memory.max_usage_in_bytes, reset when the load starts; v2 memory.peak, page cache included in both), its
  count of OOM kills (oom_kill) and whether the cgroup is frozen at its limit (v1 under_oom);
- the engine's event stream, one thread: oom, die, start and restart events. At stop a second stream,
  bounded by the engine at stop + 0.75 s, makes sure an `oom` or `die` just after the load is counted.

A container restarted (by its policy or by hand) runs in a new cgroup whose counters start from zero: each
run between two starts (an incarnation) is counted on its own and the counts are summed. When PID 1 is
OOM-killed the cgroup is removed within milliseconds, often before a read could show the kill; such a kill
is recovered from the `die` event (exit code 137) and the `oom` event or State.OOMKilled, unless a read
made after the oom event arrived, or one that found the cgroup emptied, already showed it.

Every time is kept on the time.monotonic() clock and reported as seconds since t0, the load's start, so
samples, kernel readings, events and the load share one axis.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import queue
import statistics
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import docker
from docker.types.daemon import CancellableStream

from stackprobe import cgroup, metrics
from stackprobe.cgroup import CGROUP_SOURCE_EXEC, CGROUP_SOURCE_HOST, FileReader, HostCgroup, MemoryCounters
from stackprobe.kmsg import KernelLog

log = logging.getLogger(__name__)

PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"
# The container actions the report keeps; the engine sends many more (exec_*, health_status, ...).
EVENT_ACTIONS = ("oom", "die", "restart", "start")
# A stats sample of a container that is not running carries this zero time and no memory figures.
_ZERO_TIME = "0001-01-01T00:00:00Z"
# Exit code of a process killed by SIGKILL, as the OOM killer does.
_SIGKILL_EXIT = 137

# How often each container's cgroup is read: from the host's tree (a few small files, microseconds), and
# by `cat` inside the container (an exec each, tens of milliseconds of the engine's time).
POLL_S = 0.5
EXEC_POLL_S = 2.0
# A reading due this soon is made with one due now, so the containers' readings fall into one wake-up of
# the poller (each wake-up costs as much CPU as the reading): a reading comes at most this much early.
ALIGN_S = 0.1
# An event asks for an exec reading at once, but never sooner than this after the last one (an OOM storm
# sends hundreds of oom events a second).
EXEC_MIN_GAP_S = 0.5
# After an oom event, read the cgroup this often for this long: a PID-1 kill empties the cgroup within
# milliseconds and the engine removes it some 10 ms later; a read in between shows the final counters.
# (An OOM storm, 100-200 oom events a second, keeps it going: the watch then costs 6-11 % of a core.)
BURST_S = 0.1
BURST_STEP_S = 0.005
# At stop: events up to this long after the stop instant are still counted (the engine closes the stream).
GRACE_S = 0.75
# ...and the bounded stream replays from this long before the stop instant, for what the live one had not
# yet delivered.
TAIL_LOOKBACK_S = 1.0
# Joining threads after the grace; stop() as a whole stays under about 2 s.
_JOIN_BUDGET_S = 1.0
# A die event's engine timestamp plus this bounds its cgroup's readings: the cgroup is removed some 10 ms
# before the engine stamps die, and a restart creates the next one 100 ms or more after it.
STAMP_SLACK_S = 0.05
# Replicas' samples arrive at different instants: a sample counts towards its service's totals this long.
HOLD_S = 1.5


@dataclass(frozen=True)
class ContainerEvent:
    """One engine event about a watched container, on the run's time axis (t in seconds since t0)."""

    t: float
    action: str
    container: str
    service: str
    exit_code: int | None
    container_id: str

    def to_report(self) -> dict[str, Any]:
        """Return the report's event object."""
        return {
            "t": round(self.t, 3),
            "action": self.action,
            "container": self.container,
            "service": self.service,
            "exit_code": self.exit_code,
        }


@dataclass(frozen=True)
class SeenEvent:
    """An event of one container as the watch saw it: `at` is the engine's timestamp and `arrived` when it
    reached the watch, both on the time.monotonic() clock."""

    at: float
    arrived: float
    event: ContainerEvent


@dataclass(frozen=True)
class StatsPoint:
    """One stats sample of one container, reduced to what the report uses."""

    at: float  # time.monotonic() when the sample arrived
    memory_bytes: int
    cpu_percent: float


@dataclass(frozen=True)
class Snapshot:
    """The latest figures of one service, handed to the progress callback."""

    service: str
    container: str
    t: float
    memory_bytes: int
    limit_bytes: int | None
    cpu_percent: float


ProgressCallback = Callable[[Mapping[str, Snapshot]], None]


class _Counter:
    """Sum the growth of a cumulative counter that restarts from zero when its cgroup is recreated."""

    def __init__(self) -> None:
        self.total = 0
        self._last: int | None = None

    def update(self, value: int) -> None:
        """Add the growth since the last value seen."""
        if self._last is not None:
            self.total += value - self._last if value >= self._last else value
        self._last = value


class StatsSeries:
    """The stats samples of one container, reduced as they arrive."""

    def __init__(self, container_id: str, name: str, service: str, limit_bytes: int | None) -> None:
        self.container_id = container_id
        self.name = name
        self.service = service
        self.limit_bytes = limit_bytes
        self.points: list[StatsPoint] = []
        self.throttled_periods = _Counter()
        self.throttled_ns = _Counter()
        self._previous: Mapping[str, Any] | None = None

    def add(self, sample: Mapping[str, Any], at: float) -> StatsPoint | None:
        """Take one decoded stats sample received at monotonic time `at`; return its point if it made one."""
        memory = metrics.memory_usage_bytes(sample)
        if sample.get("read", _ZERO_TIME) == _ZERO_TIME or memory is None:
            return None  # stopped (e.g. between an OOM kill and the restart): nothing was measured
        throttled = metrics.throttling(sample)
        if throttled is not None:
            self.throttled_periods.update(throttled.throttled_periods)
            self.throttled_ns.update(round(throttled.throttled_seconds * 1e9))
        # The previous sample that measured something, not the stream's precpu_stats: after a stopped
        # spell those hold the empty sample of the stopped container.
        previous, self._previous = self._previous, sample
        if previous is None:
            # A stream's first sample only anchors the CPU counters: CPU use needs two samples.
            return None
        cpu = metrics.cpu_percent(sample, previous)
        if cpu is None:
            return None
        point = StatsPoint(at=at, memory_bytes=memory, cpu_percent=cpu)
        self.points.append(point)
        return point


class EventAccounting:
    """Turn engine events into the report's event list, per-container histories and restart counts.

    `oom_events` counts the engine's oom events per service. They are not OOM kills: containerd may send
    one for several kills or several for one, and one for a cgroup frozen at its limit that killed nothing.
    An event delivered twice (the live stream and the bounded one at stop) is kept once.
    """

    def __init__(self, services: frozenset[str] | None = None) -> None:
        self.services = services
        self.events: list[tuple[float, ContainerEvent]] = []  # (monotonic time, event with t unset)
        self.by_container: dict[str, list[SeenEvent]] = {}
        self.oom_events: dict[str, int] = {}
        self.restarts: dict[str, int] = {}
        # Per container: "died" after a die, "restarted" once the start that follows it was counted.
        self._phase: dict[str, str] = {}
        self._seen: set[tuple[str, str, int]] = set()

    def add(self, event: Mapping[str, Any], at: float, arrived: float | None = None) -> ContainerEvent | None:
        """Account one decoded event stamped at monotonic time `at` (arrived at `arrived`, default `at`);
        return it if it is kept and new."""
        action = event.get("Action") or event.get("status") or ""
        actor = event.get("Actor") or {}
        attributes = actor.get("Attributes") or {}
        service = attributes.get(SERVICE_LABEL, "")
        if event.get("Type", "container") != "container" or action not in EVENT_ACTIONS:
            return None
        if self.services is not None and service not in self.services:
            return None
        container_id = actor.get("ID") or event.get("id") or ""
        if "timeNano" in event:
            key = (container_id, action, int(event["timeNano"]))
            if key in self._seen:
                return None
            self._seen.add(key)
        exit_code = attributes.get("exitCode")
        record = ContainerEvent(
            t=0.0,
            action=action,
            container=attributes.get("name", container_id[:12]),
            service=service,
            exit_code=int(exit_code) if exit_code not in (None, "") else None,
            container_id=container_id,
        )
        self.events.append((at, record))
        self.by_container.setdefault(container_id, []).append(
            SeenEvent(at=at, arrived=at if arrived is None else arrived, event=record)
        )
        if action == "oom":
            self.oom_events[service] = self.oom_events.get(service, 0) + 1
        self._count_restart(container_id, service, action)
        return record

    def _count_restart(self, container_id: str, service: str, action: str) -> None:
        """Count a restart once per die: by the start that follows it, or by a restart event."""
        phase = self._phase.get(container_id)
        if action == "die":
            self._phase[container_id] = "died"
            return
        if action == "start" and phase == "died":
            # Engine 20.10 restarts by policy with a bare start event; there is no restart event.
            self._phase[container_id] = "restarted"
        elif action == "restart" and phase == "restarted":
            # `docker restart` sends die, start, then restart: the start already counted this one.
            self._phase.pop(container_id)
            return
        elif action == "restart":
            self._phase.pop(container_id, None)
        else:
            return
        self.restarts[service] = self.restarts.get(service, 0) + 1


@dataclass
class CgroupRun:
    """Consecutive reads of one container's cgroup that gave the same counters.

    first_at and last_at: when the first and the last of these reads began, on the monotonic clock.
    """

    first_at: float
    last_at: float
    reads: int
    counters: MemoryCounters


class CgroupLog:
    """The readings of one container's memory cgroup, in the order made, equal readings merged into runs.

    A cut (at a die event, at the high-water mark's reset) makes the next reading start a new run, so no
    run spans two incarnations or the reset.
    """

    def __init__(self) -> None:
        self.runs: list[CgroupRun] = []
        self.failures = 0
        self.last_error: str | None = None
        self._cuts: list[float] = []

    def add(self, counters: MemoryCounters, at: float) -> None:
        """Record a reading that began at monotonic time `at`."""
        last = self.runs[-1] if self.runs else None
        if last is not None and last.counters == counters and at >= last.last_at and not self._cut_between(last, at):
            last.last_at = at
            last.reads += 1
            return
        self.runs.append(CgroupRun(first_at=at, last_at=at, reads=1, counters=counters))

    def fail(self, why: str) -> None:
        """Record a reading that failed (the cgroup is gone between incarnations, or cannot be read)."""
        self.failures += 1
        self.last_error = why

    def cut(self, at: float) -> None:
        """Start a new run with the first reading that begins at or after `at`."""
        self._cuts.append(at)

    def _cut_between(self, last: CgroupRun, at: float) -> bool:
        for cut in reversed(self._cuts):
            if cut <= last.last_at:
                return False
            if cut <= at:
                return True
        return False


@dataclass(frozen=True)
class FinalState:
    """A container's state read by `docker inspect` when the watch stopped."""

    running: bool
    exit_code: int | None
    oom_killed: bool
    restart_count: int


@dataclass(frozen=True)
class Incarnation:
    """One run of a container's processes, in its own cgroup: from a start to a die (or the watch's ends).

    Times are seconds on the run's axis. started_t: its start event (None: it was running before the watch,
    or the start was not seen); ended_t: its die event (None: still running at stop, or the die not seen).
    peak_kernel_bytes: the cgroup's high-water mark over the peak window (None: never read); it is the
    limit when PID 1 was OOM-killed and no read showed it, since the kernel kills only at the limit.
    peak_since_load: the high-water mark covers only the load window (reset at the load's start, or the
    incarnation began after it). oom_kills: the kernel's counter growth plus oom_kills_recovered, a PID-1
    kill the counter could not show before the cgroup was removed, recovered from the die event.
    oom_events: the engine's oom events during it. frozen_at: first read at under_oom with OOM killing
    disabled.
    """

    started_t: float | None
    ended_t: float | None
    exit_code: int | None
    cgroup_reads: int
    peak_kernel_bytes: int | None
    peak_since_load: bool
    in_load_window: bool
    oom_kills: int
    oom_kills_recovered: int
    oom_kills_from_events: bool
    oom_events: int
    pid1_oom_killed: bool
    frozen_at: float | None


def account_incarnations(
    cgroup_log: CgroupLog,
    events: Sequence[SeenEvent],
    *,
    t0: float,
    reset_at: float | None = None,
    limit_bytes: int | None = None,
    ran_before_watch: bool = False,
    final: FinalState | None = None,
    same_clock: bool = True,
    kernel_oom_kills: Sequence[float] = (),
) -> list[Incarnation]:
    """Split one container's cgroup readings and events into incarnations and count each one.

    cgroup_log: its readings (monotonic times); events: its engine events (SeenEvent); t0: the load's
    start (monotonic); reset_at: when its v1 high-water mark was reset (monotonic, None if it was not);
    limit_bytes: its memory limit from HostConfig, used when no reading gave the cgroup's own;
    ran_before_watch: its first incarnation began before the watch, so only the growth of its kill counter
    since the first reading counts; final: its state at stop (for a last death whose events were missed);
    same_clock: the readings were made on the engine's host, whose clock stamps the events;
    kernel_oom_kills: when the kernel's log (stackprobe.kmsg) charged an OOM kill to its cgroup (monotonic):
    evidence that a SIGKILL of PID 1 was the OOM killer's when no oom event came, and the count of kills of
    an incarnation whose cgroup was never read (the more of it and the engine's oom events).

    Readings belong to the incarnation whose die came after the reading began: after its arrival, or (on
    the engine's host) after its stamp plus STAMP_SLACK_S when that is sooner, since the event thread may
    get to an event late. The cgroup is removed before the engine stamps die, and the next one is created
    100 ms or more after. Events belong by their engine timestamp. A reading proves a kill was counted when
    it began after the kill's oom event (its stamp on the engine's host, else its arrival): the kernel counts
    a kill before it sends SIGKILL, and the engine stamps the event milliseconds later.
    """

    def edge(die: SeenEvent) -> float:
        return min(die.arrived, die.at + STAMP_SLACK_S) if same_clock else die.arrived

    def seen_after(oom: SeenEvent) -> float:
        return min(oom.arrived, oom.at) if same_clock else oom.arrived

    ordered = sorted(events, key=lambda seen: seen.at)
    dies = [seen for seen in ordered if seen.event.action == "die"]
    running_at_end = final.running if final is not None else None
    last_die_arrival = edge(dies[-1]) if dies else -math.inf
    trailing = (
        not dies
        or running_at_end is True
        or any(seen.at > dies[-1].at and seen.event.action == "start" for seen in ordered)
        or any(run.first_at >= last_die_arrival for run in cgroup_log.runs)
    )
    bounds: list[tuple[SeenEvent | None, SeenEvent | None]] = []
    previous: SeenEvent | None = None
    for die in dies:
        bounds.append((previous, die))
        previous = die
    if trailing:
        bounds.append((previous, None))

    incarnations: list[Incarnation] = []
    for index, (before, die) in enumerate(bounds):
        is_last = index == len(bounds) - 1
        start_edge = edge(before) if before is not None else -math.inf
        end_edge = edge(die) if die is not None else math.inf
        start_stamp = before.at if before is not None else -math.inf
        end_stamp = die.at if die is not None else math.inf
        runs = [run for run in cgroup_log.runs if start_edge <= run.first_at < end_edge]
        mine = [seen for seen in ordered if start_stamp < seen.at <= end_stamp]
        ooms = [seen for seen in mine if seen.event.action == "oom"]
        starts = [seen for seen in mine if seen.event.action == "start"]
        started_at = starts[0].at if starts else None

        exit_code = die.event.exit_code if die is not None else None
        oom_killed_at_stop = False
        if die is None and is_last and final is not None and not final.running:
            # It ended, but its die event was not seen: inspect still tells how.
            exit_code = final.exit_code
            oom_killed_at_stop = final.oom_killed
        elif die is not None and is_last and final is not None and not final.running:
            oom_killed_at_stop = final.oom_killed
        logged = [at for at in kernel_oom_kills if start_edge <= at < end_edge]
        oom_evidence = bool(ooms) or oom_killed_at_stop or bool(logged)
        pid1_oom_killed = exit_code == _SIGKILL_EXIT and oom_evidence

        kill_counts = [run.counters.oom_kill for run in runs if run.counters.oom_kill is not None]
        baseline = kill_counts[0] if (index == 0 and ran_before_watch and kill_counts) else 0
        counted = max(0, max(kill_counts) - baseline) if kill_counts else 0
        emptied = _emptied(runs)
        recovered = 0
        from_events = False
        if not runs:
            if pid1_oom_killed:
                recovered = 1
            elif ooms or logged:
                counted, from_events = max(len(ooms), len(logged)), True
        elif pid1_oom_killed and not emptied:
            last_read = max(run.last_at for run in runs)
            latest_oom = max([*(seen_after(seen) for seen in ooms), *logged], default=None)
            if latest_oom is None or last_read <= latest_oom:
                recovered = 1

        reset_here = reset_at is not None and start_edge <= reset_at < end_edge
        if reset_here:
            assert reset_at is not None
            window_runs = [run for run in runs if run.first_at >= reset_at]
        else:
            window_runs = runs
        since_load = reset_here or (started_at is not None and started_at >= t0) or start_edge >= t0
        peaks = [run.counters.peak_bytes for run in window_runs if run.counters.peak_bytes is not None]
        peak = max(peaks) if peaks else None
        if recovered:
            limits = [run.counters.limit_bytes for run in runs if run.counters.limit_bytes is not None]
            limit = max(limits) if limits else limit_bytes
            if limit is not None:
                peak = max(peak or 0, limit)
        frozen = [run.first_at for run in runs if run.counters.frozen]
        incarnations.append(
            Incarnation(
                started_t=None if started_at is None else started_at - t0,
                ended_t=None if die is None else die.at - t0,
                exit_code=exit_code,
                cgroup_reads=sum(run.reads for run in runs),
                peak_kernel_bytes=peak,
                peak_since_load=since_load,
                in_load_window=end_edge >= t0,
                oom_kills=counted + recovered,
                oom_kills_recovered=recovered,
                oom_kills_from_events=from_events,
                oom_events=len(ooms),
                pid1_oom_killed=pid1_oom_killed,
                frozen_at=min(frozen) - t0 if frozen else None,
            )
        )
    return incarnations


def _emptied(runs: Sequence[CgroupRun]) -> bool:
    """Tell whether a reading found the cgroup empty after one had found processes in it.

    Its counters are then final. A new cgroup is empty too for a moment, before the runtime moves the
    container's first process in: that says nothing about kills.
    """
    populated = False
    for run in runs:
        if run.counters.populated:
            populated = True
        elif run.counters.populated is False and populated:
            return True
    return False


@dataclass(frozen=True)
class ContainerSummary:
    """What the watch saw of one container; sizes in bytes, times in seconds on the run's axis.

    t, memory_bytes, cpu_percent: its docker stats series (usage less inactive page cache; CPU in percent
    of one core, the docker CLI's formula). peak_memory_bytes: the truest peak, peak_kernel_bytes when the
    cgroup was read, else peak_sampled_bytes; peak_source says which counter and over which window.
    peak_reset: the v1 high-water mark was reset at the load's start. oom_kills: by the kernel's counter
    (plus PID-1 kills recovered from die events), oom_kills_source says how; oom_events: the engine's oom
    events beside it. frozen_at: first seen frozen at its limit (v1 under_oom), else None.
    """

    name: str
    service: str
    container_id: str
    t: tuple[float, ...]
    memory_bytes: tuple[int, ...]
    cpu_percent: tuple[float, ...]
    limit_bytes: int | None
    sampled: bool
    peak_memory_bytes: int | None
    peak_source: str
    peak_kernel_bytes: int | None
    peak_sampled_bytes: int | None
    peak_reset: bool
    idle_memory_bytes: int | None
    cgroup_version: int | None
    cgroup_source: str | None
    cgroup_read: bool
    oom_kills: int
    oom_kills_source: str
    oom_events: int
    frozen_at: float | None
    restarts: int
    throttled_periods: int
    throttled_seconds: float
    running_at_stop: bool | None
    incarnations: tuple[Incarnation, ...]


@dataclass(frozen=True)
class ServiceSummary:
    """What the watch saw of one service, over its containers (replicas, or a container and its replacement).

    containers: one ContainerSummary each, by name. t, memory_bytes, cpu_percent: the service's series at
    each sample of any of its containers, memory being the largest of its containers (each is held to the
    same limit) and CPU their sum (what the service uses), each container's latest sample counting for
    1.5 s. peak_memory_bytes, peak_kernel_bytes, peak_sampled_bytes: the largest over its containers;
    oom_kills, oom_events, restarts, throttling: summed; frozen_at: the earliest. sampled: every container
    gave a stats sample; cgroup_read: every container's cgroup was read; problems: what makes this
    service's figures incomplete (also in WatchResult.problems).
    """

    service: str
    containers: tuple[ContainerSummary, ...]
    t: tuple[float, ...]
    memory_bytes: tuple[int, ...]
    cpu_percent: tuple[float, ...]
    limit_bytes: int | None
    peak_memory_bytes: int | None
    idle_memory_bytes: int | None
    peak_cpu_percent: float | None
    avg_cpu_percent: float | None
    throttled_periods: int | None
    throttled_seconds: float | None
    oom_kills: int
    restarts: int
    peak_source: str = ""
    peak_kernel_bytes: int | None = None
    peak_sampled_bytes: int | None = None
    oom_kills_source: str = ""
    oom_events: int = 0
    frozen_at: float | None = None
    sampled: bool = False
    cgroup_read: bool = False
    problems: tuple[str, ...] = ()

    @property
    def peak_ratio(self) -> float | None:
        """Return peak memory over the limit, or None without a limit or a peak."""
        if self.peak_memory_bytes is None or not self.limit_bytes:
            return None
        return self.peak_memory_bytes / self.limit_bytes

    @property
    def container_names(self) -> tuple[str, ...]:
        """Return the names of the service's containers, sorted."""
        return tuple(c.name for c in self.containers)


@dataclass(frozen=True)
class WatchResult:
    """Everything a watch recorded, on the run's time axis (seconds since t0, the load's start).

    oom_kills: by the kernel's counters (oom_kills_source says how, per service when they differ);
    oom_events: the engine's oom events beside it, a disagreement left visible. events_cover_window: the
    event stream ran from the watch's start to past its stop without a break. problems: everything that
    makes a figure incomplete (a cut stream, a container never sampled, a cgroup never read), of every
    service; problems_for(service) gives one service's with the watch's own (watch_problems).
    """

    services: dict[str, ServiceSummary]
    events: tuple[ContainerEvent, ...]
    oom_kills: int
    restarts: int
    sample_count: int
    duration_s: float
    problems: tuple[str, ...] = field(default_factory=tuple)
    oom_events: int = 0
    oom_kills_source: str = ""
    events_cover_window: bool = True
    load_ended_t: float | None = None
    # The problems of the watch as a whole (a cut stream, a thread that would not stop), not of one service.
    watch_problems: tuple[str, ...] = ()

    @property
    def containers(self) -> dict[str, ContainerSummary]:
        """Return every watched container's summary by name."""
        return {c.name: c for s in self.services.values() for c in s.containers}

    def memory_section(self, service: str) -> dict[str, Any]:
        """Return the report's "memory" object for one service (schema 2)."""
        summary = self.services.get(service)
        if summary is None:
            return {
                "peak_bytes": None,
                "peak_source": "",
                "peak_kernel_bytes": None,
                "peak_sampled_bytes": None,
                "limit_bytes": None,
                "peak_ratio": None,
                "idle_bytes": None,
                "frozen_at": None,
                "trend": None,
            }
        return {
            "peak_bytes": summary.peak_memory_bytes,
            "peak_source": summary.peak_source,
            "peak_kernel_bytes": summary.peak_kernel_bytes,
            "peak_sampled_bytes": summary.peak_sampled_bytes,
            "limit_bytes": summary.limit_bytes,
            "peak_ratio": summary.peak_ratio,
            "idle_bytes": summary.idle_memory_bytes,
            "frozen_at": None if summary.frozen_at is None else round(summary.frozen_at, 3),
            # Fitted from the report's series by stackprobe.trend once the report is assembled.
            "trend": None,
        }

    def cpu_section(self, service: str) -> dict[str, Any]:
        """Return the report's "cpu" object for one service: CPU summed over its containers."""
        summary = self.services.get(service)
        if summary is None:
            return {"peak_percent": None, "avg_percent": None, "throttled_periods": None, "throttled_seconds": None}
        return {
            "peak_percent": summary.peak_cpu_percent,
            "avg_percent": summary.avg_cpu_percent,
            "throttled_periods": summary.throttled_periods,
            "throttled_seconds": summary.throttled_seconds,
        }

    def events_section(self) -> list[dict[str, Any]]:
        """Return the report's "events" list."""
        return [event.to_report() for event in self.events]

    def containers_series(self) -> dict[str, dict[str, Any]]:
        """Return the report's "series.containers" object: one entry per container, keyed by its name."""
        return {
            container.name: {
                "service": container.service,
                "t": [round(t, 3) for t in container.t],
                "memory_bytes": list(container.memory_bytes),
                "limit_bytes": container.limit_bytes,
                "cpu_percent": [round(cpu, 2) for cpu in container.cpu_percent],
            }
            for summary in self.services.values()
            for container in summary.containers
        }

    def problems_for(self, service: str) -> list[str]:
        """Return what makes one service's figures incomplete: the watch's own problems, then the service's.

        Another service's blind spots (say a one-shot container never sampled) are left out.
        """
        summary = self.services.get(service)
        return [*self.watch_problems, *(summary.problems if summary is not None else ())]

    def stopped_containers(self, service: str) -> list[str]:
        """Return the service's containers that died during the watch and were not running at its stop."""
        summary = self.services.get(service)
        if summary is None:
            return []
        return [
            c.name
            for c in summary.containers
            if c.running_at_stop is False and c.incarnations and c.incarnations[-1].exit_code is not None
        ]


@dataclass
class _CgroupWatch:
    """How one container's cgroup is read, and what was read."""

    log: CgroupLog = field(default_factory=CgroupLog)
    host: HostCgroup | None = None
    exec_read: FileReader | None = None
    version: int | None = None
    why_unreadable: str | None = None
    resolve_wanted: bool = True
    next_at: float = 0.0
    last_read_at: float = -math.inf
    burst_until: float = 0.0
    reset_at: float | None = None
    reset_error: str | None = None

    @property
    def source(self) -> str | None:
        if self.host is not None:
            return CGROUP_SOURCE_HOST
        if self.exec_read is not None:
            return CGROUP_SOURCE_EXEC
        return None


@dataclass
class _Tracked:
    """One watched container: its series, its cgroup readings, its stats stream and the thread reading it."""

    series: StatsSeries
    restart_count_at_attach: int
    stream: CancellableStream | None = None
    thread: threading.Thread | None = None
    restart_count_at_stop: int | None = None
    cgroup: _CgroupWatch = field(default_factory=_CgroupWatch)
    ran_before_watch: bool = False
    final: FinalState | None = None


class Watcher:
    """Watch the containers of one Compose project until stopped; use as a context manager.

    Watcher(client, project, services=None, t0=None, on_sample=None): services limits the watch to those
    Compose services; on_sample gets the latest Snapshot of each service after every stats sample (from a
    watch thread; it must be quick and must not raise). start() begins, mark_load_start() sets t0 (and
    resets v1 high-water marks), stop() returns the WatchResult. Run as root on the engine's host to read
    cgroups from the host's tree (the high-water mark can then be reset); elsewhere they are read by exec.
    """

    def __init__(
        self,
        client: docker.DockerClient,
        project: str,
        *,
        services: Iterable[str] | None = None,
        t0: float | None = None,
        on_sample: ProgressCallback | None = None,
    ) -> None:
        self._client = client
        self._project = project
        self._services = frozenset(services) if services is not None else None
        self._t0 = t0
        self._on_sample = on_sample
        self._lock = threading.Lock()
        self._sampled = threading.Condition(self._lock)
        # Guards cgroup reading state and logs; the poller waits on it between reads.
        self._poll = threading.Condition(threading.Lock())
        self._poll_stop = False
        self._poll_thread: threading.Thread | None = None
        self._accounting = EventAccounting(self._services)
        self._tracked: dict[str, _Tracked] = {}
        self._latest: dict[str, Snapshot] = {}
        self._problems: list[str] = []
        self._events: CancellableStream | None = None
        self._events_thread: threading.Thread | None = None
        # Containers to attach, handed over by the event thread so that it never waits on the engine: the
        # time an event arrives is what tells a cgroup reading's incarnation.
        self._attach_queue: queue.SimpleQueue[ContainerEvent | None] = queue.SimpleQueue()
        self._attach_thread: threading.Thread | None = None
        self._events_failed = False
        self._tail_complete = False
        self._wall_minus_monotonic = 0.0
        self._started_wall = 0.0
        self._started_at: float | None = None
        self._load_marked = False
        self._load_ended_at: float | None = None
        self._cgroup_version: int | None = None
        self._stopping = False
        self._result: WatchResult | None = None
        # The kernel's log of OOM kills, for kills no cgroup reading or engine event shows (stackprobe.kmsg).
        self._kernel_log = KernelLog()

    def __enter__(self) -> Watcher:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def t0(self) -> float:
        """Return the monotonic time every t is measured from."""
        if self._t0 is None:
            raise RuntimeError("the watcher has not started")
        return self._t0

    @property
    def result(self) -> WatchResult:
        """Return what the watch recorded; available once stop() has run."""
        if self._result is None:
            raise RuntimeError("the watcher has not stopped yet")
        return self._result

    def start(self) -> None:
        """Subscribe to the project's events, then watch its running containers' stats and cgroups."""
        if self._started_at is not None:
            raise RuntimeError("a watcher starts once")
        now_wall, now = time.time(), time.monotonic()
        self._wall_minus_monotonic = now_wall - now
        self._started_wall = now_wall
        self._started_at = now
        if self._t0 is None:
            self._t0 = now
        self._kernel_log.start()
        try:
            self._cgroup_version = _cgroup_version(self._client.info())
        except Exception as exc:  # the engine's info is a nicety here; the cgroup tells its version too
            log.debug("docker info failed: %s", exc)
        # Subscribe before listing: a container that starts in between is then both listed and announced
        # by an event (attaching twice is harmless), never missed. `since` replays what the engine logged
        # between this instant and the subscription.
        self._events = self._client.events(decode=True, since=f"{now_wall:.9f}", filters=self._event_filters())
        self._events_thread = threading.Thread(
            target=self._read_events, name=f"stackprobe-events-{self._project}", daemon=True
        )
        self._events_thread.start()
        self._attach_thread = threading.Thread(
            target=self._attach_started, name=f"stackprobe-attach-{self._project}", daemon=True
        )
        self._attach_thread.start()
        self._poll_thread = threading.Thread(
            target=self._poll_cgroups, name=f"stackprobe-cgroups-{self._project}", daemon=True
        )
        self._poll_thread.start()
        try:
            for container in self._client.containers.list(filters={"label": f"{PROJECT_LABEL}={self._project}"}):
                self._attach(container.id, ran_before_watch=True)
        except Exception:
            self.stop()  # leave no thread or stream behind when the engine fails us half-way
            raise

    def mark_load_start(self, at: float | None = None) -> None:
        """Set t0, the load's start on the monotonic clock (now by default): earlier samples are idle.

        Also resets each container's cgroup v1 high-water mark (memory.max_usage_in_bytes) where it is
        writable (from the host, as root), so the kernel's peak covers the load window only.
        """
        self._t0 = time.monotonic() if at is None else at
        self._load_marked = True
        with self._lock:
            tracked = list(self._tracked.values())
        for item in tracked:
            watch = item.cgroup
            if watch.host is None:
                continue
            error = cgroup.reset_peak(watch.host)
            done = time.monotonic()  # reads that begin after this see the reset mark
            with self._poll:
                if error is None:
                    watch.reset_at = done
                    watch.log.cut(done)
                else:
                    watch.reset_error = error

    def mark_load_end(self, at: float | None = None) -> None:
        """Record when the load ended (now by default); the watch goes on until stop()."""
        self._load_ended_at = time.monotonic() if at is None else at

    def wait_for_samples(self, timeout: float = 5.0) -> bool:
        """Wait until every watched container has given at least one sample; return whether they all did."""
        deadline = time.monotonic() + timeout
        with self._sampled:
            while True:
                # A container whose stream already ended (removed meanwhile) will never give a sample.
                live = [t for t in self._tracked.values() if t.thread is not None and t.thread.is_alive()]
                if live and all(t.series.points for t in live):
                    return True
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._sampled.wait(remaining)

    def latest(self) -> dict[str, Snapshot]:
        """Return the latest sample of each service (of whichever of its containers was sampled last)."""
        with self._lock:
            return dict(self._latest)

    def events_so_far(self) -> list[ContainerEvent]:
        """Return the events recorded until now, on the run's time axis."""
        with self._lock:
            recorded = list(self._accounting.events)
        return [_on_axis(event, at - self.t0) for at, event in sorted(recorded, key=lambda pair: pair[0])]

    def so_far(self) -> WatchResult:
        """Return what the watch has recorded until now, summarised as stop() would, without stopping it.

        For a live view (the Locust panel). What only stop() adds is missing: the late-event grace (so
        events_cover_window is False), the final `docker inspect` (running_at_stop is None) and the last
        cgroup reading. After stop() it returns stop()'s result. Raises RuntimeError before start().
        """
        if self._result is not None:
            return self._result
        if self._started_at is None:
            raise RuntimeError("the watcher has not started")
        # The poller's lock, then the watch's: the order the watch threads take them in.
        with self._poll, self._lock:
            return self._summarise(time.monotonic())

    def stop(self) -> WatchResult:
        """Count late events for a moment, close every stream, join every thread and return what was recorded.

        Events up to GRACE_S after the stop instant are still counted: a bounded event stream, which the
        engine itself closes at that instant, delivers them. Safe to call twice; takes about 1 s.
        """
        if self._result is not None:
            return self._result
        if self._started_at is None:
            raise RuntimeError("the watcher has not started")
        self._await_late_events()
        self._kernel_log.stop()  # the kernel logs a kill before the engine's die: all of them are in by now
        deadline = time.monotonic() + _JOIN_BUDGET_S
        with self._lock:
            self._stopping = True
            streams = [t.stream for t in self._tracked.values() if t.stream is not None]
        if self._events is not None:
            _cancel(self._events)
        for stream in streams:
            _cancel(stream)
        with self._poll:
            self._poll_stop = True
            self._poll.notify_all()
        if self._events_thread is not None:
            self._events_thread.join(max(0.0, deadline - time.monotonic()))
        self._attach_queue.put(None)
        if self._attach_thread is not None:
            self._attach_thread.join(max(0.0, deadline - time.monotonic()))
        if self._poll_thread is not None:
            self._poll_thread.join(max(0.0, deadline - time.monotonic()))
        # The event and attach threads are done, so no container can be attached any more: the list is final.
        with self._lock:
            tracked = list(self._tracked.values())
        if self._poll_thread is None or not self._poll_thread.is_alive():
            for item in tracked:
                self._read_cgroup_once(item, final=True)  # once more at stop
        threads = [t.thread for t in tracked if t.thread is not None]
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        alive = [
            thread.name
            for thread in [self._events_thread, self._attach_thread, self._poll_thread, *threads]
            if thread is not None and thread.is_alive()
        ]
        if alive:
            self._problem(f"watch threads still running after stop: {', '.join(alive)}")
        self._read_final_states()
        self._result = self._summarise(time.monotonic())
        return self._result

    def _event_filters(self) -> dict[str, Any]:
        return {"type": "container", "label": f"{PROJECT_LABEL}={self._project}", "event": list(EVENT_ACTIONS)}

    def _await_late_events(self) -> None:
        """Read the engine's events up to GRACE_S past now from a stream the engine closes itself."""
        stop_wall = time.time()
        since = max(self._started_wall, stop_wall - TAIL_LOOKBACK_S)
        try:
            tail = self._client.events(
                decode=True, since=f"{since:.9f}", until=f"{stop_wall + GRACE_S:.9f}", filters=self._event_filters()
            )
        except Exception as exc:
            self._problem(f"events after the stop instant could not be awaited: {exc}")
            return
        done = threading.Event()
        failure: list[str] = []

        def read_tail() -> None:
            try:
                for event in tail:
                    self._account(event, attach=False)
                done.set()  # the engine closed the stream at `until`: everything up to then was delivered
            except Exception as exc:
                failure.append(str(exc))
            finally:
                _release(tail)

        thread = threading.Thread(target=read_tail, name=f"stackprobe-events-tail-{self._project}", daemon=True)
        thread.start()
        thread.join(GRACE_S + 0.5)
        if thread.is_alive():
            _cancel(tail)
            thread.join(0.2)
        self._tail_complete = done.is_set()
        if not self._tail_complete:
            why = f" ({failure[0]})" if failure else ""
            self._problem(
                f"the engine did not confirm its events up to {GRACE_S:g} s after the stop{why}: a late OOM kill "
                "or death may be missing"
            )

    def _attach(self, container_id: str, *, ran_before_watch: bool = False) -> None:
        """Start watching one container unless it is already streamed or out of scope."""
        with self._lock:
            known = self._tracked.get(container_id)
            if self._stopping or (known is not None and known.thread is not None and known.thread.is_alive()):
                return
        try:
            attrs = self._client.api.inspect_container(container_id)
        except docker.errors.NotFound:
            return  # gone again before we looked
        labels = (attrs.get("Config") or {}).get("Labels") or {}
        service = labels.get(SERVICE_LABEL, "")
        if self._services is not None and service not in self._services:
            return
        name = (attrs.get("Name") or container_id[:12]).lstrip("/")
        limit = (attrs.get("HostConfig") or {}).get("Memory") or None
        try:
            stream = _open_stats_stream(self._client.api, container_id)
        except docker.errors.NotFound:
            return
        new = False
        with self._lock:
            if self._stopping:
                _release(stream)
                return
            tracked = self._tracked.get(container_id)
            if tracked is None:
                series = StatsSeries(container_id, name, service, limit)
                tracked = _Tracked(
                    series=series,
                    restart_count_at_attach=int(attrs.get("RestartCount") or 0),
                    # Only a running container's counters can hold kills from before the watch.
                    ran_before_watch=ran_before_watch and bool((attrs.get("State") or {}).get("Running")),
                )
                self._tracked[container_id] = tracked
                new = True
            elif tracked.thread is not None and tracked.thread.is_alive():
                _release(stream)  # the listing and a start event raced here: one stream is enough
                return
            tracked.stream = stream
            tracked.thread = threading.Thread(
                target=self._read_stats, args=(tracked, stream), name=f"stackprobe-stats-{name}", daemon=True
            )
            tracked.thread.start()
        if new:
            self._locate_cgroup(tracked, attrs)
            if tracked.cgroup.host is not None:
                self._read_cgroup_once(tracked)  # the first reading now: the baseline of a running container
            self._wake_poller()

    def _locate_cgroup(self, tracked: _Tracked, attrs: Mapping[str, Any]) -> None:
        """Find how to read a container's cgroup: the host's tree, else `cat` inside it; needs it running."""
        state = attrs.get("State") or {}
        watch = tracked.cgroup
        if not state.get("Running"):
            with self._poll:
                watch.resolve_wanted = False  # the next start event asks again
            return
        host = cgroup.locate_on_host(
            int(state.get("Pid") or 0), container_id=str(attrs.get("Id") or ""), version=self._cgroup_version
        )
        exec_read: FileReader | None = None
        why: str | None = None
        if host is None:
            try:
                container = self._client.containers.get(str(attrs.get("Id")))
                exec_read = cgroup.exec_reader(cgroup.container_cat(container))
            except docker.errors.APIError as exc:
                why = f"not visible on this host and no exec: {exc}"
        with self._poll:
            watch.host = host
            watch.exec_read = exec_read
            watch.version = host.version if host is not None else self._cgroup_version
            watch.why_unreadable = why
            watch.resolve_wanted = False
            watch.next_at = 0.0

    def _poll_cgroups(self) -> None:
        """Read every container's cgroup on its schedule, until stop; woken early by oom and start events."""
        try:
            while True:
                with self._poll:
                    if self._poll_stop:
                        return
                    now = time.monotonic()
                    with self._lock:
                        tracked = list(self._tracked.values())
                    if any(t.cgroup.resolve_wanted or t.cgroup.next_at <= now for t in tracked):
                        due = [t for t in tracked if t.cgroup.resolve_wanted or t.cgroup.next_at <= now + ALIGN_S]
                    else:
                        wake = min((t.cgroup.next_at for t in tracked), default=now + POLL_S)
                        self._poll.wait(max(0.0005, min(wake - now, POLL_S)))
                        continue
                for item in due:
                    if item.cgroup.resolve_wanted:
                        self._resolve(item)
                    self._read_cgroup_once(item)
        except Exception as exc:  # a broken poller must cost the kernel's figures, never the run
            self._problem(f"cgroup reading stopped: {exc}")

    def _resolve(self, tracked: _Tracked) -> None:
        """Inspect a container again to find its cgroup (it was not running when first seen)."""
        try:
            attrs = self._client.api.inspect_container(tracked.series.container_id)
        except docker.errors.APIError:
            with self._poll:
                tracked.cgroup.resolve_wanted = False
            return
        self._locate_cgroup(tracked, attrs)

    def _read_cgroup_once(self, tracked: _Tracked, *, final: bool = False) -> None:
        """Read one container's memory counters once and schedule its next reading."""
        watch = tracked.cgroup
        with self._poll:
            host, exec_read, version = watch.host, watch.exec_read, watch.version
        read: FileReader | None = host.read if host is not None else exec_read
        if final and host is None:
            read = None  # an exec per file is too slow for stop(); the last periodic reading stands
        at = time.monotonic()
        counters: MemoryCounters | None = None
        if read is not None:
            counters = _read_counters(read, version, check_populated=host is not None)
        with self._poll:
            if read is not None:
                watch.last_read_at = at
                if counters is None:
                    watch.log.fail("the memory cgroup could not be read")
                else:
                    watch.log.add(counters, at)
                    if version is None:
                        watch.version = counters.version
            now = time.monotonic()
            if watch.burst_until > now and host is not None:
                watch.next_at = now + BURST_STEP_S
            else:
                watch.next_at = now + (POLL_S if host is not None else EXEC_POLL_S)

    def _wake_poller(self) -> None:
        with self._poll:
            self._poll.notify_all()

    def _on_event(self, record: ContainerEvent, arrived: float) -> None:
        """Let the cgroup reading react to an event: read at once, and closely after an oom."""
        with self._lock:
            tracked = self._tracked.get(record.container_id)
        if tracked is None:
            return
        watch = tracked.cgroup
        with self._poll:
            soon = 0.0 if watch.host is not None else min(watch.next_at, watch.last_read_at + EXEC_MIN_GAP_S)
            if record.action == "oom":
                watch.burst_until = arrived + BURST_S
                watch.next_at = soon
            elif record.action == "start":
                # The host's path stays the container's across restarts; an exec reader gave up while the
                # container was stopped, so it is made anew.
                if watch.host is None:
                    watch.resolve_wanted = True
                watch.next_at = soon
            elif record.action == "die":
                watch.log.cut(arrived)
            self._poll.notify_all()

    def _read_stats(self, tracked: _Tracked, stream: CancellableStream) -> None:
        """Record samples from one container's stats stream until it ends or is closed."""
        series = tracked.series
        try:
            for sample in stream:
                at = time.monotonic()
                with self._lock:
                    if self._stopping:
                        break
                    point = series.add(sample, at)
                    if point is None:
                        continue
                    self._latest[series.service] = Snapshot(
                        service=series.service,
                        container=series.name,
                        t=at - self.t0,
                        memory_bytes=point.memory_bytes,
                        limit_bytes=series.limit_bytes,
                        cpu_percent=point.cpu_percent,
                    )
                    latest = dict(self._latest)
                    self._sampled.notify_all()
                self._notify(latest)
        except Exception as exc:  # a broken stream must end this thread, never the run
            if not self._stopping:
                self._problem(f"stats stream of {series.name} failed: {exc}")
        finally:
            _release(stream)

    def _read_events(self) -> None:
        """Account the project's events, and attach containers that start, until the stream is closed."""
        assert self._events is not None
        try:
            for event in self._events:
                self._account(event, attach=True)
        except Exception as exc:
            if not self._stopping:
                self._events_failed = True
                self._problem(f"event stream failed: {exc}")
        finally:
            _release(self._events)
        if not self._stopping:
            self._events_failed = True
            self._problem("event stream ended before the watch stopped; OOM kills and restarts may be missing")

    def _account(self, event: Mapping[str, Any], *, attach: bool) -> None:
        """Account one event from either stream; attach a container that started."""
        arrived = time.monotonic()
        at = event["timeNano"] / 1e9 - self._wall_minus_monotonic if "timeNano" in event else arrived
        with self._lock:
            record = self._accounting.add(event, at, arrived)
        if record is None:
            return
        self._on_event(record, arrived)
        if attach and record.action == "start":
            # A container that Compose created anew (or one restarted after its stream ended).
            self._attach_queue.put(record)

    def _attach_started(self) -> None:
        """Attach the containers the event thread saw start, until stop() sends None."""
        while (record := self._attach_queue.get()) is not None:
            self._attach_or_note(record)

    def _attach_or_note(self, record: ContainerEvent) -> None:
        """Attach a container that started; a failure costs its samples, never the event accounting."""
        try:
            self._attach(record.container_id)
        except Exception as exc:  # engine errors and connection errors (requests') alike
            self._problem(f"stats of {record.container} could not be streamed: {exc}")

    def _notify(self, latest: Mapping[str, Snapshot]) -> None:
        """Hand the latest figures to the progress callback, which must never break the watch."""
        if self._on_sample is None:
            return
        try:
            self._on_sample(latest)
        except Exception:
            log.exception("progress callback failed")

    def _problem(self, text: str) -> None:
        """Record something that makes the watch's figures incomplete."""
        log.warning("%s", text)
        with self._lock:
            self._problems.append(text)

    def _read_final_states(self) -> None:
        """Inspect each container once more: restarts whose events were missed, and how a last death ended."""
        deadline = time.monotonic() + 0.5
        for container_id, tracked in list(self._tracked.items()):
            if time.monotonic() > deadline:
                self._problem("containers' final state not read for every container: the engine answered slowly")
                return
            try:
                attrs = self._client.api.inspect_container(container_id)
            except docker.errors.NotFound:
                continue
            except docker.errors.APIError as exc:
                self._problem(f"final state of {tracked.series.name} not read: {exc}")
                continue
            state = attrs.get("State") or {}
            tracked.restart_count_at_stop = int(attrs.get("RestartCount") or 0)
            exit_code = state.get("ExitCode")
            tracked.final = FinalState(
                running=bool(state.get("Running")),
                exit_code=int(exit_code) if exit_code is not None else None,
                oom_killed=bool(state.get("OOMKilled")),
                restart_count=tracked.restart_count_at_stop,
            )

    def _summarise(self, stopped_at: float) -> WatchResult:
        """Reduce everything recorded into per-container and per-service summaries on the run's time axis."""
        t0 = self.t0
        accounting = self._accounting
        problems: dict[str, list[str]] = {}
        by_service: dict[str, list[ContainerSummary]] = {}
        for tracked in self._tracked.values():
            summary = summarise_container(
                tracked,
                accounting.by_container.get(tracked.series.container_id, []),
                t0=t0,
                load_marked=self._load_marked,
                problems=problems.setdefault(tracked.series.service, []),
                kernel_oom_kills=self._kernel_log.kills_for(tracked.series.container_id),
            )
            by_service.setdefault(summary.service, []).append(summary)
        services = set(by_service) | set(accounting.oom_events) | set(accounting.restarts)
        summaries: dict[str, ServiceSummary] = {}
        for service in sorted(services):
            containers = by_service.get(service, [])
            found = problems.setdefault(service, [])
            if not containers and accounting.oom_events.get(service):
                found.append(f"service {service}: oom events of containers never watched, counted as OOM kills")
            summaries[service] = summarise_service(
                service,
                containers,
                t0,
                event_restarts=accounting.restarts.get(service, 0),
                unwatched_oom_events=accounting.oom_events.get(service, 0) if not containers else 0,
                problems=found,
            )
        events = tuple(_on_axis(e, at - t0) for at, e in sorted(accounting.events, key=lambda pair: pair[0]))
        assert self._started_at is not None
        sources = sorted({s.oom_kills_source for s in summaries.values() if s.oom_kills_source})
        return WatchResult(
            services=summaries,
            events=events,
            oom_kills=sum(s.oom_kills for s in summaries.values()),
            restarts=sum(s.restarts for s in summaries.values()),
            sample_count=sum(len(t.series.points) for t in self._tracked.values()),
            duration_s=stopped_at - self._started_at,
            problems=tuple(self._problems + [text for service in sorted(problems) for text in problems[service]]),
            oom_events=sum(accounting.oom_events.values()),
            oom_kills_source="; ".join(sources),
            events_cover_window=not self._events_failed and self._tail_complete,
            load_ended_t=None if self._load_ended_at is None else self._load_ended_at - t0,
            watch_problems=tuple(self._problems),
        )


def summarise_container(
    tracked: _Tracked,
    events: Sequence[SeenEvent],
    *,
    t0: float,
    load_marked: bool,
    problems: list[str],
    kernel_oom_kills: Sequence[float] = (),
) -> ContainerSummary:
    """Reduce one container's samples, cgroup readings and events; append what is incomplete to problems.

    kernel_oom_kills: the monotonic times the kernel's log charged an OOM kill to its cgroup (account_incarnations).
    """
    series = tracked.series
    watch = tracked.cgroup
    points = series.points
    memory = [p.memory_bytes for p in points]
    idle = [p.memory_bytes for p in points if p.at < t0]
    incarnations = account_incarnations(
        watch.log,
        events,
        t0=t0,
        reset_at=watch.reset_at,
        limit_bytes=series.limit_bytes,
        ran_before_watch=tracked.ran_before_watch,
        final=tracked.final,
        same_clock=watch.source != CGROUP_SOURCE_EXEC,
        kernel_oom_kills=kernel_oom_kills,
    )
    oom_events = sum(1 for seen in events if seen.event.action == "oom")
    cgroup_read = bool(watch.log.runs)
    version = watch.version
    label = f"{series.name} (service {series.service})"

    # Peak: the kernel's high-water mark over the incarnations alive during the load.
    in_window = [i for i in incarnations if i.in_load_window and i.peak_kernel_bytes is not None]
    peak_kernel = max((i.peak_kernel_bytes for i in in_window), default=None)  # type: ignore[type-var]
    # Over the same window as the kernel's: the load's samples (all of them when there are none yet).
    loaded = [p.memory_bytes for p in points if p.at >= t0] or memory
    peak_sampled = max(loaded) if loaded else None
    recovered_peak = any(i.oom_kills_recovered for i in in_window)
    if peak_kernel is not None:
        peak = peak_kernel
        peak_source = _kernel_peak_source(version, in_window, load_marked, watch, recovered_peak)
    else:
        peak = peak_sampled
        peak_source = _sampled_peak_source(cgroup_read, version, watch) if peak_sampled is not None else ""

    # OOM kills: the kernel's counter, PID-1 kills recovered from die events, else the engine's events.
    oom_kills = sum(i.oom_kills for i in incarnations)
    recovered = sum(i.oom_kills_recovered for i in incarnations)
    if not cgroup_read:
        oom_kills = max(oom_kills, oom_events)
        why = watch.why_unreadable or watch.log.last_error or "no reading succeeded"
        oom_source = f"the engine's oom events (the cgroup could not be read: {why})"
        problems.append(
            f"cgroup of {label} could not be read ({why}): its peak is the sampled one and its OOM kills are "
            "the engine's oom events"
        )
    else:
        oom_source = _kernel_kills_source(version, watch.source, recovered)
        for item in incarnations:
            if item.oom_kills_from_events:
                when = "before the watch" if item.started_t is None else f"from t={item.started_t:.1f} s"
                problems.append(
                    f"cgroup of {label} was not read during its run {when}: its {item.oom_kills} OOM kill(s) "
                    "there are the engine's oom events or the kernel log's oom-kill lines"
                )
    if not points:
        problems.append(f"no docker stats sample of {label}: its CPU and its sampled memory are missing")

    frozen = [i.frozen_at for i in incarnations if i.frozen_at is not None]
    restarts_inspect = (
        max(0, tracked.restart_count_at_stop - tracked.restart_count_at_attach)
        if tracked.restart_count_at_stop is not None
        else 0
    )
    event_restarts = _restarts_from_events(events)
    return ContainerSummary(
        name=series.name,
        service=series.service,
        container_id=series.container_id,
        t=tuple(p.at - t0 for p in points),
        memory_bytes=tuple(memory),
        cpu_percent=tuple(p.cpu_percent for p in points),
        limit_bytes=series.limit_bytes,
        sampled=bool(points),
        peak_memory_bytes=peak,
        peak_source=peak_source,
        peak_kernel_bytes=peak_kernel,
        peak_sampled_bytes=peak_sampled,
        peak_reset=watch.reset_at is not None,
        # Idle is measured before the load; without such samples the first sample is the best proxy.
        idle_memory_bytes=int(statistics.median(idle)) if idle else (memory[0] if memory else None),
        cgroup_version=version,
        cgroup_source=watch.source if cgroup_read else None,
        cgroup_read=cgroup_read,
        oom_kills=oom_kills,
        oom_kills_source=oom_source,
        oom_events=oom_events,
        frozen_at=min(frozen) if frozen else None,
        # Events can be missed (a stream cut) and RestartCount forgets a removed container: trust the larger.
        restarts=max(event_restarts, restarts_inspect),
        throttled_periods=series.throttled_periods.total,
        throttled_seconds=series.throttled_ns.total / 1e9,
        running_at_stop=None if tracked.final is None else tracked.final.running,
        incarnations=tuple(incarnations),
    )


def summarise_service(
    service: str,
    containers: Sequence[ContainerSummary],
    t0: float,
    *,
    event_restarts: int = 0,
    unwatched_oom_events: int = 0,
    problems: Sequence[str] = (),
) -> ServiceSummary:
    """Merge the containers of one service: peaks are the largest, counts are summed, CPU is summed in time.

    event_restarts: the service's restarts counted from events (used when larger than its containers' sum,
    e.g. for a container removed before it could be inspected); unwatched_oom_events: oom events of a
    service none of whose containers could be watched, counted as kills for want of anything better;
    problems: what makes the service's figures incomplete.
    """
    ordered = sorted(containers, key=lambda c: c.name)
    merged = aggregate_series([list(zip(c.t, c.memory_bytes, c.cpu_percent, strict=True)) for c in ordered])
    memory = [m for _, m, _ in merged]
    idle = [m for t, m, _ in merged if t < 0]
    loaded = [cpu for t, _, cpu in merged if t >= 0] or [cpu for _, _, cpu in merged]
    limits = {c.limit_bytes for c in ordered}
    kernel = [c.peak_kernel_bytes for c in ordered if c.peak_kernel_bytes is not None]
    sampled = [c.peak_sampled_bytes for c in ordered if c.peak_sampled_bytes is not None]
    best = [c for c in ordered if c.peak_memory_bytes is not None]
    top = max(best, key=lambda c: c.peak_memory_bytes or 0) if best else None
    frozen = [c.frozen_at for c in ordered if c.frozen_at is not None]
    sources = sorted({c.oom_kills_source for c in ordered})
    if not ordered and unwatched_oom_events:
        sources = ["the engine's oom events (no container of the service could be watched)"]
    return ServiceSummary(
        service=service,
        containers=tuple(ordered),
        t=tuple(t for t, _, _ in merged),
        memory_bytes=tuple(memory),
        cpu_percent=tuple(cpu for _, _, cpu in merged),
        # Containers of one service share its limit; if they disagree, no single limit can be reported.
        limit_bytes=limits.pop() if len(limits) == 1 else None,
        peak_memory_bytes=top.peak_memory_bytes if top is not None else None,
        peak_source=top.peak_source if top is not None else "",
        peak_kernel_bytes=max(kernel) if kernel else None,
        peak_sampled_bytes=max(sampled) if sampled else None,
        idle_memory_bytes=int(statistics.median(idle)) if idle else (memory[0] if memory else None),
        peak_cpu_percent=max(loaded) if loaded else None,
        avg_cpu_percent=statistics.fmean(loaded) if loaded else None,
        throttled_periods=sum(c.throttled_periods for c in ordered) if ordered else None,
        throttled_seconds=sum(c.throttled_seconds for c in ordered) if ordered else None,
        oom_kills=sum(c.oom_kills for c in ordered) + (unwatched_oom_events if not ordered else 0),
        oom_kills_source="; ".join(sources),
        oom_events=sum(c.oom_events for c in ordered) + (unwatched_oom_events if not ordered else 0),
        frozen_at=min(frozen) if frozen else None,
        restarts=max(sum(c.restarts for c in ordered), event_restarts),
        sampled=bool(ordered) and all(c.sampled for c in ordered),
        cgroup_read=bool(ordered) and all(c.cgroup_read for c in ordered),
        problems=tuple(problems),
    )


def aggregate_series(
    containers: Sequence[Sequence[tuple[float, int, float]]], hold_s: float = HOLD_S
) -> list[tuple[float, int, float]]:
    """Merge containers' (t, memory bytes, CPU percent) samples into one service series.

    At each sample time of any container: memory is the largest and CPU the sum over the containers whose
    latest sample is at most hold_s old. One container's series comes back unchanged.
    """
    present = [series for series in containers if series]
    if len(present) <= 1:
        return list(present[0]) if present else []
    merged = sorted((sample[0], index, sample) for index, series in enumerate(present) for sample in series)
    latest: dict[int, tuple[float, int, float]] = {}
    out: list[tuple[float, int, float]] = []
    for t, index, sample in merged:
        latest[index] = sample
        live = [s for s in latest.values() if t - s[0] <= hold_s]
        out.append((t, max(s[1] for s in live), sum(s[2] for s in live)))
    return out


def _restarts_from_events(events: Sequence[SeenEvent]) -> int:
    """Count one container's restarts from its events, as EventAccounting does for a service."""
    accounting = EventAccounting()
    for seen in sorted(events, key=lambda s: s.at):
        accounting._count_restart(seen.event.container_id, "", seen.event.action)
    return accounting.restarts.get("", 0)


def _memory_counter_names(version: int | None) -> tuple[str, str]:
    if version == 2:
        return "cgroup v2 memory.peak", "cgroup v2 memory.events"
    return "cgroup v1 memory.max_usage_in_bytes", "cgroup v1 memory.oom_control"


def _kernel_peak_source(
    version: int | None, used: Sequence[Incarnation], load_marked: bool, watch: _CgroupWatch, recovered: bool
) -> str:
    """Name the kernel counter a peak came from and the window it covers."""
    counter, _ = _memory_counter_names(version)
    text = f"{counter}, the kernel's high-water mark (page cache included), "
    if load_marked and all(i.peak_since_load for i in used):
        text += "since the load started"
    elif version == 2:
        text += "since the container started (memory.peak cannot be reset)"
    elif watch.reset_error is not None:
        text += f"since the container started (the mark could not be reset: {watch.reset_error})"
    elif watch.host is None:
        text += "since the container started (read by exec inside it, the mark cannot be reset)"
    elif not load_marked:
        text += "since the container started (the load's start was not marked)"
    else:
        text += "since the container started"
    if recovered:
        text += "; the limit where PID 1 was OOM-killed before a read could show it"
    return text


def _sampled_peak_source(cgroup_read: bool, version: int | None, watch: _CgroupWatch) -> str:
    """Name the sampled peak's source and why the kernel's was not used."""
    text = "docker stats samples (usage less inactive page cache, about one a second)"
    if not cgroup_read:
        return text + ": the cgroup could not be read"
    if version == 2:
        return text + ": this kernel has no memory.peak (it came in Linux 5.19)"
    return text + ": the cgroup gave no high-water mark during the load"


def _kernel_kills_source(version: int | None, source: str | None, recovered: int) -> str:
    """Name the kernel counter OOM kills came from, and the kills recovered from die events."""
    _, counter = _memory_counter_names(version)
    where = "by exec inside the container" if source == CGROUP_SOURCE_EXEC else "from the host"
    text = f"the kernel's oom_kill counter ({counter}, read {where})"
    if recovered:
        text += (
            f", plus {recovered} PID-1 kill{'s' if recovered != 1 else ''} recovered from die events (exit 137 "
            "with an oom event) that the counter could not show before the cgroup was removed"
        )
    return text


def _read_counters(read: FileReader, version: int | None, *, check_populated: bool) -> MemoryCounters | None:
    """Read memory counters for a known version, or try v1 then v2 when the engine did not say."""
    if version is not None:
        return cgroup.read_memory_counters(read, version, check_populated=check_populated)
    for guess in (1, 2):
        counters = cgroup.read_memory_counters(read, guess, check_populated=check_populated)
        if counters is not None:
            return counters
    return None


def _cgroup_version(info: Mapping[str, Any]) -> int | None:
    """Return CgroupVersion from `docker info` as 1 or 2, or None."""
    try:
        version = int(info.get("CgroupVersion"))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return version if version in (1, 2) else None


def _on_axis(event: ContainerEvent, t: float) -> ContainerEvent:
    """Return the event with its time set on the run's axis."""
    return dataclasses.replace(event, t=t)


def _open_stats_stream(api: docker.APIClient, container_id: str) -> CancellableStream:
    """Open a container's stats stream in a form another thread can close."""
    # APIClient.stats() hides its HTTP response inside a generator, so a thread blocked reading it could
    # not be woken. This sends the same request and wraps it the way APIClient.events() does.
    response = api._get(
        api._url("/containers/{0}/stats", container_id), params={"stream": True}, stream=True, timeout=None
    )
    try:
        api._raise_for_status(response)
    except Exception:
        response.close()
        raise
    return CancellableStream(api._stream_helper(response, decode=True), response)


def _cancel(stream: CancellableStream) -> None:
    """Shut a stream's socket so the thread blocked reading it wakes up; safe from any thread."""
    try:
        stream.close()
    except Exception:  # already closed, or the socket went away with the engine
        log.debug("cancelling a stream failed", exc_info=True)


def _release(stream: CancellableStream) -> None:
    """Cancel a stream and free its HTTP response; only the thread that reads the stream calls this."""
    _cancel(stream)
    stream._response.close()
