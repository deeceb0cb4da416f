"""Watch the containers of one Compose project: stats samples, OOM kills, deaths and restarts.

One thread per container reads the engine's stats stream (about one sample a second) and one thread
reads the engine's event stream. Every time is kept on the time.monotonic() clock and reported as
seconds since t0, the run's load start, so samples, events and the load share one axis.
"""

from __future__ import annotations

import dataclasses
import logging
import statistics
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import docker
from docker.types.daemon import CancellableStream

from stackprobe import metrics

log = logging.getLogger(__name__)

PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"
# The container actions the report keeps; the engine sends many more (exec_*, health_status, ...).
EVENT_ACTIONS = ("oom", "die", "restart", "start")
# A stats sample of a container that is not running carries this zero time and no memory figures.
_ZERO_TIME = "0001-01-01T00:00:00Z"
_JOIN_BUDGET_S = 1.5


@dataclass(frozen=True)
class ContainerEvent:
    """One engine event about a watched container, on the run's time axis."""

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
    """Turn engine events into the report's event list, OOM kill counts and restart counts."""

    def __init__(self, services: frozenset[str] | None = None) -> None:
        self.services = services
        self.events: list[tuple[float, ContainerEvent]] = []  # (monotonic time, event with t unset)
        self.oom_kills: dict[str, int] = {}
        self.restarts: dict[str, int] = {}
        # Per container: "died" after a die, "restarted" once the start that follows it was counted.
        self._phase: dict[str, str] = {}

    def add(self, event: Mapping[str, Any], at: float) -> ContainerEvent | None:
        """Account one decoded event that happened at monotonic time `at`; return it if it is kept."""
        action = event.get("Action") or event.get("status") or ""
        actor = event.get("Actor") or {}
        attributes = actor.get("Attributes") or {}
        service = attributes.get(SERVICE_LABEL, "")
        if event.get("Type", "container") != "container" or action not in EVENT_ACTIONS:
            return None
        if self.services is not None and service not in self.services:
            return None
        container_id = actor.get("ID") or event.get("id") or ""
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
        if action == "oom":
            # One oom event per kill, whether the victim was PID 1 (a die follows) or a worker (none does).
            self.oom_kills[service] = self.oom_kills.get(service, 0) + 1
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


@dataclass(frozen=True)
class ServiceSummary:
    """What the watch saw of one service: its series and the figures the report takes from them."""

    service: str
    containers: tuple[str, ...]
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

    @property
    def peak_ratio(self) -> float | None:
        """Return peak memory over the limit, or None without a limit or samples."""
        if self.peak_memory_bytes is None or not self.limit_bytes:
            return None
        return self.peak_memory_bytes / self.limit_bytes


@dataclass(frozen=True)
class WatchResult:
    """Everything a watch recorded, on the run's time axis."""

    services: dict[str, ServiceSummary]
    events: tuple[ContainerEvent, ...]
    oom_kills: int
    restarts: int
    sample_count: int
    duration_s: float
    problems: tuple[str, ...] = field(default_factory=tuple)

    def memory_section(self, service: str) -> dict[str, Any]:
        """Return the report's "memory" object for one service."""
        summary = self.services.get(service)
        if summary is None:
            return {"peak_bytes": None, "limit_bytes": None, "peak_ratio": None, "idle_bytes": None}
        return {
            "peak_bytes": summary.peak_memory_bytes,
            "limit_bytes": summary.limit_bytes,
            "peak_ratio": summary.peak_ratio,
            "idle_bytes": summary.idle_memory_bytes,
        }

    def cpu_section(self, service: str) -> dict[str, Any]:
        """Return the report's "cpu" object for one service."""
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
        """Return the report's "series.containers" object, one entry per service."""
        return {
            name: {
                "t": [round(t, 3) for t in summary.t],
                "memory_bytes": list(summary.memory_bytes),
                "limit_bytes": summary.limit_bytes,
                "cpu_percent": [round(cpu, 2) for cpu in summary.cpu_percent],
            }
            for name, summary in self.services.items()
        }


@dataclass
class _Tracked:
    """One watched container: its series, its stats stream and the thread reading it."""

    series: StatsSeries
    restart_count_at_attach: int
    stream: CancellableStream | None = None
    thread: threading.Thread | None = None
    restart_count_at_stop: int | None = None


