"""Locust run by stackprobe in a subprocess: what it leaves in the output folder."""

from __future__ import annotations

import json
from pathlib import Path

from stackprobe.load import LoadPlan, run_load

# Makes no request: the test is about the files around a run, not traffic.
IDLE_LOCUSTFILE = """
from locust import User, constant, task


class Idle(User):
    wait_time = constant(0.2)

    @task
    def nothing(self):
        pass
"""


def _plan(tmp_path: Path) -> LoadPlan:
    locustfile = tmp_path / "idle.py"
    locustfile.write_text(IDLE_LOCUSTFILE)
    return LoadPlan(
        locustfile=locustfile,
        host="http://127.0.0.1:9",
        users=1,
        spawn_rate=1,
        duration_s=1,
        shape="steady",
        slo="",
        out=tmp_path / "out",
    )


def test_a_run_in_a_used_folder_keeps_nothing_of_the_earlier_run(tmp_path: Path) -> None:
    plan = _plan(tmp_path)
    plan.out.mkdir()
    earlier = {"location": "/users/1", "expect": {"id": 1, "name": "from an earlier run"}}
    plan.write_log.write_text(json.dumps(earlier) + "\n")
    stale_json = Path(f"{plan.csv_prefix}.json")
    stale_json.write_text('[{"name": "stale", "num_requests": 99}]')

    result = run_load(plan)

    assert result.exit_code == 0
    assert not plan.write_log.exists(), "the earlier run's acknowledged writes would be audited again"
    assert "stale" not in stale_json.read_text()


def test_outputs_name_every_file_locust_writes(tmp_path: Path) -> None:
    plan = _plan(tmp_path)
    run_load(plan)
    written = {path.name for path in plan.out.iterdir()}
    assert written <= {path.name for path in plan.outputs()}
