"""stackprobe's listener in Locust: 1-s windows, Locust's rounding; failures and exceptions with times.

stackprobe passes this file to Locust as one more locustfile (`-f <the user's files>,<this file>`), so it
works beside any locustfile. It runs inside Locust's process: the standard library and locust only,
never stackprobe's own modules (they are not importable there, and must not be gevent-patched).

Two environment variables turn it on; with neither set it records nothing.

STACKPROBE_LOCUST_WINDOWS=<file>
    One JSON line per second of wall clock (epoch seconds), from the test start to the end:
    {"t": 1795807700, "users": 20, "num_requests": 412, "num_failures": 3, "num_none_requests": 0,
     "total_response_time": 1830.2, "max_response_time": 41.7, "p50": 4, "p95": 9, "p99": 20,
     "response_times": {"4": 210, "5": 120, ...}}
    The window [t, t+1) holds the requests Locust logged in it, keyed as Locust keys them (the second of
    `time.time()` when the request event fired, StatsEntry._log_time_of_request). Response times are ms;
    `response_times` is the window's histogram with Locust's own rounding (locust.stats.
    bucket_response_time, looked up at each request so a replaced one is honoured); p50/p95/p99 follow
    Locust's percentile rule (locust.stats.calculate_response_time_percentile) over the requests that
    have a response time (Locust leaves requests with a None response time, num_none_requests, out of
    the histogram and the percentiles); null when none has one. `users` is runner.user_count at the
    window's end (for the last window, the most of that and the count when the test began to stop;
    across seconds Locust's event loop was blocked, the count last seen, which cannot change meanwhile).
    The first line is a header {"format": "stackprobe-locust-windows", ...}. Lines are written about once
    a second, just after each second ends, so memory stays bounded over hours. With --processes the
    workers send their windows to the master with Locust's own reports (every 3 s), and the master
    writes each window a few seconds late; a window that arrives later still is written again with the
    same t (a reader adds such lines up).

STACKPROBE_LOCUST_ERRORS=<file>
    One JSON object, rewritten (atomically) every few seconds while something changed and at quit:
    {"format": "stackprobe-locust-errors", "final": true, "written_at": <epoch>,
     "failures": [{"method", "name", "error", "occurrences", "first_seen", "last_seen"}],
     "exceptions": [{"type", "message", "count", "first_seen", "last_seen", "traceback"}],
     "cpu_warning": bool, "cpu_peak_percent": float | null,
     "exit_code": int | null, "process_exit_code": int | null, "unhandled_exception": bool,
     "test_start": <epoch> | null, "workers": [...]}
    Failures are request events with an exception, grouped and worded as Locust's failures table
    (StatsError.create_key, StatsError.parse_error); exceptions are `user_error` events (exceptions raised
    in tasks), grouped as Locust groups them (by traceback), with the first message, the exception's type
    and the last frames of its traceback. Times are epoch seconds. `cpu_warning` is Locust's own "CPU
    usage above 90%" warning (the cpu_warning event, runner.cpu_warning_emitted, or a worker's);
    `exit_code` is the code Locust exits with (the quit event), `unhandled_exception` Locust's flag for an
    exception it did not expect (a shape's tick, an event handler: exit code 2 unless failures came
    first). "final" is false until Locust quit: a file without it comes from a run that was killed.
    "test_start" is when the test started (the file is rewritten then: a master waits for its workers
    before that). "workers" is empty but on a master: one entry per worker that reported to it,
    {"id", "host", "pid", "requests", "failures", "listener", "cpu_usage_max", "cpu_warning", "missing"}, sorted by
    id. requests and failures add up the worker's own stats reports (Locust's "stats_total" of each
    report, the figures the master adds into its totals); host and pid are the worker's (null when it
    runs without this listener, "listener": false: its requests are then in Locust's totals but not in
    the windows); cpu_usage_max is the highest CPU share Locust's heartbeats gave for it (Locust's own
    monitor: psutil's cpu_percent of the worker process over 10-s intervals, percent of one core; null
    while it reported none above 0, as in its first 20 s), cpu_warning whether it crossed Locust's 90 %,
    missing whether the master lost its heartbeats during the run (Locust's STATE_MISSING: it died or hung).
    "arrivals" is null for the closed model, else the open model's summary (below).

STACKPROBE_ARRIVAL_RATE=<arrivals per second>
    The open model. One arrival is one task run of a user class; arrivals come due on one schedule, R
    a second from the test's start (the k-th at start + k/R), whether or not earlier ones have
    answered. Every user class's wait_time is replaced (the locustfile is not edited): a user that is
    ready for its next task takes the next arrival and sleeps until it is due; its first task waits for
    an arrival after on_start. The run's users are the pool that takes arrivals: while all of them are
    busy (a stall), arrivals that came due wait, and when a user is free it takes the oldest at once.
    An arrival's lateness (start - due) is added to the response time of every request it makes (the
    request events of the user's greenlet until its next wait): the windows' response times, sums,
    maxima and percentiles are measured from when each arrival was due, corrected for coordinated
    omission. Locust's own figures (its stats, --json-file, --csv) stay as sent-to-answered. Each window
    then also holds "arrivals" (arrivals started in it), "lateness_max_ms" and "uncorrected":
    {"total_response_time", "max_response_time", "response_times", "p50", "p95", "p99"} (the same
    requests timed from when they were sent), and the header "arrival_rate". The errors file's
    "arrivals": {"arrival_rate", "load_start", "load_end", "load_s", "started", "due", "waiting_at_end",
    "achieved_rate", "lateness_ms": {"p50", "p95", "p99", "max"}, "workers"}: load_start is the test
    start, load_end when it began to stop (null while it runs), due the arrivals that came due in
    between, waiting_at_end those of them not started, achieved_rate started / load_s. A shape changes
    the pool, not the rate. With --processes (or workers) the master splits the rate at the test's
    start among the workers ready then: worker i of n takes arrivals i, i+n, i+2n, ... (each worker
    needs this listener and the variable, any value: the master's rate is used); a worker lost later
    takes its share with it, which the achieved rate shows. Not paced: a User class that overrides
    run(), and requests made in greenlets a task spawns (they count without lateness).
"""

