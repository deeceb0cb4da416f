"""One real-container run per kind of fault the prober must see: each stack has one fault, each test pins
what the run reports about it (exit code, verdict reasons and the figure that shows it).

The stacks are in stacks/kinds/: one test-only server (server.py) whose fault is chosen by environment
variables in each compose file, and three locustfiles. Runs are short (3-10 s, 1-5 users): the machine is
shared, and only what these runs made is judged.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import docker
import docker.errors
import jsonschema
import pytest

from stackprobe.stack import free_ports, removal_command
from tests.conftest import project_containers
from tests.probe.conftest import STACKS, ProbeRun

pytestmark = pytest.mark.probe

SCHEMA = json.loads((Path(__file__).parents[2] / "stackprobe" / "report" / "schema.json").read_text())
KINDS = STACKS / "kinds"
PLAIN = KINDS / "plain.py"
MIB = 1024 * 1024
PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"
# The project prefix of every run in this module, for the leftover check at its end.
RUNS: list[str] = []


@pytest.fixture
def probe(run_stackprobe: Callable[..., ProbeRun]) -> Callable[..., ProbeRun]:
    """Run `stackprobe run` on a kinds stack: `probe(compose_file, *flags)`, service app, short and small."""

    def run(compose: str, *flags: str, locustfile: Path = PLAIN) -> ProbeRun:
        finished = run_stackprobe(
            "run", "--compose-file", str(KINDS / compose), "--service", "app", "--locustfile", str(locustfile),
            *flags, timeout=300,
        )  # fmt: skip
        RUNS.append(finished.project_prefix)
        return finished

    return run


def _explain(run: ProbeRun) -> str:
    return f"exit {run.exit_code}\n--- stdout ---\n{run.stdout[-3000:]}\n--- stderr ---\n{run.stderr[-3000:]}"


def _report(run: ProbeRun) -> dict[str, Any]:
    """Return the run's report.json, validated against the schema."""
    assert (run.out / "report.json").is_file(), f"no report written\n{_explain(run)}"
    report = run.report
    jsonschema.validate(report, SCHEMA)
    return report


def _containers(client: docker.DockerClient, project_prefix: str) -> list[str]:
    return project_containers(client, project_prefix)


def _remove_leftovers(client: docker.DockerClient, project_prefix: str, *projects: str) -> None:
    """Remove what a run left (after --keep-up or a failure) by stackprobe's own removal command, per project."""
    found = {c.labels[PROJECT_LABEL] for c in client.containers.list(all=True, filters={"label": PROJECT_LABEL})}
    for project in {p for p in found if p.startswith(project_prefix)} | {p for p in projects if p}:
        subprocess.run(["sh", "-c", removal_command(project)], capture_output=True, timeout=180, check=False)


def _in_volume(client: docker.DockerClient, image: str, volume: str, script: str) -> str:
    """Run `sh -c script` in a throwaway container with `volume` at /data; return its output."""
    output = client.containers.run(
        image, ["sh", "-c", script], volumes={volume: {"bind": "/data", "mode": "rw"}}, remove=True
    )
    return output.decode()


def test_a_volume_with_a_name_of_its_own_is_refused_then_used_and_kept_with_allow_shared_volumes(
    probe, client: docker.DockerClient, python_image: str
) -> None:
    volume = f"spkinds-data-{secrets.token_hex(4)}"
    marker = f"written before the run {secrets.token_hex(8)}"
    client.volumes.create(volume)
    first_run = len(RUNS)
    try:
        _in_volume(client, python_image, volume, f"echo '{marker}' > /data/marker")
        os.environ["KINDS_VOLUME"] = volume  # the compose file's volume name; restored after the test

        refused = probe(
            "compose.volume.yaml", "--memory", "64m", "--users", "1", "--duration", "3s", "--slo", "errors<1%"
        )
        assert refused.exit_code == 2, _explain(refused)
        assert volume in refused.stderr
        assert "--allow-shared-volumes" in refused.stderr
        assert not (refused.out / "report.json").exists()

        allowed = probe(
            "compose.volume.yaml", "--allow-shared-volumes", "--memory", "64m", "--users", "1", "--duration", "3s",
            "--slo", "errors<1%",
        )  # fmt: skip
        assert allowed.exit_code in (0, 1, 3), _explain(allowed)
        report = _report(allowed)
        assert report["requests"]["total"] > 0, _explain(allowed)
        # Used, never removed: the volume and what it held are still there after the teardown.
        assert _containers(client, allowed.project_prefix) == []
        client.volumes.get(volume)
        assert _in_volume(client, python_image, volume, "cat /data/marker").strip() == marker
    finally:
        for prefix in RUNS[first_run:]:
            _remove_leftovers(client, prefix)
        with contextlib.suppress(docker.errors.NotFound):
            client.volumes.get(volume).remove(force=True)


