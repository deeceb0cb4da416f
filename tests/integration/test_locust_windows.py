"""stackprobe's listener in real Locust runs (subprocesses) against an HTTP server in this process on 127.0.0.1.

No Docker: the target is a small threaded `http.server` whose answers the tests can stall.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from stackprobe.load import LoadPlan, LoadResult, check_locustfile, run_load
from stackprobe.locuststats import read_errors, read_history, read_totals, read_windows

LOADTESTS = Path(__file__).resolve().parents[2] / "loadtests"
PAGE = b"<p>hello</p>\n" * 20

# As fast as the machine goes: the fast requests before a stall far outnumber the slow ones in it.
FAST_LOCUSTFILE = """
from locust import FastHttpUser, constant, task


class Reader(FastHttpUser):
    wait_time = constant(0)

    @task
    def page(self):
        self.client.get("/")
"""

# Requests that all succeed, and a task that raises every other time: exceptions, no failure.
RAISING_LOCUSTFILE = """
from locust import FastHttpUser, constant, events, task

ENVIRONMENTS = []


class Buggy(FastHttpUser):
    wait_time = constant(0.02)

    @task
    def page(self):
        self.client.get("/")

    @task
    def bug(self):
        {}["missing key"]


@events.init.add_listener
def _keep(environment, **_kwargs):
    ENVIRONMENTS.append(environment)


@events.quit.add_listener
def _locusts_own_count(exit_code, **_kwargs):
    runner = ENVIRONMENTS[0].runner
    import os
    with open(os.environ["LOCUST_OWN_COUNTS"], "w") as handle:
        handle.write(str(sum(row["count"] for row in runner.exceptions.values())))
"""

# Locust's own CPU monitor, made to sample every half second and to warn at any use.
CPU_WARNING_LOCUSTFILE = """
from locust import User, constant, runners, task

runners.CPU_MONITOR_INTERVAL = 0.5
runners.CPU_WARNING_THRESHOLD = -1


class Idle(User):
    wait_time = constant(0.2)

    @task
    def nothing(self):
        pass
