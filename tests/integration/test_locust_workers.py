"""Locust's own master and workers as stackprobe starts them (LoadPlan.workers), against an HTTP server here.

No Docker: the target is the small threaded `http.server` of test_locust_rate. Each run is a real master
and real `locust --worker` processes on this machine.
"""

from __future__ import annotations

import json
import socket
import subprocess
from dataclasses import replace
from pathlib import Path

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


def test_two_workers_requests_add_up_to_the_masters_totals_windows_and_failures(tmp_path: Path) -> None:
    with serving(Target()) as target:
        plan = replace(_plan(tmp_path, MIXED_LOCUSTFILE, target.url, 4, 4, None), workers=2)
        result = run_load(plan)
    assert result.overran is None, result.output_tail
    totals = read_totals(plan.csv_prefix)
    section = distributed_section(plan, result)
    assert section is not None
    workers = section["workers"]
    assert len(workers) == 2
    assert all(w["requests"] > 0 and w["local"] and w["listener"] for w in workers), workers
    assert {w["pid"] for w in workers} == {w.pid for w in result.workers}
    # Locust's totals (the master's --json-file) are exactly the sum of what each worker reported.
    assert sum(w["requests"] for w in workers) == totals.requests.total
    assert sum(w["failures"] for w in workers) == totals.requests.failures > 0
    # ...and so are the listener's 1-s windows and its failures table, merged on the master.
    windows = [json.loads(line) for line in plan.windows.read_text().splitlines()[1:]]
    assert sum(w["num_requests"] for w in windows) == totals.requests.total
    assert read_errors(plan.errors, start=0.0).failure_count == totals.requests.failures
    assert max(read_windows(plan.windows, start=0.0).users) == 4
    # Each worker has its own log, and its own CPU measured to its exit.
    for number, measured in enumerate(result.workers, start=1):
        assert plan.worker_log(number).is_file()
        assert measured.exit_code == 0
        assert measured.cpu_seconds > 0
        assert 0 < measured.busiest_percent < 200
    assert section["master"] == result.master
    assert result.master is not None
    assert result.master.startswith("127.0.0.1:")


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


def test_a_master_with_a_bind_address_waits_for_a_worker_that_joins_by_it(tmp_path: Path) -> None:
    # A worker from elsewhere, played here by one more `locust --worker` that the run did not start: the
    # master waits for both, then loads through both.
    with serving(Target()) as target:
        base = _plan(tmp_path, PACED_LOCUSTFILE, target.url, 2, 3, None)
        port = _free_port()
        plan = replace(base, workers=1, master_bind=("127.0.0.1", port), expect_workers=2)
        joining = plan.worker_argv()
        with (tmp_path / "joined.log").open("w") as log:
            worker = subprocess.Popen(joining, stdout=log, stderr=subprocess.STDOUT, env=plan.env())
            try:
                result = run_load(plan)
            finally:
                worker.wait(timeout=30)
    section = distributed_section(plan, result)
    assert section is not None
    assert section["master"] == f"127.0.0.1:{port}"
    assert section["workers_expected"] == 2
    assert section["workers_started"] == 1
    # Both joined and loaded; only the one started by run_load is measured (the other is "elsewhere").
    assert sorted(w["local"] for w in section["workers"]) == [False, True]
    assert all(w["requests"] > 0 for w in section["workers"])
    assert sum(w["requests"] for w in section["workers"]) == read_totals(plan.csv_prefix).requests.total


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