def test_a_target_that_exits_with_code_3_mid_load_fails_the_run_naming_the_container(probe) -> None:
    # The SLO has no error term: the exit alone must fail the run.
    run = probe("compose.exit.yaml", "--memory", "64m", "--users", "1", "--duration", "8s", "--slo", "p95<10s")
    assert run.exit_code == 1, _explain(run)
    report = _report(run)
    assert report["verdict"] == "fail"
    assert report["target_exits"], report["reasons"]
    assert all("exited with code 3" in exit_ for exit_ in report["target_exits"]), report["target_exits"]
    assert any("target container" in r and "exited with code 3" in r for r in report["reasons"]), report["reasons"]
    assert any(e["action"] == "die" and e["exit_code"] == 3 for e in report["events"]), report["events"]
    assert report["restarts"] == 0


def test_exceptions_raised_in_the_locustfiles_task_fail_the_run_with_their_count_and_times(probe) -> None:
    run = probe(
        "compose.yaml", "--memory", "64m", "--users", "2", "--duration", "4s", "--slo", "errors<1%",
        locustfile=KINDS / "raiser.py",
    )  # fmt: skip
    assert run.exit_code == 1, _explain(run)
    report = _report(run)
    assert report["verdict"] == "fail"
    assert report["requests"]["exceptions"] > 0
    exceptions = report["client_errors"]["exceptions"]
    assert exceptions, report["client_errors"]
    first = exceptions[0]
    assert first["count"] > 0
    assert "the task broke after its request" in first["message"] + first["traceback"]
    assert first["first_t"] is not None
    assert first["last_t"] is not None
    assert first["first_t"] <= first["last_t"]
    assert report["requests"]["exceptions"] == sum(e["count"] for e in exceptions)
    assert any("exception" in reason for reason in report["reasons"]), report["reasons"]


def test_a_limit_too_small_to_start_under_is_a_failed_run_with_a_report_not_a_setup_error(probe) -> None:
    run = probe("compose.small.yaml", "--memory", "32m", "--users", "1", "--duration", "3s", "--slo", "errors<1%")
    assert run.exit_code == 1, _explain(run)
    report = _report(run)
    assert report["verdict"] == "fail"
    assert report["oom_kills"] >= 1, report["reasons"]
    assert report["target_exits"], report["reasons"]
    assert any("while the stack started" in reason for reason in report["reasons"]), report["reasons"]
    assert report["limits"]["memory_applied_bytes"] == 32 * MIB


def test_a_service_without_a_healthcheck_that_listens_late_is_loaded_only_once_it_answers(probe) -> None:
    run = probe("compose.late.yaml", "--memory", "64m", "--users", "2", "--duration", "4s", "--slo", "errors<1%")
    report = _report(run)
    assert report["requests"]["total"] > 0, _explain(run)
    assert report["requests"]["failures"] == 0, report["client_errors"]
    # The load began after the service listened, 3 s after its container started (Compose's --wait only
    # waited for "running").
    (started,) = [e["t"] for e in report["events"] if e["action"] == "start"]
    assert started <= -2.5, report["events"]
    (errors,) = report["slo"]["checks"]
    assert errors["metric"] == "errors"
    assert errors["passed"] is True
    assert run.exit_code == 0, _explain(run)


def test_a_service_that_only_exposes_its_port_is_probed_on_a_loopback_port(probe) -> None:
    run = probe("compose.exposed.yaml", "--memory", "64m", "--users", "1", "--duration", "3s", "--slo", "errors<1%")
    assert run.exit_code in (0, 1), _explain(run)
    report = _report(run)
    assert report["target"]["url"].startswith("http://127.0.0.1:")
    assert report["requests"]["total"] > 0
    assert report["requests"]["failures"] == 0, report["client_errors"]


def test_a_shape_asked_of_a_locustfile_without_one_is_refused_and_without_it_no_shape_is_reported(probe) -> None:
    refused = probe("compose.yaml", "--memory", "64m", "--shape", "spike", "--users", "1", "--duration", "3s")
    assert refused.exit_code == 2, _explain(refused)
    assert "offers no load shape" in refused.stderr
    assert not (refused.out / "report.json").exists()

    run = probe("compose.yaml", "--memory", "64m", "--users", "1", "--duration", "3s", "--slo", "errors<1%")
    assert run.exit_code == 0, _explain(run)
    report = _report(run)
    assert report["load"]["shape"] is None
    assert report["requests"]["total"] > 0