"""


@dataclass
class Target:
    """What the server saw: requests answered, and when its stall began and ended (epoch seconds)."""

    url: str = ""
    stall_after: int = 0
    stall_s: float = 0.0
    stall_ms: float = 0.0
    answered: int = 0
    stall_began: float | None = None
    stall_ended: float | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def delay_s(self) -> float:
        """Count a request; return how long to hold its answer."""
        with self.lock:
            self.answered += 1
            now = time.time()
            if self.stall_began is None and self.stall_after and self.answered > self.stall_after:
                self.stall_began, self.stall_ended = now, now + self.stall_s
            if self.stall_began is not None and self.stall_ended is not None and now < self.stall_ended:
                return self.stall_ms / 1000
            return 0.0


@contextmanager
def serving(stall_after: int = 0, stall_s: float = 0.0, stall_ms: float = 0.0) -> Iterator[Target]:
    """Serve GET / on 127.0.0.1 (anything else: 404); after `stall_after` requests, hold every answer
    `stall_ms` for `stall_s` seconds."""
    target = Target(stall_after=stall_after, stall_s=stall_s, stall_ms=stall_ms)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out in two writes: without this, Nagle and delayed ACKs hold each answer 40 ms.
        disable_nagle_algorithm = True

        def do_GET(self) -> None:
            delay = target.delay_s()
            if delay:
                time.sleep(delay)
            found = self.path == "/"
            body = PAGE if found else b"not found\n"
            self.send_response(200 if found else 404)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            self.do_GET()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, name="target", daemon=True)
    thread.start()
    target.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield target
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _plan(tmp_path: Path, source: str | Path, url: str, users: int, duration_s: float, shape: str = "") -> LoadPlan:
    if isinstance(source, str):
        locustfile = tmp_path / "scenario.py"
        locustfile.write_text(source)
    else:
        locustfile = source
    return LoadPlan(
        locustfile=locustfile,
        host=url,
        users=users,
        spawn_rate=users,
        duration_s=duration_s,
        shape=shape,
        slo="",
        out=tmp_path / "out",
    )


def _assert_windows_add_up_to_locusts_totals(plan: LoadPlan, result: LoadResult) -> None:
    lines = [json.loads(line) for line in plan.windows.read_text().splitlines()[1:]]
    totals = read_totals(plan.csv_prefix)
    assert sum(line["num_requests"] for line in lines) == totals.requests.total > 0, result.output_tail
    assert sum(line["num_failures"] for line in lines) == totals.requests.failures
    assert max(line["max_response_time"] or 0 for line in lines) == totals.latency.max


def test_a_stall_shows_in_the_windows_and_not_in_locusts_cumulative_history(tmp_path: Path) -> None:
    # 2 users as fast as they go; after 1000 answers every answer is held 400 ms for 3 s: ~15 slow
    # requests against 1000 fast ones, so a percentile since the start hardly moves.
    with serving(stall_after=1000, stall_s=3.0, stall_ms=400) as target:
        load_start = time.time()
        plan = _plan(tmp_path, FAST_LOCUSTFILE, target.url, users=2, duration_s=12)
        result = run_load(plan)
    assert target.stall_began is not None, f"the server never stalled ({target.answered} answers)"
    assert target.stall_ended is not None
    windows = read_windows(plan.windows, start=load_start)
    end = load_start + windows.t[-1]
    assert target.stall_ended < end, f"the run ended before the stall did ({target.answered} answers)"

    # Windows wholly inside the stall, after its first answers came (400 ms): every response was slow.
    inside = [
        p95
        for t, p95 in zip(windows.t, windows.p95_ms, strict=True)
        if load_start + t - 1 >= target.stall_began + 0.4 and load_start + t <= target.stall_ended
    ]
    assert inside, "no window lay wholly inside the stall"
    assert all(p95 is not None and p95 >= 300 for p95 in inside), windows.p95_ms
    assert max(p95 or 0 for p95 in windows.p95_ms) >= 300

    # Locust's history CSV (stackprobe's argv has no --csv-full-history): percentiles since the start.
    history = read_history(plan.csv_prefix, start=load_start)
    assert max(p95 or 0 for p95 in history.p95_ms) < 300, history.p95_ms
    _assert_windows_add_up_to_locusts_totals(plan, result)


def test_a_locustfile_whose_tasks_raise_shows_its_exceptions(tmp_path: Path) -> None:
    os.environ["LOCUST_OWN_COUNTS"] = str(tmp_path / "locusts_own_count")
    with serving() as target:
        load_start = time.time()
        plan = _plan(tmp_path, RAISING_LOCUSTFILE, target.url, users=2, duration_s=3)
        result = run_load(plan)
    assert result.exit_code == 0  # --exit-code-on-error 0: exceptions are counted, not an exit code
    assert read_totals(plan.csv_prefix).requests.failures == 0
    errors = read_errors(plan.errors, start=load_start)
    assert errors.failures == []
    assert errors.exception_count == int((tmp_path / "locusts_own_count").read_text()) > 0
    (exception,) = errors.exceptions
    assert (exception["type"], exception["message"]) == ("KeyError", "'missing key'")
    assert 0 < exception["first_t"] < exception["last_t"] < 10
    assert "in bug" in exception["traceback"]


def test_locusts_cpu_warning_is_reported(tmp_path: Path) -> None:
    plan = _plan(tmp_path, CPU_WARNING_LOCUSTFILE, "http://127.0.0.1:9", users=1, duration_s=2)
    result = run_load(plan)
    assert result.cpu_warning is True
    assert json.loads(plan.errors.read_text())["cpu_warning"] is True


def test_workers_windows_and_errors_reach_the_master(tmp_path: Path) -> None:
    # With --processes the requests happen in the workers; the master writes what they report.
    os.environ["LOCUST_PROCESSES"] = "2"
    os.environ["LOCUST_OWN_COUNTS"] = str(tmp_path / "locusts_own_count")
    with serving() as target:
        load_start = time.time()
        plan = _plan(tmp_path, RAISING_LOCUSTFILE.replace('"/"', '"/missing"', 1), target.url, 2, duration_s=4)
        result = run_load(plan)
    assert "worker" in plan.log.read_text().lower()
    _assert_windows_add_up_to_locusts_totals(plan, result)
    errors = read_errors(plan.errors, start=load_start)
    assert errors.failure_count == read_totals(plan.csv_prefix).requests.failures > 0
    assert errors.exception_count == int((tmp_path / "locusts_own_count").read_text()) > 0
    assert max(read_windows(plan.windows, start=load_start).users) == 2


@pytest.mark.parametrize("shape", ["steady", "spike"])
def test_the_listener_runs_beside_a_folder_of_locustfiles(tmp_path: Path, shape: str) -> None:
    # loadtests/ as stackprobe runs it: its Registrar posts and pages, which this server does not serve
    # (404s: failures), with the shape's class chosen through LOCUST_SHAPE.
    assert check_locustfile(LOADTESTS, shape).shape_classes == [f"{shape.title()}Shape"]
    with serving() as target:
        load_start = time.time()
        plan = _plan(tmp_path, LOADTESTS, target.url, users=2, duration_s=3, shape=shape)
        result = run_load(plan)
    assert f"Load shape: {shape}" in plan.log.read_text()
    assert result.overran is None
    _assert_windows_add_up_to_locusts_totals(plan, result)
    errors = read_errors(plan.errors, start=load_start)
    assert errors.failure_count == read_totals(plan.csv_prefix).requests.failures > 0