from __future__ import annotations

import hashlib
import heapq
import json
import logging
import math
import os
import socket
import time
import traceback
import weakref
from collections.abc import Iterator, Mapping
from typing import Any

import gevent
import gevent.event
from locust import TaskSet, User, events
from locust import __version__ as LOCUST_VERSION
from locust import log as locust_log
from locust import runners as locust_runners
from locust import stats as locust_stats
from locust.env import Environment
from locust.user.task import LOCUST_STATE_RUNNING, LOCUST_STATE_STOPPING, LOCUST_STATE_WAITING

WINDOWS_ENV = "STACKPROBE_LOCUST_WINDOWS"
ERRORS_ENV = "STACKPROBE_LOCUST_ERRORS"
RATE_ENV = "STACKPROBE_ARRIVAL_RATE"
WINDOWS_FORMAT = "stackprobe-locust-windows"
ERRORS_FORMAT = "stackprobe-locust-errors"
FORMAT_VERSION = 1
# Key of this listener's data in the reports workers send to the master (--processes).
REPORT_KEY = "stackprobe_listener"
# The master's message telling each worker its share of the arrivals (--processes).
SCHEDULE_MESSAGE = "stackprobe_arrival_schedule"
ERRORS_EVERY_S = 5.0
TRACEBACK_FRAMES = 5
TRACEBACK_CHARS = 3000

logger = logging.getLogger(__name__)


def _percentiles(histogram: Mapping[int, int], timed: int) -> dict[str, Any]:
    """Return p50/p95/p99 by Locust's rule over a histogram of `timed` response times (None when empty)."""
    return {
        name: locust_stats.calculate_response_time_percentile(histogram, timed, q) if timed else None
        for name, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99))
    }