def test_writes_under_a_url_with_a_path_are_all_read_back_there(probe) -> None:
    (port,) = free_ports(1)
    os.environ["KINDS_API_PORT"] = str(port)  # the file publishes on it; restored after the test
    url = f"http://127.0.0.1:{port}/api"
    run = probe(
        "compose.api.yaml", "--url", url, "--memory", "64m", "--users", "2", "--duration", "4s", "--slo", "errors<1%",
        locustfile=KINDS / "writer.py",
    )  # fmt: skip
    assert run.exit_code == 0, _explain(run)
    report = _report(run)
    assert report["target"]["url"] == url
    assert report["requests"]["failures"] == 0
    writes = report["writes"]
    assert writes["applicable"] is True
    assert writes["acknowledged"] > 0
    assert writes["verified"] == writes["acknowledged"], writes
    assert writes["lost"] == 0, writes
    assert writes["unverified"] == 0, writes


def test_a_worker_oom_killed_twice_while_pid_1_serves_is_two_kills_and_no_restart(probe) -> None:
    run = probe("compose.workers.yaml", "--memory", "64m", "--users", "1", "--duration", "6s", "--slo", "p95<10s")
    assert run.exit_code == 1, _explain(run)
    report = _report(run)
    assert report["verdict"] == "fail"
    assert report["oom_kills"] == 2, (report["oom_kills_source"], report["reasons"])
    assert report["oom_kills_source"].startswith("the kernel's oom_kill counter"), report["oom_kills_source"]
    assert "recovered" not in report["oom_kills_source"]
    assert report["restarts"] == 0
    assert report["target_exits"] == []
    assert any("2 OOM kills" in reason for reason in report["reasons"]), report["reasons"]


def test_a_100_mib_spike_between_samples_is_the_reported_peak(probe) -> None:
    run = probe("compose.spike.yaml", "--memory", "256m", "--users", "2", "--duration", "6s", "--slo", "errors<1%")
    assert run.exit_code in (0, 1, 3), _explain(run)
    report = _report(run)
    memory = report["memory"]
    assert report["requests"]["total"] >= 50, "the spike's request was never made"
    assert memory["peak_bytes"] >= 100 * MIB, memory
    assert "high-water mark" in memory["peak_source"], memory["peak_source"]
    assert memory["peak_bytes"] == memory["peak_kernel_bytes"]
    # The samples may or may not have caught the 200 ms spike; they never see more than the kernel.
    assert memory["peak_sampled_bytes"] is not None
    assert memory["peak_sampled_bytes"] <= memory["peak_bytes"]
    print(f"spike: kernel peak {memory['peak_bytes']}, sampled peak {memory['peak_sampled_bytes']}")


def _memory_cgroup(container_id: str) -> Path:
    return Path("/sys/fs/cgroup/memory/docker") / container_id


def test_the_bundled_stacks_reported_peak_and_oom_kills_agree_with_its_cgroup_read_afterwards(
    run_stackprobe, client: docker.DockerClient
) -> None:
    run = run_stackprobe("run", "--duration", "10s", "--users", "5", "--slo", "errors<1%", "--keep-up", timeout=600)
    RUNS.append(run.project_prefix)
    project = ""
    try:
        report = _report(run)
        project = report["target"]["project"]
        assert project.startswith(run.project_prefix)
        assert run.exit_code == 0, _explain(run)
        assert "Left running; to remove it:" in run.stdout
        (app,) = client.containers.list(filters={"label": [f"{PROJECT_LABEL}={project}", f"{SERVICE_LABEL}=app"]})
        cgroup = _memory_cgroup(app.id)
        if not cgroup.is_dir():
            pytest.fail(f"no cgroup v1 memory folder {cgroup} for {app.name}")
        high_water = int((cgroup / "memory.max_usage_in_bytes").read_text())
        oom_control = dict(line.split() for line in (cgroup / "memory.oom_control").read_text().splitlines())
        memory = report["memory"]
        print(f"bundled: report peak {memory['peak_bytes']} ({memory['peak_source']}), cgroup now {high_water}")
        assert "memory.max_usage_in_bytes" in memory["peak_source"]
        # The report's mark was reset when the load started; the mark read now covers that and more.
        assert memory["peak_bytes"] <= high_water <= memory["peak_bytes"] * 1.05
        assert report["oom_kills"] == int(oom_control["oom_kill"]) == 0
    finally:
        # What the run printed ("Left running; to remove it: ...") is removal_command(project).
        _remove_leftovers(client, run.project_prefix, project)
    assert _containers(client, run.project_prefix) == []


def test_no_container_is_left_behind_by_the_runs_above(client: docker.DockerClient) -> None:
    assert RUNS, "the runs above recorded no project"
    assert [name for prefix in RUNS for name in _containers(client, prefix)] == []
