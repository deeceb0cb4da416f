"""What a run's teardown may touch, on real containers: only what the run made, and always to the end.

Every name here is unique to the test, and each test removes what it made (by exact name or by its own
project's label) in a finally, whatever the engine holds besides.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import docker
import docker.errors
import pytest

from stackprobe.compose_model import plan_access, service_profiles, shared_volumes
from stackprobe.stack import PROJECT_LABEL, ServiceOverride, Stack, free_ports, unique_project_name
from tests.conftest import ROOT
from tests.probe.conftest import STACKS

pytestmark = pytest.mark.probe

OWNERSHIP = STACKS / "ownership"


def _remove_project(client: docker.DockerClient, project: str) -> None:
    """Remove whatever of `project` a failed test left: containers (with their anonymous volumes), networks."""
    label = f"{PROJECT_LABEL}={project}"
    for container in client.containers.list(all=True, filters={"label": label}):
        container.remove(force=True, v=True)
    for network in client.networks.list(filters={"label": label}):
        network.remove()


def _remove_volume(client: docker.DockerClient, name: str) -> None:
    with contextlib.suppress(docker.errors.NotFound):
        client.volumes.get(name).remove(force=True)


def _remove_image(client: docker.DockerClient, name: str) -> None:
    with contextlib.suppress(docker.errors.ImageNotFound):
        client.images.remove(name)


def _volume_exists(client: docker.DockerClient, name: str) -> bool:
    try:
        client.volumes.get(name)
    except docker.errors.NotFound:
        return False
    return True


def _image_exists(client: docker.DockerClient, name: str) -> bool:
    try:
        client.images.get(name)
    except docker.errors.ImageNotFound:
        return False
    return True


def _get(url: str, timeout_s: float = 30) -> str:
    """GET url until it answers (the server starts after the container runs); return the body."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return response.read().decode()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_teardown_keeps_shared_volumes_and_the_files_image_tag(client, python_image) -> None:
    token = secrets.token_hex(4)
    project = unique_project_name("stackprobe-test-own")
    shared, created, external = (f"stackprobe-test-{kind}-{token}" for kind in ("shared", "created", "external"))
    tagged = f"stackprobe-test/tagged-{token}:1"
    stack = Stack(
        [OWNERSHIP / "compose.volumes.yaml"],
        project=project,
        env={
            "PYTHON_IMAGE": python_image,
            "TAGGED_IMAGE": tagged,
            "SHARED_VOLUME": shared,
            "CREATED_VOLUME": created,
            "EXTERNAL_VOLUME": external,
        },
    )
    anonymous: list[str] = []
    try:
        # The user's data, in a volume that existed before the run.
        client.volumes.create(shared)
        client.volumes.create(external)
        client.containers.run(
            python_image, ["sh", "-c", "echo keep > /d/marker"], volumes={shared: {"bind": "/d"}}, remove=True
        )
        assert shared_volumes(stack.config()) == sorted([shared, created, external])

        stack.up(build=True, wait_timeout=120)
        container = client.containers.get(stack.container_ids("built")[0])
        anonymous = [m["Name"] for m in container.attrs["Mounts"] if m["Destination"] == "/anon"]
        assert anonymous, container.attrs["Mounts"]
        assert _image_exists(client, f"{project}-built")
        assert _image_exists(client, tagged)

        teardown = stack.down()

        assert teardown.ok, teardown
        assert teardown.leftover_command == ""
        marker = client.containers.run(
            python_image, ["cat", "/d/marker"], volumes={shared: {"bind": "/d"}}, remove=True
        )
        assert marker.decode().strip() == "keep"
        assert _volume_exists(client, external)
        # Created by the run under a name of its own: labelled with the project, yet not the project's to remove.
        assert _volume_exists(client, created)
        assert teardown.kept_volumes == (created,)
        assert teardown.removed_volumes == (f"{project}_scoped",)
        assert not _volume_exists(client, f"{project}_scoped")
        assert not _volume_exists(client, anonymous[0])
        assert teardown.removed_images == (f"{project}-built:latest",)
        assert not _image_exists(client, f"{project}-built")
        assert _image_exists(client, tagged)
        assert client.containers.list(all=True, filters={"label": f"{PROJECT_LABEL}={project}"}) == []
    finally:
        stack.down()
        _remove_project(client, project)
        for name in (shared, created, external, f"{project}_scoped", *anonymous):
            _remove_volume(client, name)
        for name in (tagged, f"{project}-built"):
            _remove_image(client, name)


def test_target_in_a_profile_comes_up_with_its_profile_and_goes_down(client, python_image) -> None:
    project = unique_project_name("stackprobe-test-own")
    stack = Stack([OWNERSHIP / "compose.profiles.yaml"], project=project, env={"PYTHON_IMAGE": python_image})
    try:
        assert "target" not in stack.config()["services"]
        stack.profiles = service_profiles(stack.config(all_profiles=True), "target")
        assert stack.profiles == ("extra",)
        access = plan_access(stack.config(), "target")
        stack.overrides = {"target": ServiceOverride(ports=access.ports)}
        stack.up(build=False, wait_timeout=60)
        assert len(stack.container_ids("target")) == 1
        assert _get(stack.urls(access)[0])
        teardown = stack.down()
        assert teardown.ok, teardown
        assert client.containers.list(all=True, filters={"label": f"{PROJECT_LABEL}={project}"}) == []
    finally:
        stack.down()
        _remove_project(client, project)