class Window:
    """What completed in one second: counts, response time sum and max, and the rounded histogram.

    Open model: response times count from when each request's arrival was due (its lateness added),
    `uncorrected` holds the same requests timed from when they were sent, and `arrivals` counts the
    arrivals started in the second, `lateness_max` the latest of them (ms).
    """

    __slots__ = (
        "arrivals",
        "lateness_max",
        "max_response_time",
        "num_failures",
        "num_none_requests",
        "num_requests",
        "response_times",
        "total",
        "uncorrected",
    )

    def __init__(self, open_model: bool = False) -> None:
        self.num_requests = 0
        self.num_failures = 0
        self.num_none_requests = 0
        self.total = 0.0
        self.max_response_time: float | None = None
        self.response_times: dict[int, int] = {}
        self.arrivals = 0
        self.lateness_max: float | None = None
        self.uncorrected: Window | None = Window() if open_model else None

    def log(self, response_time: float | None, failed: bool, lateness_ms: float = 0.0) -> None:
        """Count one request as StatsEntry.log and log_error do, timed from when its arrival was due."""
        if self.uncorrected is not None:
            self.uncorrected.log(response_time, failed)
        self.num_requests += 1
        if failed:
            self.num_failures += 1
        if response_time is None:
            self.num_none_requests += 1
            return
        response_time += lateness_ms
        self.total += response_time
        if self.max_response_time is None or response_time > self.max_response_time:
            self.max_response_time = response_time
        # Looked up each time: Locust documents replacing bucket_response_time at runtime.
        bucket = locust_stats.bucket_response_time(response_time)
        self.response_times[bucket] = self.response_times.get(bucket, 0) + 1

    def arrival(self, lateness_ms: float) -> None:
        """Count an arrival started in this second, `lateness_ms` after it was due."""
        self.arrivals += 1
        if self.lateness_max is None or lateness_ms > self.lateness_max:
            self.lateness_max = lateness_ms

    def merge(self, data: Mapping[str, Any]) -> None:
        """Add a window a worker sent (its serialized form)."""
        self.num_requests += int(data["num_requests"])
        self.num_failures += int(data["num_failures"])
        self.num_none_requests += int(data["num_none_requests"])
        self.total += float(data["total_response_time"])
        other_max = data["max_response_time"]
        if other_max is not None and (self.max_response_time is None or other_max > self.max_response_time):
            self.max_response_time = other_max
        for bucket, count in data["response_times"].items():
            self.response_times[int(bucket)] = self.response_times.get(int(bucket), 0) + int(count)
        self.arrivals += int(data.get("arrivals") or 0)
        other_lateness = data.get("lateness_max_ms")
        if other_lateness is not None and (self.lateness_max is None or other_lateness > self.lateness_max):
            self.lateness_max = other_lateness
        uncorrected = data.get("uncorrected")
        if uncorrected is not None:
            if self.uncorrected is None:
                self.uncorrected = Window()
            # Its counts are the window's own: only the times differ.
            self.uncorrected.merge({**uncorrected, "num_requests": 0, "num_failures": 0, "num_none_requests": 0})

    def serialize(self) -> dict[str, Any]:
        """Return the counts and histogram (what a worker sends, and the core of a line)."""
        data: dict[str, Any] = {
            "num_requests": self.num_requests,
            "num_failures": self.num_failures,
            "num_none_requests": self.num_none_requests,
            "total_response_time": self.total,
            "max_response_time": self.max_response_time,
            "response_times": {str(bucket): count for bucket, count in sorted(self.response_times.items())},
        }
        if self.uncorrected is not None:
            data["arrivals"] = self.arrivals
            data["lateness_max_ms"] = self.lateness_max
            data["uncorrected"] = {
                "total_response_time": self.uncorrected.total,
                "max_response_time": self.uncorrected.max_response_time,
                "response_times": {
                    str(bucket): count for bucket, count in sorted(self.uncorrected.response_times.items())
                },
            }
        return data

    def line(self, second: int, users: int) -> dict[str, Any]:
        """Return the window as a line of the windows file, with Locust's percentiles."""
        timed = self.num_requests - self.num_none_requests
        data = {"t": second, "users": users, **self.serialize(), **_percentiles(self.response_times, timed)}
        if self.uncorrected is not None:
            data["uncorrected"].update(_percentiles(self.uncorrected.response_times, timed))
        return data


class Pacer:
    """The open model in one process: hand out arrivals from one schedule, each user waiting for its own.

    Arrival k of this process is due at start + (index + k * workers) / rate (epoch seconds): the whole
    run's arrivals come R a second, and worker `index` of `workers` takes every workers-th of them. A
    user ready for its next task takes the earliest arrival not yet taken and sleeps until it is due;
    an arrival already due starts at once, its lateness measured. A user stopped while it waited gives
    its arrival back for the next user. `current` maps each user's greenlet to the lateness (ms) of the
    arrival it is running.
    """

    def __init__(self, recorder: Recorder) -> None:
        self.recorder = recorder
        self.rate = 0.0
        self.index = 0
        self.workers = 1
        self.start_at = 0.0
        self.ready = gevent.event.Event()
        self.next_ticket = 0
        self.returned: list[float] = []
        self.current: weakref.WeakKeyDictionary[Any, float] = weakref.WeakKeyDictionary()
        self.stopping = False

    def begin(self, rate: float, index: int = 0, workers: int = 1) -> None:
        """Start the schedule now: `rate` arrivals a second over all workers, this one `index` of `workers`."""
        self.rate, self.index, self.workers = rate, index, max(1, workers)
        self.start_at = time.time()
        self.next_ticket = 0
        self.returned = []
        self.stopping = False
        self.ready.set()

    def due(self, ticket: int) -> float:
        """Return when this process's arrival number `ticket` is due."""
        return self.start_at + (self.index + ticket * self.workers) / self.rate

    def take(self) -> float:
        """Take the earliest arrival nobody has taken; return when it is due."""
        upcoming = self.due(self.next_ticket)
        if self.returned and self.returned[0] <= upcoming:
            return heapq.heappop(self.returned)
        self.next_ticket += 1
        return upcoming

    def lateness_ms(self) -> float:
        """Return the lateness of the arrival the current greenlet runs (0 outside an arrival)."""
        return self.current.get(gevent.getcurrent(), 0.0)

    def next_arrival(self) -> None:
        """End the current greenlet's arrival; wait for its next one to come due and start it.

        Called while the user is in Locust's waiting state, so Locust stops a waiting user at once.
        """
        current = gevent.getcurrent()
        self.current.pop(current, None)
        self.ready.wait()
        due = None
        try:
            if not self.stopping:
                due = self.take()
                # gevent times a sleep from its loop's clock, which lags after a busy stretch (as at Locust's
                # start): a sleep may end early, so sleep again until the wall clock says it is due.
                while (delay := due - time.time()) > 0:
                    gevent.sleep(delay)
            while self.stopping:
                # The load is over: no arrival starts after its end. Locust stops this user meanwhile.
                gevent.sleep(3600)
        except BaseException:
            # GreenletExit: the user was stopped while it waited; its arrival goes to the next user.
            if due is not None:
                heapq.heappush(self.returned, due)
            raise
        assert due is not None
        now = time.time()
        lateness_ms = max(0.0, now - due) * 1000.0
        self.current[current] = lateness_ms
        self.recorder.on_arrival(now, lateness_ms)


