"""stackprobe end to end: real stacks, real Locust traffic, real OOM kills, real exit codes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import docker
import jsonschema
import pytest

from tests.conftest import ROOT, project_containers, read_env_file
from tests.probe.conftest import PROJECT_PREFIXES, STACKS, ProbeRun

pytestmark = pytest.mark.probe

SCHEMA = json.loads((Path(__file__).parents[2] / "stackprobe" / "report" / "schema.json").read_text())
GROWER = STACKS / "grower"


def _leftover_containers(project_prefix: str) -> list[str]:
    client = docker.from_env()
    try:
        return project_containers(client, project_prefix)
    finally:
        client.close()


def _explain(run: ProbeRun) -> str:
    return f"exit {run.exit_code}\n--- stdout ---\n{run.stdout[-3000:]}\n--- stderr ---\n{run.stderr[-3000:]}"


def test_bundled_stack_under_128_mib_passes_with_no_lost_write(run_stackprobe) -> None:
    # Latency on a shared CI machine is not what this test pins: the SLO here is about errors only.
    run = run_stackprobe(
        "run", "--memory", "app=128m,db=256m", "--users", "10", "--spawn-rate", "10", "--duration", "15s",
        "--slo", "errors<1%",
    )  # fmt: skip
    assert run.exit_code == 0, _explain(run)
    report = run.report
    jsonschema.validate(report, SCHEMA)
    assert report["verdict"] == "pass"
    assert report["limits"]["memory_applied_bytes"] == report["limits"]["memswap_applied_bytes"] == 134217728
    assert report["limits"]["applied_matches"] is True
    assert report["limits"]["others"] == [
        {
            "service": "db",
            "memory_requested_bytes": 268435456,
            "memory_applied_bytes": 268435456,
            "applied_matches": True,
            "problems": [],
        }
    ]
    assert report["writes"]["acknowledged"] > 0
    assert report["writes"]["lost"] == 0
    # Every write verified through the listing the locustfile declares: none needed reading back alone.
    listing = report["writes"]["listing"]
    assert (listing["url"], listing["complete"], listing["problem"]) == ("/users?limit=500", True, None)
    # 2 % of them (at least 100) read back alone as well, to check the listing's word.
    assert listing["spot_check_disagreed"] == 0
    assert listing["spot_checked"] == min(
        report["writes"]["acknowledged"], max(100, -(-report["writes"]["acknowledged"] // 50))
    )
    assert (
        listing["verified"] + listing["spot_checked"]
        == report["writes"]["verified"]
        == report["writes"]["acknowledged"]
    )
    assert listing["records"] >= report["writes"]["acknowledged"]
    assert listing["pages"] == max(1, -(-listing["records"] // 500))  # 500 a page, the last one partial
    assert report["requests"]["failures"] == 0
    assert report["oom_kills"] == report["restarts"] == 0
    assert 0 < report["memory"]["peak_bytes"] < 134217728
    assert (run.out / "report.html").is_file()
    assert (run.out / "locust_stats_history.csv").is_file()
    assert "verdict" in run.stdout.lower()


def test_service_outgrowing_its_limit_is_recorded_as_oom_killed_and_fails(run_stackprobe) -> None:
    run = run_stackprobe(
        "run", "--compose-file", str(GROWER / "compose.yaml"), "--service", "grower",
        "--locustfile", str(GROWER / "locustfile.py"), "--users", "2", "--duration", "12s", "--slo", "errors<100%",
    )  # fmt: skip
    assert run.exit_code == 1, _explain(run)
    report = run.report
    jsonschema.validate(report, SCHEMA)
    assert report["limits"]["memory_applied_bytes"] == 48 * 1024 * 1024
    # A second OOM kill needs requests that reached the restarted container: its port survived the restart.
    assert report["oom_kills"] >= 2, _explain(run)
    # Counted by the kernel's counter (PID-1 kills it could not show are recovered from die events), with
    # the engine's oom events reported beside it.
    assert "the kernel's oom_kill counter" in report["oom_kills_source"], report["oom_kills_source"]
    assert report["oom_events"] >= 1
    assert report["restarts"] >= 1
    assert any(event["action"] == "oom" for event in report["events"])
    assert report["writes"]["applicable"] is False
    assert report["verdict"] == "fail"


def test_limit_that_compose_leaves_unapplied_is_inconclusive_not_reported_as_throttled(run_stackprobe) -> None:
    run = run_stackprobe(
        "run", "--compose-file", str(GROWER / "compose.nolimit.yaml"), "--service", "grower",
        "--locustfile", str(GROWER / "locustfile.py"), "--users", "1", "--duration", "3s", "--slo", "errors<100%",
    )  # fmt: skip
    # Nothing was seen to go wrong, but the run did not test what it was meant to: no limit was in force.
    assert run.exit_code == 3, _explain(run)
    report = run.report
    jsonschema.validate(report, SCHEMA)
    assert report["verdict"] == "inconclusive"
    assert any(r.startswith("inconclusive: limits not in force as asked") for r in report["reasons"]), report["reasons"]
    limits = report["limits"]
    assert limits["memory_applied_bytes"] is None
    assert limits["applied_matches"] is False
    assert any("not" in problem and "limit" in problem for problem in limits["problems"])


def test_compose_file_compose_rejects_exits_2_with_composes_reason(run_stackprobe) -> None:
    run = run_stackprobe(
        "run", "--compose-file", str(GROWER / "compose.rejected.yaml"), "--service", "grower",
        "--locustfile", str(GROWER / "locustfile.py"),
    )  # fmt: skip
    assert run.exit_code == 2, _explain(run)
    assert "additional properties 'resources' not allowed" in run.stderr
    assert "Traceback" not in run.stderr


def test_sigterm_mid_run_tears_the_stack_down_and_exits_143(tmp_path: Path) -> None:
    # How CI runners cancel a job: SIGTERM, then SIGKILL after a grace period.
    env = {**os.environ, **{k: v for k, v in read_env_file().items() if k.endswith("_IMAGE")}}
    argv = [
        sys.executable, "-m", "stackprobe", "run", "--compose-file", str(GROWER / "compose.nolimit.yaml"),
        "--service", "grower", "--locustfile", str(GROWER / "locustfile.py"), "--users", "1",
        "--duration", "5m", "--out", str(tmp_path / "report"),
    ]  # fmt: skip
    stdout = tmp_path / "stdout.txt"
    with stdout.open("w") as sink:
        process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=sink, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 180
        while "Target grower" not in stdout.read_text():
            assert process.poll() is None, f"stackprobe exited early:\n{stdout.read_text()}"
            assert time.monotonic() < deadline, "the stack never came up"
            time.sleep(0.2)
        assert _leftover_containers(f"stackprobe-{process.pid}-"), "no container to tear down"
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 143, stderr
    # Said only when the teardown reported that nothing of the project is left.
    assert "terminated; the stack was torn down" in stderr
    assert _leftover_containers(f"stackprobe-{process.pid}-") == []


def test_no_container_is_left_behind_by_the_runs_above() -> None:
    assert PROJECT_PREFIXES, "the runs above recorded no project"
    assert [name for prefix in PROJECT_PREFIXES for name in _leftover_containers(prefix)] == []
