"""The open model (LoadPlan.rate) in real Locust runs (subprocesses) against an HTTP server in this process.

No Docker: the target is a small threaded `http.server` on 127.0.0.1 whose answers take a set time, and
can all be held for a while (a stall). Timing figures are kept loose: the machine is shared.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from stackprobe.load import LoadPlan, LoadResult, default_pool_size, run_load
from stackprobe.locuststats import (
    read_arrival_windows,
    read_arrivals,
    read_totals,
    read_windows,
    read_windows_latency,
)

# A user's own pace, which the open model replaces: its wait_time and its TaskSet's would each hold a
# user 10 s between tasks. Its on_start makes a request before its first arrival.
NESTED_LOCUSTFILE = """
from locust import FastHttpUser, TaskSet, constant, task


class Browse(TaskSet):
    wait_time = constant(10)

    @task
    def page(self):
        self.client.get("/")


class Reader(FastHttpUser):
    wait_time = constant(10)
    tasks = [Browse]

    def on_start(self):
        self.client.get("/login")
"""

# The same users for the closed and the open model: about 50 tasks/s from 10 users when answers are fast.
PACED_LOCUSTFILE = """
from locust import FastHttpUser, constant, task


class Reader(FastHttpUser):
    wait_time = constant(0.2)

    @task
    def page(self):
        self.client.get("/")
"""


@dataclass
class Target:
    """A server whose answers take `answer_s`; from `stall_at_s` after its first request, for `stall_s`,
    every request that comes in is held `stall_hold_s` instead. Times are epoch seconds."""

    answer_s: float = 0.0
    stall_at_s: float | None = None
    stall_s: float = 0.0
    stall_hold_s: float = 0.0
    url: str = ""
    answered: int = 0
    first: float | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def stall_began(self) -> float | None:
        return None if self.first is None or self.stall_at_s is None else self.first + self.stall_at_s

    def delay_s(self) -> float:
        with self.lock:
            now = time.time()
            self.answered += 1
            if self.first is None:
                self.first = now
            began = self.stall_began
            if began is not None and began <= now < began + self.stall_s:
                return self.stall_hold_s
            return self.answer_s


@contextmanager
def serving(target: Target) -> Iterator[Target]:
    """Answer every GET on 127.0.0.1 with a short page, after the target's delay."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def do_GET(self) -> None:
            delay = target.delay_s()
            if delay:
                time.sleep(delay)
            body = b"<p>hello</p>\n"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    class Server(ThreadingHTTPServer):
        # socketserver's default listen backlog of 5 drops the SYNs of users that connect at once, whose
        # retransmission a second later would pass for a 1-s answer.
        request_queue_size = 128
        daemon_threads = True

    server = Server(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, name="target", daemon=True)
    thread.start()
    target.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield target
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _plan(out: Path, source: str, url: str, users: int, duration_s: float, rate: float | None) -> LoadPlan:
    out.mkdir(parents=True, exist_ok=True)
    locustfile = out / "scenario.py"
    locustfile.write_text(source)
    return LoadPlan(
        locustfile=locustfile,
        host=url,
        users=users,
        spawn_rate=users,
        duration_s=duration_s,
        shape="",
        slo="",
        out=out / "out",
        rate=rate,
    )


def _requests_by_name(plan: LoadPlan) -> dict[str, int]:
    return {entry["name"]: entry["num_requests"] for entry in json.loads(plan.json_file.read_text())}


def _window_field(plan: LoadPlan, key: str) -> list[Any]:
    """Return one field of every window line the listener wrote."""
    return [json.loads(line)[key] for line in plan.windows.read_text().splitlines()[1:]]


def _window_arrivals(plan: LoadPlan) -> int:
    return sum(_window_field(plan, "arrivals"))


def test_a_rate_the_server_can_serve_is_delivered_on_schedule(tmp_path: Path) -> None:
    # 50 arrivals/s for 5 s from the default pool, through a locustfile whose own waits (10 s, in its
    # User and its TaskSet) would allow 5 tasks/s: the open model replaces them without editing the file.
    rate = 50.0
    with serving(Target(answer_s=0.002)) as target:
        plan = _plan(tmp_path, NESTED_LOCUSTFILE, target.url, default_pool_size(rate), 5, rate)
        result = run_load(plan)
    arrivals = read_arrivals(plan.errors)
    assert arrivals is not None, result.output_tail
    assert arrivals.final
    assert result.arrival_rate == arrivals.arrival_rate == rate
    assert result.achieved_rate == arrivals.achieved_rate
    assert arrivals.achieved_rate is not None
    assert abs(arrivals.achieved_rate - rate) <= 0.05 * rate, arrivals
    assert arrivals.workers == 1
    # One arrival, one task run, one request; each user's on_start ran before its first arrival.
    requests = _requests_by_name(plan)
    assert requests["/"] == arrivals.started == _window_arrivals(plan)
    assert requests["/login"] == plan.users
    series = read_arrival_windows(plan.windows, start=0.0)
    assert series.arrival_rate == rate
    assert sum(series.arrivals_per_s) == arrivals.started