def _pacer_of(user: User) -> Pacer | None:
    recorder = getattr(user.environment, "_stackprobe_recorder", None)
    return recorder.pacer if recorder is not None else None


def _paced_wait_time(user: User) -> float:
    """Every paced User class's wait_time: take the next arrival and start it when due; then no wait."""
    pacer = _pacer_of(user)
    if pacer is not None:
        pacer.next_arrival()
    return 0.0


def _first_arrival(user: User) -> None:
    """Hold a user's first task for an arrival, in Locust's waiting state as TaskSet.wait does."""
    pacer = _pacer_of(user)
    if pacer is None or user._state == LOCUST_STATE_STOPPING:
        return
    user._state = LOCUST_STATE_WAITING
    pacer.next_arrival()
    user._state = LOCUST_STATE_RUNNING


def _pace_first_task(cls: type[User]) -> None:
    """Make a class's on_start end by waiting for an arrival (once, in the class of the instance)."""
    original = cls.on_start

    def on_start(self: User) -> None:
        original(self)
        # A subclass's on_start may call this one through super(): only the instance's own class waits.
        if type(self) is cls:
            _first_arrival(self)

    on_start.__doc__ = original.__doc__
    on_start.__wrapped__ = original  # type: ignore[attr-defined]
    cls.on_start = on_start  # type: ignore[method-assign]


def _taskset_classes(tasks: Any, seen: set[type]) -> Iterator[type[TaskSet]]:
    """Yield the TaskSet classes among tasks, nested ones too."""
    for task in tasks.keys() if isinstance(tasks, dict) else tasks or ():
        if isinstance(task, type) and issubclass(task, TaskSet) and task not in seen:
            seen.add(task)
            yield task
            yield from _taskset_classes(task.tasks, seen)


def pace_user_classes(user_classes: list[type[User]]) -> None:
    """Put the open model into User classes: each task run waits for an arrival instead of wait_time.

    The classes' own wait_time is replaced (a TaskSet's own wait_time too, so it defers to its user's);
    a class that overrides run() cannot be paced and is left as it is, with a warning.
    """
    for cls in user_classes:
        if cls.__dict__.get("_stackprobe_paced"):
            continue
        if cls.run is not User.run:
            logger.warning("stackprobe: %s overrides run(), so its tasks cannot be paced as arrivals", cls.__name__)
            continue
        cls.wait_time = _paced_wait_time  # type: ignore[assignment]
        _pace_first_task(cls)
        for taskset in _taskset_classes(cls.tasks, set()):
            if taskset.wait_time is not TaskSet.wait_time:
                taskset.wait_time = TaskSet.wait_time  # type: ignore[method-assign]
        cls._stackprobe_paced = True  # type: ignore[attr-defined]


