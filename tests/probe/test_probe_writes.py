"""A service that forgets what it acknowledged, killed mid-run: the write audit must catch the loss.

stacks/lossy/forgetful.py keeps users in memory only and has a restart policy. The test kills it the way
the OOM killer does (SIGKILL to the container's process, found through the Docker SDK; `docker kill` would
mark the container stopped by hand, and its restart policy would not bring it back), while `stackprobe
run` loads it with the bundled loadtests/. Its write log is then turned into history.jsonl and checked.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
import time
from collections.abc import Callable
from importlib import resources
from pathlib import Path

import docker
import jsonschema
import pytest

from stackprobe.history import write_history
from tests.conftest import ROOT
from tests.probe.conftest import STACKS, ProbeRun

pytestmark = pytest.mark.probe

LOSSY = STACKS / "lossy" / "compose.yaml"
CONFIG_LABEL = "com.docker.compose.project.config_files"
# Kill once this many creates were acknowledged and flushed to the write log (it appends at least once a second).
ACKNOWLEDGED_BEFORE_KILL = 20


def _acknowledged(write_log: Path) -> int:
    with contextlib.suppress(FileNotFoundError):
        return sum(1 for line in write_log.read_bytes().splitlines() if b'"type": "ok"' in line)
    return 0


def _kill_when_written(client: docker.DockerClient, write_log: Path, killed: list[str], stop: threading.Event) -> None:
    """SIGKILL the lossy app's process (as the OOM killer would) once enough creates were acknowledged."""
    while not stop.wait(0.2):
        if _acknowledged(write_log) < ACKNOWLEDGED_BEFORE_KILL:
            continue
        for container in client.containers.list(filters={"label": CONFIG_LABEL}):
            if str(LOSSY) in container.labels[CONFIG_LABEL] and container.name.startswith("stackprobe-"):
                os.kill(container.attrs["State"]["Pid"], signal.SIGKILL)
                killed.append(container.name)
                return


def test_a_service_that_forgets_acknowledged_writes_when_killed_fails_the_run_with_them_lost(
    run_stackprobe: Callable[..., ProbeRun], client: docker.DockerClient, tmp_path: Path
) -> None:
    out = tmp_path / "report"
    killed: list[str] = []
    stop = threading.Event()
    killer = threading.Thread(target=_kill_when_written, args=(client, out / "writes.jsonl", killed, stop))
    killer.start()
    try:
        run = run_stackprobe(
            "run", "--compose-file", str(LOSSY), "--service", "app", "--locustfile", str(ROOT / "loadtests"),
            "--memory", "64m", "--users", "4", "--spawn-rate", "4", "--duration", "6s", "--slo", "p95<10s",
            "--out", str(out), timeout=300,
        )  # fmt: skip
    finally:
        stop.set()
        killer.join()
    explain = f"exit {run.exit_code}\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
    assert killed, f"the app was never killed\n{explain}"
    assert run.exit_code == 1, explain
    writes = run.report["writes"]
    # Everything acknowledged before the kill was forgotten: at least those the killer counted are lost.
    assert writes["lost"] >= ACKNOWLEDGED_BEFORE_KILL, writes
    assert writes["verified"] + writes["lost"] == writes["acknowledged"], writes
    # The listing showed what the service still holds; the writes missing from it were read back alone, and lost.
    assert writes["listing"]["complete"], writes["listing"]
    assert writes["listing"]["verified"] + writes["listing"]["spot_checked"] == writes["verified"], writes["listing"]
    reasons = run.report["reasons"]
    assert any(r == f"{writes['lost']} of {writes['acknowledged']} acknowledged writes lost" for r in reasons), reasons

    # The run's write log makes a history that matches its schema, event for event.
    summary = write_history(out / "writes.jsonl", tmp_path / "history.jsonl", start=time.time())
    assert summary is not None
    schema = json.loads((resources.files("stackprobe.report") / "history.schema.json").read_text(encoding="utf-8"))
    history = [json.loads(line) for line in summary.path.read_text().splitlines()]
    for event in history:
        jsonschema.validate(event, schema)
    assert summary.events["ok"] == writes["acknowledged"]
    assert summary.events["invoke"] >= summary.events["ok"] + summary.events["fail"] + summary.events["info"]
    assert [e["index"] for e in history] == list(range(len(history)))
    assert [e["time"] for e in history] == sorted(e["time"] for e in history)
