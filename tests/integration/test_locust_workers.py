"""Locust's own master and workers as stackprobe starts them (LoadPlan.workers), against an HTTP server here.

No Docker: the target is the small threaded `http.server` of test_locust_rate. Each run is a real master
and real `locust --worker` processes on this machine.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
from dataclasses import replace
from pathlib import Path

import psutil
import pytest

from stackprobe.load import LoadError, distributed_section, run_load
from stackprobe.locuststats import read_arrivals, read_errors, read_totals, read_windows
from tests.integration.test_locust_rate import PACED_LOCUSTFILE, Target, _plan, serving

# Two tasks, one of them failing: the server answers GET only (a POST gets http.server's 501).
MIXED_LOCUSTFILE = """
from locust import FastHttpUser, constant, task


class Reader(FastHttpUser):
    wait_time = constant(0.01)

    @task(3)
    def page(self):
        self.client.get("/")

    @task
    def refused(self):
        self.client.post("/")
"""

# Loads in the master and fails in every worker: a worker that cannot start.
WORKER_BREAKS_LOCUSTFILE = """
import sys

from locust import FastHttpUser, task

if "--worker" in sys.argv:
    raise ImportError("this worker is missing a module")


class Reader(FastHttpUser):
    @task
    def page(self):
        self.client.get("/")
"""


def test_workers_requests_add_up_to_the_masters_totals_windows_and_failures(tmp_path: Path) -> None:
    # One worker started by the run, one more that joins the master's address as a worker from elsewhere
    # would (another `locust --worker`, not started by run_load): the master waits for both, then loads.
    port = _free_port()
    with serving(Target()) as target:
        base = _plan(tmp_path, MIXED_LOCUSTFILE, target.url, 4, 4, None)
        plan = replace(base, workers=1, master_bind=("127.0.0.1", port), expect_workers=2)
        with (tmp_path / "joined.log").open("w") as log:
            joined = subprocess.Popen(plan.worker_argv(), stdout=log, stderr=subprocess.STDOUT, env=plan.env())
            try:
                result = run_load(plan)
            finally:
                joined.wait(timeout=30)
    assert result.overran is None, result.output_tail
    totals = read_totals(plan.csv_prefix)
    section = distributed_section(plan, result)
    assert section is not None
    assert (section["master"], section["workers_expected"], section["workers_started"]) == (f"127.0.0.1:{port}", 2, 1)
    workers = section["workers"]
    assert all(w["requests"] > 0 and w["listener"] for w in workers), workers
    # Only the worker run_load started is measured here; the other is "elsewhere".
    assert sorted((w["local"], w["pid"]) for w in workers) == [(False, joined.pid), (True, result.workers[0].pid)]
    # Locust's totals (the master's --json-file) are exactly the sum of what each worker reported.
    assert sum(w["requests"] for w in workers) == totals.requests.total
    assert sum(w["failures"] for w in workers) == totals.requests.failures > 0
    # ...and so are the listener's 1-s windows and its failures table, merged on the master.
    windows = [json.loads(line) for line in plan.windows.read_text().splitlines()[1:]]
    assert sum(w["num_requests"] for w in windows) == totals.requests.total
    assert read_errors(plan.errors, start=0.0).failure_count == totals.requests.failures
    assert max(read_windows(plan.windows, start=0.0).users) == 4
    # The worker started here has its own log, and its CPU measured to its exit.
    (measured,) = result.workers
    assert plan.worker_log(1).is_file()
    assert measured.exit_code == 0
    assert measured.cpu_seconds > 0
    assert 0 < measured.busiest_percent < 200


def test_the_rate_is_delivered_in_total_by_two_worker_processes(tmp_path: Path) -> None:
    rate = 40.0
    with serving(Target(answer_s=0.002)) as target:
        plan = replace(_plan(tmp_path, PACED_LOCUSTFILE, target.url, 20, 4, rate), workers=2)
        result = run_load(plan)
    arrivals = read_arrivals(plan.errors)
    assert arrivals is not None, result.output_tail
    assert arrivals.workers == 2
    assert arrivals.achieved_rate is not None
    assert abs(arrivals.achieved_rate - rate) <= 0.05 * rate, arrivals
    requests = {entry["name"]: entry["num_requests"] for entry in json.loads(plan.json_file.read_text())}
    assert requests["/"] == arrivals.started
    section = distributed_section(plan, result)
    assert section is not None
    # Each worker took its share of the one schedule: about half each.
    shares = sorted(w["requests"] for w in section["workers"])
    assert len(shares) == 2
    assert shares[0] >= 0.4 * sum(shares), shares


def test_a_worker_that_cannot_start_ends_the_run_at_once_with_its_own_error(tmp_path: Path) -> None:
    with serving(Target()) as target:
        plan = replace(_plan(tmp_path, WORKER_BREAKS_LOCUSTFILE, target.url, 2, 30, None), workers=2)
        with pytest.raises(LoadError, match="worker exited") as raised:
            run_load(plan)
    assert "this worker is missing a module" in str(raised.value)


def test_a_worker_killed_mid_run_is_reported_lost_and_the_totals_still_add_up(tmp_path: Path) -> None:
    killed: list[int] = []

    def kill_one_worker(elapsed: float) -> None:
        # Well into the load (workers start in 1-3 s, the load lasts 10 s): SIGKILL one worker, once. The
        # master misses its heartbeats within about 3 s (Locust's HEARTBEAT_LIVENESS).
        if killed or elapsed < 5:
            return
        workers = [c for c in psutil.Process().children() if "--worker" in c.cmdline()]
        if workers:
            workers[0].send_signal(signal.SIGKILL)
            killed.append(workers[0].pid)

    with serving(Target()) as target:
        plan = replace(_plan(tmp_path, PACED_LOCUSTFILE, target.url, 4, 10, None), workers=2)
        result = run_load(plan, on_tick=kill_one_worker)
    assert killed, "no worker was running to kill"
    section = distributed_section(plan, result)
    assert section is not None
    by_pid = {w["pid"]: w for w in section["workers"]}
    lost, kept = by_pid[killed[0]], next(w for pid, w in by_pid.items() if pid != killed[0])
    assert lost["exit_code"] == -signal.SIGKILL
    assert lost["missing"] is True
    assert (kept["exit_code"], kept["missing"]) == (0, False)
    # What the lost worker reported before it died is in Locust's totals, and nothing else of it.
    assert sum(w["requests"] for w in section["workers"]) == read_totals(plan.csv_prefix).requests.total


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