class Recorder:
    """Record windows, failures and exceptions; write them (local runner, master) or send them (worker).

    With an arrival rate (the open model) it also paces the users (its Pacer, not on a master) and counts
    the arrivals started and their lateness.
    """

    def __init__(
        self, environment: Environment, windows_path: str | None, errors_path: str | None, rate: float | None = None
    ) -> None:
        self.environment = environment
        self.windows_path = windows_path
        self.errors_path = errors_path
        # The open model: arrivals per second asked for, over all workers (None: the closed model).
        self.rate = rate
        self.arrivals_started = 0  # since the test's start (a worker: since its last report)
        self.lateness: dict[int, int] = {}  # rounded ms -> arrivals, as arrivals_started
        self.lateness_max: float | None = None
        self.load_start: float | None = None
        self.load_end: float | None = None
        self.workers = 1
        self.windows: dict[int, Window] = {}
        self.users: dict[int, int] = {}
        self.last_sample: tuple[int, int] | None = None
        self.failures: dict[str, dict[str, Any]] = {}
        self.exceptions: dict[str, dict[str, Any]] = {}
        self.cpu_warning = False
        self.cpu_peak_percent: float | None = None
        self.test_start: float | None = None
        # A master: what each worker reported, by Locust's client id.
        self.worker_figures: dict[str, dict[str, Any]] = {}
        self.next_second: int | None = None  # the first second not yet written
        self.errors_changed = False
        self.errors_written_at = 0.0
        self.closed = False
        self._windows_file: Any = None
        self._greenlet: gevent.Greenlet | None = None
        runner = environment.runner
        self.is_worker = isinstance(runner, locust_runners.WorkerRunner)
        self.is_master = isinstance(runner, locust_runners.MasterRunner)
        # The master hears of a worker's requests up to one report interval late.
        self.lag_s = math.ceil(locust_runners.WORKER_REPORT_INTERVAL) + 2 if self.is_master else 0
        self.pacer = Pacer(self) if rate is not None and not self.is_master else None

    def _window(self, second: int) -> Window:
        window = self.windows.get(second)
        if window is None:
            window = self.windows[second] = Window(open_model=self.rate is not None)
        return window

    # Recording

    def on_request(
        self,
        request_type: str,
        name: str,
        response_time: float | None,
        response_length: int,
        exception: Any = None,
        **_kwargs: Any,
    ) -> None:
        """Count a request in its second's window; count its failure as Locust's failures table does."""
        now = time.time()
        lateness_ms = self.pacer.lateness_ms() if self.pacer is not None else 0.0
        self._window(int(now)).log(response_time, bool(exception), lateness_ms)
        if exception:
            key = locust_stats.StatsError.create_key(request_type, name, exception)
            entry = self.failures.get(key)
            if entry is None:
                entry = self.failures[key] = {
                    "method": request_type,
                    "name": name,
                    "error": locust_stats.StatsError.parse_error(exception),
                    "occurrences": 0,
                    "first_seen": now,
                    "last_seen": now,
                }
            entry["occurrences"] += 1
            entry["last_seen"] = now
            self.errors_changed = True

    def on_user_error(self, user_instance: Any, exception: BaseException, tb: Any, **_kwargs: Any) -> None:
        """Count an exception raised in a task, grouped by traceback as Runner.log_exception groups it."""
        now = time.time()
        formatted_tb = "".join(traceback.format_tb(tb))
        key = hashlib.sha256(formatted_tb.encode("utf-8", "replace")).hexdigest()
        entry = self.exceptions.get(key)
        if entry is None:
            short = "".join(traceback.format_exception(type(exception), exception, tb, limit=-TRACEBACK_FRAMES))
            entry = self.exceptions[key] = {
                "type": type(exception).__name__,
                "message": str(exception),
                "count": 0,
                "first_seen": now,
                "last_seen": now,
                "traceback": short[-TRACEBACK_CHARS:],
            }
        entry["count"] += 1
        entry["last_seen"] = now
        self.errors_changed = True

    def on_cpu_warning(self, cpu_usage: float | None = None, **_kwargs: Any) -> None:
        """Note Locust's CPU warning (fired each time its monitor sees more than 90% of a core)."""
        self.cpu_warning = True
        if cpu_usage is not None:
            self.cpu_peak_percent = max(self.cpu_peak_percent or 0.0, float(cpu_usage))
        self.errors_changed = True

    def on_arrival(self, now: float, lateness_ms: float) -> None:
        """Count an arrival started at `now` (epoch seconds), `lateness_ms` after it was due."""
        self._window(int(now)).arrival(lateness_ms)
        self.arrivals_started += 1
        bucket = locust_stats.bucket_response_time(lateness_ms)
        self.lateness[bucket] = self.lateness.get(bucket, 0) + 1
        if self.lateness_max is None or lateness_ms > self.lateness_max:
            self.lateness_max = lateness_ms
        self.errors_changed = True

    def on_test_start(self, **_kwargs: Any) -> None:
        """Start the windows at the test's first second; start the arrivals' schedule (a master: the workers')."""
        now = time.time()
        if self.next_second is None:
            self.next_second = int(now)
        if self.test_start is None:
            self.test_start = now
            # Said at once: whoever runs Locust counts its run time from here, not from the wait for workers.
            if self.errors_path and not self.is_worker:
                self.write_errors(final=False)
        if self.rate is None:
            return
        self.load_start, self.load_end = now, None
        self.arrivals_started, self.lateness, self.lateness_max = 0, {}, None
        if self.pacer is not None:
            self.pacer.begin(self.rate)
        elif self.is_master:
            self._send_schedule()

    def _send_schedule(self) -> None:
        """Master: give each worker ready now its share of the arrivals (before Locust sends it users)."""
        runner = self.environment.runner
        assert isinstance(runner, locust_runners.MasterRunner)
        assert self.rate is not None
        active = runner.clients.ready + runner.clients.running + runner.clients.spawning
        clients = sorted(client.id for client in active)
        self.workers = len(clients)
        for index, client_id in enumerate(clients):
            data = {"rate": self.rate, "index": index, "workers": len(clients)}
            runner.send_message(SCHEDULE_MESSAGE, data, client_id=client_id)

    def on_schedule(self, msg: Any, **_kwargs: Any) -> None:
        """Worker: start this worker's share of the arrivals, as the master says."""
        if self.pacer is None:
            return
        data = msg.data
        self.pacer.begin(float(data["rate"]), int(data["index"]), int(data["workers"]))

    def on_test_stopping(self, **_kwargs: Any) -> None:
        """Note the users running when the test began to stop (the last window's users), and the load's end."""
        if self.pacer is not None:
            self.pacer.stopping = True
        if self.is_worker:
            return
        now = time.time()
        self._sample_users(int(now))
        if self.rate is not None and self.load_start is not None and self.load_end is None:
            self.load_end = now
            self.errors_changed = True

    def arrivals_summary(self, now: float) -> dict[str, Any] | None:
        """Return the open model's figures so far (None for the closed model): see the module's docstring."""
        if self.rate is None:
            return None
        start = self.load_start
        end = self.load_end if self.load_end is not None else now
        load_s = max(0.0, end - start) if start is not None else 0.0
        # Arrival k (from 0) is due at start + k / rate: those due by the end.
        due = math.floor(load_s * self.rate + 1e-9) + 1 if start is not None else 0
        timed = sum(self.lateness.values())
        return {
            "arrival_rate": self.rate,
            "load_start": start,
            "load_end": self.load_end,
            "load_s": load_s,
            "started": self.arrivals_started,
            "due": due,
            "waiting_at_end": max(0, due - self.arrivals_started),
            "achieved_rate": self.arrivals_started / load_s if load_s > 0 else None,
            "lateness_ms": {**_percentiles(self.lateness, timed), "max": self.lateness_max},
            "workers": self.workers,
        }

    # Distributed runs: workers send, the master merges.

    def on_report_to_master(self, client_id: str, data: dict[str, Any]) -> None:
        """Worker: hand everything recorded since the last report to the master, and forget it."""
        runner = self.environment.runner
        data[REPORT_KEY] = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "windows": {str(second): window.serialize() for second, window in self.windows.items()},
            "failures": self.failures,
            "exceptions": self.exceptions,
            "cpu_warning": self.cpu_warning or bool(runner is not None and runner.cpu_warning_emitted),
            "cpu_peak_percent": self.cpu_peak_percent,
        }
        if self.rate is not None:
            data[REPORT_KEY]["arrivals"] = {
                "started": self.arrivals_started,
                "lateness": {str(bucket): count for bucket, count in self.lateness.items()},
                "lateness_max": self.lateness_max,
            }
            self.arrivals_started = 0
            self.lateness = {}
            self.lateness_max = None
        self.windows = {}
        self.failures = {}
        self.exceptions = {}

    def _worker(self, client_id: str) -> dict[str, Any]:
        figures = self.worker_figures.get(client_id)
        if figures is None:
            figures = self.worker_figures[client_id] = {
                "id": client_id,
                "host": None,
                "pid": None,
                "requests": 0,
                "failures": 0,
                "listener": False,
                "cpu_usage_max": None,
                "cpu_warning": False,
                "missing": False,
            }
        return figures

    def count_worker_report(self, client_id: str, data: Mapping[str, Any]) -> None:
        """Master: add a worker's own stats report (Locust's stats_total since its last one) to its figures."""
        figures = self._worker(client_id)
        total = data.get("stats_total") or {}
        figures["requests"] += int(total.get("num_requests") or 0)
        figures["failures"] += int(total.get("num_failures") or 0)
        report = data.get(REPORT_KEY)
        if report:
            figures["listener"] = True
            figures["host"] = report.get("host", figures["host"])
            figures["pid"] = report.get("pid", figures["pid"])
        self.errors_changed = True

    def sample_workers(self) -> None:
        """Master: note the CPU use each worker's last heartbeat gave (Locust's WorkerNode.cpu_usage)."""
        runner = self.environment.runner
        if not isinstance(runner, locust_runners.MasterRunner):
            return
        for client in list(runner.clients.values()):
            figures = self._worker(client.id)
            usage = float(client.cpu_usage or 0.0)
            if usage > 0 and (figures["cpu_usage_max"] is None or usage > figures["cpu_usage_max"]):
                figures["cpu_usage_max"] = usage
                self.errors_changed = True
            if client.cpu_warning_emitted and not figures["cpu_warning"]:
                figures["cpu_warning"] = True
                self.errors_changed = True
            if client.state == locust_runners.STATE_MISSING and not figures["missing"]:
                figures["missing"] = True
                self.errors_changed = True

    def on_worker_report(self, client_id: str, data: Mapping[str, Any]) -> None:
        """Master: add a worker's report to its figures and to this run's windows, failures and exceptions."""
        self.count_worker_report(client_id, data)
        report = data.get(REPORT_KEY)
        if not report:
            return
        for second, serialized in report["windows"].items():
            self._window(int(second)).merge(serialized)
        arrivals = report.get("arrivals")
        if arrivals:
            self.arrivals_started += int(arrivals["started"])
            for bucket, count in arrivals["lateness"].items():
                self.lateness[int(bucket)] = self.lateness.get(int(bucket), 0) + int(count)
            other_max = arrivals["lateness_max"]
            if other_max is not None and (self.lateness_max is None or other_max > self.lateness_max):
                self.lateness_max = other_max
            self.errors_changed = self.errors_changed or bool(arrivals["started"])
        for table, counted in ((self.failures, "occurrences"), (self.exceptions, "count")):
            source = report["failures"] if counted == "occurrences" else report["exceptions"]
            for key, entry in source.items():
                mine = table.get(key)
                if mine is None:
                    table[key] = dict(entry)
                    continue
                mine[counted] += entry[counted]
                mine["first_seen"] = min(mine["first_seen"], entry["first_seen"])
                mine["last_seen"] = max(mine["last_seen"], entry["last_seen"])
            self.errors_changed = self.errors_changed or bool(source)
        if report.get("cpu_warning"):
            self.on_cpu_warning(report.get("cpu_peak_percent"))

    # Writing

    def start(self) -> None:
        """Open the windows file and start writing once a second (not on a worker)."""
        if self.windows_path:
            self._windows_file = open(self.windows_path, "w", encoding="utf-8")  # noqa: SIM115 (held open)
            header = {
                "format": WINDOWS_FORMAT,
                "version": FORMAT_VERSION,
                "locust": LOCUST_VERSION,
                "window_s": 1,
                "arrival_rate": self.rate,
            }
            self._windows_file.write(json.dumps(header) + "\n")
            self._windows_file.flush()
        if self.errors_path:
            self.write_errors(final=False)
        self._greenlet = gevent.spawn(self._loop)

    def _loop(self) -> None:
        while not self.closed:
            now = time.time()
            gevent.sleep(math.floor(now) + 1.05 - now)  # just after the next second begins
            try:
                self.tick(time.time())
            except Exception:
                # Never Locust's "unhandled exception" (it would change Locust's exit code): say it and go on.
                logger.warning("stackprobe listener could not write its files:\n%s", traceback.format_exc())

    def tick(self, now: float, final: bool = False) -> None:
        """Write every window that has ended (all of them when final); rewrite the errors file now and then.

        The errors file is left to on_quit when final, which knows the exit code.
        """
        if self.closed:
            return
        current = int(now)
        self.sample_workers()
        self._sample_users(current - 1)
        if final:
            self._sample_users(current)
        if self.next_second is not None and self._windows_file is not None:
            last = max([current, *self.windows]) if final else current - 1 - self.lag_s
            lines = []
            # Windows that came in after their second was written (a late worker report) go out again.
            for second in sorted(s for s in self.windows if s < self.next_second):
                lines.append(self.windows.pop(second).line(second, self.users.get(second, 0)))
            for second in range(self.next_second, last + 1):
                window = self.windows.pop(second, None) or Window(open_model=self.rate is not None)
                lines.append(window.line(second, self.users.get(second, 0)))
            self.next_second = max(self.next_second, last + 1)
            if lines:
                self._windows_file.write("".join(json.dumps(line, separators=(",", ":")) + "\n" for line in lines))
                self._windows_file.flush()
            for second in [s for s in self.users if s < self.next_second - 1]:
                del self.users[second]
        if not final and self.errors_path and self.errors_changed and now - self.errors_written_at >= ERRORS_EVERY_S:
            self.write_errors(final=False)

    def _sample_users(self, second: int) -> None:
        """Note runner.user_count for a second; seconds since the last sample get that last sample.

        Users start and stop only while Locust's event loop runs, so across seconds the loop slept through
        (a task that blocked it, or a busy loop) the count is the one last seen.
        """
        runner = self.environment.runner
        users = runner.user_count if runner is not None else 0
        if self.last_sample is not None and second > self.last_sample[0]:
            last_second, last_users = self.last_sample
            for missed in range(max(last_second + 1, second - 3600), second):
                self.users.setdefault(missed, last_users)
        self.users[second] = max(self.users.get(second, 0), users)
        if self.last_sample is None or second >= self.last_sample[0]:
            self.last_sample = (second, self.users[second])

    def write_errors(self, final: bool, exit_code: int | None = None) -> None:
        """Rewrite the errors file atomically."""
        assert self.errors_path
        runner = self.environment.runner
        cpu_warning = self.cpu_warning or bool(
            runner is not None and (runner.cpu_warning_emitted or runner.worker_cpu_warning_emitted)
        )
        data = {
            "format": ERRORS_FORMAT,
            "version": FORMAT_VERSION,
            "locust": LOCUST_VERSION,
            "final": final,
            "written_at": time.time(),
            "failures": sorted(self.failures.values(), key=lambda e: (-e["occurrences"], e["first_seen"])),
            "exceptions": sorted(self.exceptions.values(), key=lambda e: (-e["count"], e["first_seen"])),
            "cpu_warning": cpu_warning,
            "cpu_peak_percent": self.cpu_peak_percent,
            "exit_code": exit_code,
            "process_exit_code": self.environment.process_exit_code,
            "unhandled_exception": bool(locust_log.unhandled_greenlet_exception),
            "arrivals": self.arrivals_summary(time.time()),
            "test_start": self.test_start,
            "workers": [self.worker_figures[key] for key in sorted(self.worker_figures)],
        }
        partial = f"{self.errors_path}.partial"
        with open(partial, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=1)
        os.replace(partial, self.errors_path)
        self.errors_changed = False
        self.errors_written_at = time.time()

    def on_quit(self, exit_code: int | None = None, **_kwargs: Any) -> None:
        """Write what is left, after Locust stopped every user and wrote its own files."""
        if self.closed:
            return
        try:
            self.tick(time.time(), final=True)
            if self.errors_path:
                self.write_errors(final=True, exit_code=exit_code)
        except Exception:
            logger.warning("stackprobe listener could not write its files:\n%s", traceback.format_exc())
        self.closed = True
        if self._windows_file is not None:
            self._windows_file.close()
        if self._greenlet is not None:
            self._greenlet.kill(block=False)