def test_the_rate_is_split_among_locusts_worker_processes(tmp_path: Path) -> None:
    os.environ["LOCUST_PROCESSES"] = "2"
    rate = 40.0
    with serving(Target(answer_s=0.002)) as target:
        plan = _plan(tmp_path, PACED_LOCUSTFILE, target.url, 20, 4, rate)
        result = run_load(plan)
    assert "worker" in plan.log.read_text().lower()
    arrivals = read_arrivals(plan.errors)
    assert arrivals is not None, result.output_tail
    assert arrivals.workers == 2
    assert arrivals.achieved_rate is not None
    assert abs(arrivals.achieved_rate - rate) <= 0.05 * rate, arrivals
    assert _requests_by_name(plan)["/"] == arrivals.started == _window_arrivals(plan)


def _stalled_run(out: Path, rate: float | None) -> tuple[LoadPlan, LoadResult, Target]:
    # 10 users; from 3 s after the first request, every request that comes in for 2 s is held 1 s.
    with serving(Target(answer_s=0.002, stall_at_s=3.0, stall_s=2.0, stall_hold_s=1.0)) as target:
        plan = _plan(out, PACED_LOCUSTFILE, target.url, users=10, duration_s=9, rate=rate)
        result = run_load(plan)
    return plan, result, target


def test_arrivals_due_during_a_stall_are_timed_from_when_they_were_due(tmp_path: Path) -> None:
    # The same 10 users, closed (each waits for its answer, then 0.2 s: about 50 tasks/s while answers are
    # fast) and open (50 arrivals/s), side by side.
    with ThreadPoolExecutor(2) as pool:
        closed_run = pool.submit(_stalled_run, tmp_path / "closed", None)
        open_run = pool.submit(_stalled_run, tmp_path / "open", 50.0)
        closed_plan, _, closed_target = closed_run.result()
        open_plan, open_result, open_target = open_run.result()
    for target in (closed_target, open_target):
        assert target.stall_began is not None, "the server never stalled"

    # The closed model waits with the service: its slowest windows show the 1-s hold, no more.
    closed_p95 = max(p95 or 0 for p95 in read_windows(closed_plan.windows, start=0.0).p95_ms)
    assert 900 <= closed_p95 < 1500, closed_p95
    # The open model: arrivals kept coming due while all 20 users were held, and waited up to the
    # stall's 2 s; measured from when they were due, the windows during and after the stall say so.
    open_windows = read_windows(open_plan.windows, start=0.0)
    open_p95 = max(p95 or 0 for p95 in open_windows.p95_ms)
    assert open_p95 >= max(1500, closed_p95 + 500), (open_p95, closed_p95)
    # The same requests timed from when they were sent, as Locust times them, hide it as the closed model does.
    uncorrected = read_arrival_windows(open_plan.windows, start=0.0)
    assert max(p95 or 0 for p95 in uncorrected.uncorrected_p95_ms) < open_p95 - 400
    assert max(late or 0 for late in uncorrected.lateness_max_ms) >= 500
    # Locust's own totals stay as it timed them, from sending, beside the whole run's latency from due.
    locusts = read_totals(open_plan.csv_prefix).latency
    from_due = read_windows_latency(open_plan.windows)
    assert locusts.max is not None
    assert from_due.max is not None
    assert locusts.max < from_due.max - 400
    # Once the stall was over the backlog started at once: the rate asked was delivered.
    arrivals = read_arrivals(open_plan.errors)
    assert arrivals is not None
    assert open_result.achieved_rate is not None
    assert open_result.achieved_rate >= 0.95 * 50, arrivals
    assert (arrivals.lateness_max_ms or 0) >= 900


def test_too_few_users_for_the_rate_report_the_rate_achieved(tmp_path: Path) -> None:
    # 2 users, 100 arrivals/s, 50-ms answers: at most 40 tasks/s, so arrivals pile up behind them.
    with serving(Target(answer_s=0.05)) as target:
        plan = _plan(tmp_path, PACED_LOCUSTFILE, target.url, users=2, duration_s=4, rate=100.0)
        result = run_load(plan)
    arrivals = read_arrivals(plan.errors)
    assert arrivals is not None, result.output_tail
    assert result.arrival_rate == 100.0
    assert result.achieved_rate is not None
    assert result.achieved_rate == arrivals.achieved_rate < 0.95 * 100.0
    assert result.achieved_rate <= 45, arrivals
    assert arrivals.waiting_at_end > 0
    assert arrivals.started + arrivals.waiting_at_end == arrivals.due
    # The backlog grows, and the windows' latency with it: measured from when each arrival was due.
    p95 = [value or 0 for value in read_windows(plan.windows, start=0.0).p95_ms]
    assert max(p95) >= 1000, p95