class Watcher:
    """Watch the containers of one Compose project until stopped; use as a context manager."""

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
        self._accounting = EventAccounting(self._services)
        self._tracked: dict[str, _Tracked] = {}
        self._latest: dict[str, Snapshot] = {}
        self._problems: list[str] = []
        self._events: CancellableStream | None = None
        self._events_thread: threading.Thread | None = None
        self._wall_minus_monotonic = 0.0
        self._started_at: float | None = None
        self._stopping = False
        self._result: WatchResult | None = None

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
        """Subscribe to the project's events, then start streaming stats of its running containers."""
        if self._started_at is not None:
            raise RuntimeError("a watcher starts once")
        now_wall, now = time.time(), time.monotonic()
        self._wall_minus_monotonic = now_wall - now
        self._started_at = now
        if self._t0 is None:
            self._t0 = now
        # Subscribe before listing: a container that starts in between is then both listed and announced
        # by an event (attaching twice is harmless), never missed. `since` replays what the engine logged
        # between this instant and the subscription.
        self._events = self._client.events(
            decode=True,
            since=f"{now_wall:.9f}",
            filters={"type": "container", "label": f"{PROJECT_LABEL}={self._project}", "event": list(EVENT_ACTIONS)},
        )
        self._events_thread = threading.Thread(
            target=self._read_events, name=f"stackprobe-events-{self._project}", daemon=True
        )
        self._events_thread.start()
        try:
            for container in self._client.containers.list(filters={"label": f"{PROJECT_LABEL}={self._project}"}):
                self._attach(container.id)
        except Exception:
            self.stop()  # leave no thread or stream behind when the engine fails us half-way
            raise

    def mark_load_start(self, at: float | None = None) -> None:
        """Set t0, the load's start on the monotonic clock (now by default); earlier samples are idle."""
        self._t0 = time.monotonic() if at is None else at

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
        """Return the latest sample of each service."""
        with self._lock:
            return dict(self._latest)

    def events_so_far(self) -> list[ContainerEvent]:
        """Return the events recorded until now, on the run's time axis."""
        with self._lock:
            recorded = list(self._accounting.events)
        return [_on_axis(event, at - self.t0) for at, event in sorted(recorded, key=lambda pair: pair[0])]

    def stop(self) -> WatchResult:
        """Close every stream, join every thread and return what was recorded; safe to call twice."""
        if self._result is not None:
            return self._result
        if self._started_at is None:
            raise RuntimeError("the watcher has not started")
        deadline = time.monotonic() + _JOIN_BUDGET_S
        with self._lock:
            self._stopping = True
            streams = [t.stream for t in self._tracked.values() if t.stream is not None]
        if self._events is not None:
            _cancel(self._events)
        for stream in streams:
            _cancel(stream)
        if self._events_thread is not None:
            self._events_thread.join(max(0.0, deadline - time.monotonic()))
        # The event thread is done, so no container can be attached any more: the list is final.
        with self._lock:
            threads = [t.thread for t in self._tracked.values() if t.thread is not None]
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        alive = [thread.name for thread in [self._events_thread, *threads] if thread and thread.is_alive()]
        if alive:
            self._problem(f"watch threads still running after stop: {', '.join(alive)}")
        self._read_restart_counts()
        self._result = self._summarise(time.monotonic())
        return self._result

    def _attach(self, container_id: str) -> None:
        """Start streaming stats of one container unless it is already streamed or out of scope."""
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
        with self._lock:
            if self._stopping:
                _release(stream)
                return
            tracked = self._tracked.get(container_id)
            if tracked is None:
                series = StatsSeries(container_id, name, service, limit)
                tracked = _Tracked(series=series, restart_count_at_attach=int(attrs.get("RestartCount") or 0))
                self._tracked[container_id] = tracked
            elif tracked.thread is not None and tracked.thread.is_alive():
                _release(stream)  # the listing and a start event raced here: one stream is enough
                return
            tracked.stream = stream
            tracked.thread = threading.Thread(
                target=self._read_stats, args=(tracked, stream), name=f"stackprobe-stats-{name}", daemon=True
            )
            tracked.thread.start()

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
                at = event["timeNano"] / 1e9 - self._wall_minus_monotonic if "timeNano" in event else time.monotonic()
                with self._lock:
                    record = self._accounting.add(event, at)
                if record is not None and record.action == "start":
                    # A container that Compose created anew (or one restarted after its stream ended).
                    self._attach_or_note(record)
        except Exception as exc:
            if not self._stopping:
                self._problem(f"event stream failed: {exc}")
        finally:
            _release(self._events)
        if not self._stopping:
            self._problem("event stream ended before the watch stopped; OOM kills and restarts may be missing")

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

    def _read_restart_counts(self) -> None:
        """Read each container's RestartCount once more; restarts whose events were missed still show."""
        deadline = time.monotonic() + 0.5
        for container_id, tracked in list(self._tracked.items()):
            if time.monotonic() > deadline:
                self._problem("RestartCount not read for every container: the engine answered slowly")
                return
            try:
                attrs = self._client.api.inspect_container(container_id)
            except docker.errors.NotFound:
                continue
            tracked.restart_count_at_stop = int(attrs.get("RestartCount") or 0)

    def _summarise(self, stopped_at: float) -> WatchResult:
        """Reduce everything recorded into per-service summaries on the run's time axis."""
        t0 = self.t0
        by_service: dict[str, list[_Tracked]] = {}
        for tracked in self._tracked.values():
            by_service.setdefault(tracked.series.service, []).append(tracked)
        accounting = self._accounting
        services = set(by_service) | set(accounting.oom_kills) | set(accounting.restarts)
        summaries: dict[str, ServiceSummary] = {}
        for service in sorted(services):
            summaries[service] = _summarise_service(
                service,
                by_service.get(service, []),
                t0,
                oom_kills=accounting.oom_kills.get(service, 0),
                event_restarts=accounting.restarts.get(service, 0),
            )
        events = tuple(_on_axis(e, at - t0) for at, e in sorted(accounting.events, key=lambda pair: pair[0]))
        assert self._started_at is not None
        return WatchResult(
            services=summaries,
            events=events,
            oom_kills=sum(s.oom_kills for s in summaries.values()),
            restarts=sum(s.restarts for s in summaries.values()),
            sample_count=sum(len(t.series.points) for t in self._tracked.values()),
            duration_s=stopped_at - self._started_at,
            problems=tuple(self._problems),
        )


