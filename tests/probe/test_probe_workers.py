"""stackprobe with Locust's own master and two workers against the bundled stack, end to end."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from tests.probe.test_probe_run import SCHEMA, _explain, _leftover_containers

pytestmark = pytest.mark.probe


def test_two_workers_totals_are_the_sum_of_each_workers_requests_and_every_write_is_audited(run_stackprobe) -> None:
    run = run_stackprobe(
        "run", "--workers", "2", "--users", "10", "--spawn-rate", "10", "--duration", "15s", "--slo", "errors<1%",
    )  # fmt: skip
    assert run.exit_code == 0, _explain(run)
    report = run.report
    jsonschema.validate(report, SCHEMA)
    dist = report["load"]["distributed"]
    workers = dist["workers"]
    assert (dist["workers_started"], dist["workers_expected"], len(workers)) == (2, 2, 2)
    assert all(w["local"] and w["listener"] and w["requests"] > 0 for w in workers), workers
    # Both followed their master to the end: none was lost on the way.
    assert [(w["exit_code"], w["missing"]) for w in workers] == [(0, False), (0, False)]
    assert len({w["pid"] for w in workers}) == 2
    # Locust's totals are what the two workers sent, and so are stackprobe's 1-s windows.
    total = report["requests"]["total"]
    assert sum(w["requests"] for w in workers) == total > 0
    assert sum(w["failures"] for w in workers) == report["requests"]["failures"]
    windows = [json.loads(line) for line in (run.out / "locust_windows.jsonl").read_text().splitlines()[1:]]
    assert sum(w["num_requests"] for w in windows) == total
    # Both workers appended to one write log, and the audit read back every write they were told was made.
    assert report["writes"]["acknowledged"] > 0
    assert report["writes"]["verified"] == report["writes"]["acknowledged"]
    # Each worker's CPU is measured, and neither was the bottleneck at 10 users.
    assert all(w["cpu_percent"] is not None and 0 < w["cpu_busiest_percent"] < 90 for w in workers), workers
    assert dist["generator_bound"] is False
    assert "worker" in run.stdout
    assert _leftover_containers(run.project_prefix) == []
    assert Path(run.out / "locust_worker_2.log").is_file()