def test_replicas_each_get_a_loopback_port_of_a_range(client, python_image) -> None:
    # As written the file publishes both replicas on one fixed host port: the second one cannot bind it,
    # which is why `up` failed on replicas. The plan publishes a range instead, one port per replica.
    project = unique_project_name("stackprobe-test-own")
    stack = Stack([OWNERSHIP / "compose.replicas.yaml"], project=project, env={"PYTHON_IMAGE": python_image})
    try:
        access = plan_access(stack.config(), "web")
        assert access.replicas == 2
        stack.overrides = {"web": ServiceOverride(memory_bytes=64 * 1024 * 1024, ports=access.ports)}
        stack.up(build=False, wait_timeout=60)
        urls = stack.urls(access)
        assert sorted(urls) == sorted(access.urls)
        hostnames = {_get(url) for url in urls}
        assert len(hostnames) == 2, hostnames  # two replicas, each reached on its own port
        assert stack.down().ok
    finally:
        stack.down()
        _remove_project(client, project)


def test_host_network_service_is_reached_on_its_own_loopback_port(client, python_image) -> None:
    project = unique_project_name("stackprobe-test-own")
    (port,) = free_ports(1)
    stack = Stack(
        [OWNERSHIP / "compose.hostnet.yaml"],
        project=project,
        env={"PYTHON_IMAGE": python_image, "HOST_PORT": str(port)},
    )
    try:
        access = plan_access(stack.config(), "web")
        assert (access.mode, access.ports, access.urls) == ("host", None, [f"http://127.0.0.1:{port}"])
        stack.overrides = {"web": ServiceOverride(memory_bytes=64 * 1024 * 1024, ports=access.ports)}
        stack.up(build=False, wait_timeout=60)
        assert _get(stack.urls(access)[0])
        assert stack.down().ok
    finally:
        stack.down()
        _remove_project(client, project)


DRIVER = """
import dataclasses, json, signal, sys, time
from pathlib import Path
from stackprobe.stack import Stack

class Terminated(KeyboardInterrupt):
    pass

def on_sigterm(signum, frame):  # as stackprobe's command line does
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise Terminated()

signal.signal(signal.SIGTERM, on_sigterm)
stack = Stack([Path(sys.argv[1])], project=sys.argv[2])
try:
    try:
        stack.up(build=False, wait_timeout=60)
        print("up", flush=True)
        while True:
            time.sleep(0.05)
    finally:
        print("down", time.time(), flush=True)
        stack.down()
except KeyboardInterrupt as exc:
    print("raised", type(exc).__name__, flush=True)
print("teardown", json.dumps(dataclasses.asdict(stack.teardown)), flush=True)
"""


def test_teardown_outlasts_a_second_ctrl_c_and_sigterm_then_delivers_them(client, python_image, tmp_path: Path) -> None:
    project = unique_project_name("stackprobe-test-own")
    out = tmp_path / "out"
    out.mkdir()
    env = {**os.environ, "PYTHON_IMAGE": python_image, "OUT_DIR": str(out), "LINGER_S": "3"}
    stdout = tmp_path / "stdout.txt"
    argv = [sys.executable, "-c", DRIVER, str(OWNERSHIP / "compose.signals.yaml"), project]
    driver: subprocess.Popen[str] | None = None
    try:
        with stdout.open("w") as sink:
            # A session of its own, as a shell gives a job: the test signals the group as a terminal would.
            driver = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=sink, stderr=subprocess.PIPE, text=True,
                                      start_new_session=True)  # fmt: skip
        deadline = time.monotonic() + 120
        while "up" not in stdout.read_text().split():
            assert driver.poll() is None, f"driver exited early: {driver.stderr.read() if driver.stderr else ''}"
            assert time.monotonic() < deadline, "the stack never came up"
            time.sleep(0.1)
        sent = time.time()
        driver.send_signal(signal.SIGTERM)
        while not (out / "sigterm").exists():  # the service was told to stop: teardown is under way
            assert time.monotonic() < deadline, "teardown never reached the container"
            time.sleep(0.05)
        stopping = float((out / "sigterm").read_text())
        os.killpg(driver.pid, signal.SIGINT)  # Ctrl-C reaches the terminal's whole process group
        driver.send_signal(signal.SIGTERM)  # and CI runners repeat SIGTERM
        _, stderr = driver.communicate(timeout=120)
        finished = time.time()
    finally:
        if driver is not None and driver.poll() is None:
            driver.kill()
            driver.wait()
        _remove_project(client, project)
    lines = stdout.read_text().splitlines()
    down_started = float(next(line for line in lines if line.startswith("down ")).split()[1])
    teardown = json.loads(next(line for line in lines if line.startswith("teardown ")).split(" ", 1)[1])
    assert driver.returncode == 0, stderr
    assert down_started - sent < 1.0, lines
    assert stopping - sent < 2.0, (stopping - sent, lines)  # 0.2 s measured on an idle 2-core machine
    # The container lingers 3 s after its SIGTERM: the Ctrl-C came while teardown ran, and did not cut it.
    assert finished - stopping >= 2.5
    assert teardown["ok"] is True, teardown
    assert "raised KeyboardInterrupt" in lines  # the held Ctrl-C was delivered once teardown had ended
    assert client.containers.list(all=True, filters={"label": f"{PROJECT_LABEL}={project}"}) == []