def _guarded(handler: Any) -> Any:
    """Wrap an event handler so an error of this listener is logged, never counted by Locust as its own."""

    def guarded(**kwargs: Any) -> None:
        try:
            handler(**kwargs)
        except Exception:
            logger.warning("stackprobe listener failed in %s:\n%s", handler.__name__, traceback.format_exc())

    return guarded


def _arrival_rate() -> float | None:
    """Return the arrival rate in the environment (None: the closed model); exit 2 when it is not one."""
    text = os.environ.get(RATE_ENV, "").strip()
    if not text:
        return None
    try:
        rate = float(text)
    except ValueError:
        rate = math.nan
    if not (math.isfinite(rate) and rate > 0):
        logger.error("stackprobe listener: %s=%r is not a number of arrivals per second above 0", RATE_ENV, text)
        raise SystemExit(2)
    return rate


@events.init.add_listener
def _on_init(environment: Environment, **_kwargs: Any) -> None:
    windows_path = os.environ.get(WINDOWS_ENV) or None
    errors_path = os.environ.get(ERRORS_ENV) or None
    rate = _arrival_rate()
    if not (windows_path or errors_path or rate) or getattr(environment, "_stackprobe_recorder", None) is not None:
        return
    recorder = Recorder(environment, windows_path, errors_path, rate)
    environment._stackprobe_recorder = recorder  # type: ignore[attr-defined]
    hooks = environment.events
    hooks.request.add_listener(_guarded(recorder.on_request))
    hooks.user_error.add_listener(_guarded(recorder.on_user_error))
    hooks.cpu_warning.add_listener(_guarded(recorder.on_cpu_warning))
    if recorder.pacer is not None:
        pace_user_classes(environment.user_classes)
    if recorder.is_worker:
        hooks.report_to_master.add_listener(_guarded(recorder.on_report_to_master))
        if recorder.pacer is not None:
            hooks.test_stopping.add_listener(_guarded(recorder.on_test_stopping))
            environment.runner.register_message(SCHEDULE_MESSAGE, _guarded(recorder.on_schedule))
        return
    hooks.worker_report.add_listener(_guarded(recorder.on_worker_report))
    hooks.test_start.add_listener(_guarded(recorder.on_test_start))
    hooks.test_stopping.add_listener(_guarded(recorder.on_test_stopping))
    hooks.quit.add_listener(recorder.on_quit)
    try:
        recorder.start()
    except OSError as exc:
        # Like a bad write-log path: stop before any load, rather than run without the figures.
        logger.error("stackprobe listener cannot write its files: %s", exc)
        raise SystemExit(2) from None
