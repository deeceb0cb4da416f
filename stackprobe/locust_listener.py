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
     "exit_code": int | null, "process_exit_code": int | null, "unhandled_exception": bool}
    Failures are request events with an exception, grouped and worded as Locust's failures table
    (StatsError.create_key, StatsError.parse_error); exceptions are `user_error` events (exceptions raised
    in tasks), grouped as Locust groups them (by traceback), with the first message, the exception's type
    and the last frames of its traceback. Times are epoch seconds. `cpu_warning` is Locust's own "CPU
    usage above 90%" warning (the cpu_warning event, runner.cpu_warning_emitted, or a worker's);
    `exit_code` is the code Locust exits with (the quit event), `unhandled_exception` Locust's flag for an
    exception it did not expect (a shape's tick, an event handler: exit code 2 unless failures came
    first). "final" is false until Locust quit: a file without it comes from a run that was killed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import time
import traceback
from collections.abc import Mapping
from typing import Any

import gevent
from locust import __version__ as LOCUST_VERSION
from locust import events
from locust import log as locust_log
from locust import runners as locust_runners
from locust import stats as locust_stats
from locust.env import Environment

WINDOWS_ENV = "STACKPROBE_LOCUST_WINDOWS"
ERRORS_ENV = "STACKPROBE_LOCUST_ERRORS"
WINDOWS_FORMAT = "stackprobe-locust-windows"
ERRORS_FORMAT = "stackprobe-locust-errors"
FORMAT_VERSION = 1
# Key of this listener's data in the reports workers send to the master (--processes).
REPORT_KEY = "stackprobe_listener"
ERRORS_EVERY_S = 5.0
TRACEBACK_FRAMES = 5
TRACEBACK_CHARS = 3000

logger = logging.getLogger(__name__)


class Window:
    """What completed in one second: counts, response time sum and max, and the rounded histogram."""

    __slots__ = ("max_response_time", "num_failures", "num_none_requests", "num_requests", "response_times", "total")

    def __init__(self) -> None:
        self.num_requests = 0
        self.num_failures = 0
        self.num_none_requests = 0
        self.total = 0.0
        self.max_response_time: float | None = None
        self.response_times: dict[int, int] = {}

    def log(self, response_time: float | None, failed: bool) -> None:
        """Count one request as StatsEntry.log and log_error do."""
        self.num_requests += 1
        if failed:
            self.num_failures += 1
        if response_time is None:
            self.num_none_requests += 1
            return
        self.total += response_time
        if self.max_response_time is None or response_time > self.max_response_time:
            self.max_response_time = response_time
        # Looked up each time: Locust documents replacing bucket_response_time at runtime.
        bucket = locust_stats.bucket_response_time(response_time)
        self.response_times[bucket] = self.response_times.get(bucket, 0) + 1

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

    def serialize(self) -> dict[str, Any]:
        """Return the counts and histogram (what a worker sends, and the core of a line)."""
        return {
            "num_requests": self.num_requests,
            "num_failures": self.num_failures,
            "num_none_requests": self.num_none_requests,
            "total_response_time": self.total,
            "max_response_time": self.max_response_time,
            "response_times": {str(bucket): count for bucket, count in sorted(self.response_times.items())},
        }

    def line(self, second: int, users: int) -> dict[str, Any]:
        """Return the window as a line of the windows file, with Locust's percentiles."""
        timed = self.num_requests - self.num_none_requests
        percentiles = {
            name: locust_stats.calculate_response_time_percentile(self.response_times, timed, q) if timed else None
            for name, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99))
        }
        return {"t": second, "users": users, **self.serialize(), **percentiles}


class Recorder:
    """Record windows, failures and exceptions; write them (local runner, master) or send them (worker)."""

    def __init__(self, environment: Environment, windows_path: str | None, errors_path: str | None) -> None:
        self.environment = environment
        self.windows_path = windows_path
        self.errors_path = errors_path
        self.windows: dict[int, Window] = {}
        self.users: dict[int, int] = {}
        self.last_sample: tuple[int, int] | None = None
        self.failures: dict[str, dict[str, Any]] = {}
        self.exceptions: dict[str, dict[str, Any]] = {}
        self.cpu_warning = False
        self.cpu_peak_percent: float | None = None
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
        window = self.windows.get(int(now))
        if window is None:
            window = self.windows[int(now)] = Window()
        window.log(response_time, bool(exception))
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

    def on_test_start(self, **_kwargs: Any) -> None:
        """Start the windows at the test's first second."""
        if self.next_second is None:
            self.next_second = int(time.time())

    def on_test_stopping(self, **_kwargs: Any) -> None:
        """Note the users running when the test began to stop (the last window's users)."""
        self._sample_users(int(time.time()))

    # Distributed runs: workers send, the master merges.

    def on_report_to_master(self, client_id: str, data: dict[str, Any]) -> None:
        """Worker: hand everything recorded since the last report to the master, and forget it."""
        runner = self.environment.runner
        data[REPORT_KEY] = {
            "windows": {str(second): window.serialize() for second, window in self.windows.items()},
            "failures": self.failures,
            "exceptions": self.exceptions,
            "cpu_warning": self.cpu_warning or bool(runner is not None and runner.cpu_warning_emitted),
            "cpu_peak_percent": self.cpu_peak_percent,
        }
        self.windows = {}
        self.failures = {}
        self.exceptions = {}

    def on_worker_report(self, client_id: str, data: Mapping[str, Any]) -> None:
        """Master: add a worker's report to this run's windows, failures and exceptions."""
        report = data.get(REPORT_KEY)
        if not report:
            return
        for second, serialized in report["windows"].items():
            window = self.windows.get(int(second))
            if window is None:
                window = self.windows[int(second)] = Window()
            window.merge(serialized)
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
            header = {"format": WINDOWS_FORMAT, "version": FORMAT_VERSION, "locust": LOCUST_VERSION, "window_s": 1}
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
                window = self.windows.pop(second, None) or Window()
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


@events.init.add_listener
def _on_init(environment: Environment, **_kwargs: Any) -> None:
    windows_path = os.environ.get(WINDOWS_ENV) or None
    errors_path = os.environ.get(ERRORS_ENV) or None
    if not (windows_path or errors_path) or getattr(environment, "_stackprobe_recorder", None) is not None:
        return
    recorder = Recorder(environment, windows_path, errors_path)
    environment._stackprobe_recorder = recorder  # type: ignore[attr-defined]
    hooks = environment.events
    hooks.request.add_listener(_guarded(recorder.on_request))
    hooks.user_error.add_listener(_guarded(recorder.on_user_error))
    hooks.cpu_warning.add_listener(_guarded(recorder.on_cpu_warning))
    if recorder.is_worker:
        hooks.report_to_master.add_listener(_guarded(recorder.on_report_to_master))
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