def _summarise_service(
    service: str, tracked: list[_Tracked], t0: float, *, oom_kills: int, event_restarts: int
) -> ServiceSummary:
    """Merge the containers of one service into one summary."""
    points = sorted((p for t in tracked for p in t.series.points), key=lambda p: p.at)
    memory = [p.memory_bytes for p in points]
    idle = [p.memory_bytes for p in points if p.at < t0]
    loaded = [p.cpu_percent for p in points if p.at >= t0] or [p.cpu_percent for p in points]
    limits = {t.series.limit_bytes for t in tracked}
    inspect_restarts = sum(
        max(0, t.restart_count_at_stop - t.restart_count_at_attach)
        for t in tracked
        if t.restart_count_at_stop is not None
    )
    return ServiceSummary(
        service=service,
        containers=tuple(sorted(t.series.name for t in tracked)),
        t=tuple(p.at - t0 for p in points),
        memory_bytes=tuple(memory),
        cpu_percent=tuple(p.cpu_percent for p in points),
        # Containers of one service share its limit; if they disagree, no single limit can be reported.
        limit_bytes=limits.pop() if len(limits) == 1 else None,
        peak_memory_bytes=max(memory) if memory else None,
        # Idle is measured before the load; without such samples the first sample is the best proxy.
        idle_memory_bytes=int(statistics.median(idle)) if idle else (memory[0] if memory else None),
        peak_cpu_percent=max(loaded) if loaded else None,
        avg_cpu_percent=statistics.fmean(loaded) if loaded else None,
        throttled_periods=sum(t.series.throttled_periods.total for t in tracked) if tracked else None,
        throttled_seconds=sum(t.series.throttled_ns.total for t in tracked) / 1e9 if tracked else None,
        oom_kills=oom_kills,
        # Events can be missed (a stream cut) and RestartCount forgets a removed container: trust the larger.
        restarts=max(event_restarts, inspect_restarts),
    )


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
