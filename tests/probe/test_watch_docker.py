"""The Watcher against real containers: sampling rate, OOM kills, restarts, new containers, prompt stop."""

from __future__ import annotations

import contextlib
import os
import resource
import secrets
import statistics
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import docker
import pytest
from docker.models.containers import Container

from stackprobe.watch import Snapshot, Watcher
from tests.conftest import read_env_file

pytestmark = pytest.mark.probe

# Grows by 8 MiB every 50 ms: past a 64 MiB limit within a second.
GROW = "import time\nb = bytearray()\nwhile True:\n    b += bytearray(8 * 2**20)\n    time.sleep(0.05)\n"
STRICT_64M = {"mem_limit": "64m", "memswap_limit": "64m"}


class Project:
    """Containers of one throwaway Compose-labelled project, all removed at the end."""

    def __init__(self, client: docker.DockerClient, image: str) -> None:
        self.client = client
        self.image = image
        self.name = f"spwatch{secrets.token_hex(4)}"
        self.containers: list[Container] = []

    def run(self, service: str, command: list[str], *, index: int = 1, **options: Any) -> Container:
        """Start a container labelled as the given service of this project."""
        container = self.client.containers.run(
            self.image,
            command,
            detach=True,
            name=f"{self.name}-{service}-{index}",
            labels={"com.docker.compose.project": self.name, "com.docker.compose.service": service},
            **options,
        )
        self.containers.append(container)
        return container

    def remove_all(self) -> None:
        """Remove every container this project started."""
        for container in self.containers:
            with contextlib.suppress(docker.errors.NotFound):
                container.remove(force=True)


@pytest.fixture(scope="module")
def client() -> Iterator[docker.DockerClient]:
    """Return a Docker client, closed after the module so no socket is left open."""
    engine = docker.from_env()
    yield engine
    engine.close()


@pytest.fixture
def project(client: docker.DockerClient) -> Iterator[Project]:
    """Return a fresh project; its containers are removed whatever the test did."""
    image = os.environ.get("PYTHON_IMAGE") or read_env_file().get("PYTHON_IMAGE") or "python:3.12-slim"
    made = Project(client, image)
    try:
        yield made
    finally:
        made.remove_all()


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll until predicate holds, or fail naming what did not happen."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.2)


def status_of(container: Container) -> str:
    """Return the container's current status."""
    container.reload()
    return str(container.attrs["State"]["Status"])


def watch_threads() -> list[str]:
    """Return the names of the watcher's threads still alive."""
    return [thread.name for thread in threading.enumerate() if thread.name.startswith("stackprobe-")]


def test_two_containers_are_sampled_about_once_a_second_cheaply_and_stop_promptly(
    client: docker.DockerClient, project: Project
) -> None:
    project.run("app", ["sleep", "120"], **STRICT_64M)
    project.run("db", ["sleep", "120"])
    seen: list[Mapping[str, Snapshot]] = []
    watcher = Watcher(client, project.name, on_sample=seen.append)

    watcher.start()
    assert watcher.wait_for_samples(timeout=5)
    cpu_before, wall_before = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
    time.sleep(8)
    cpu_after, wall_after = resource.getrusage(resource.RUSAGE_SELF), time.monotonic()
    stop_began = time.monotonic()
    result = watcher.stop()
    stop_took = time.monotonic() - stop_began

    assert stop_took < 2.0
    assert watch_threads() == []
    assert result.problems == ()
    assert set(result.services) == {"app", "db"}
    for summary in result.services.values():
        gaps = [later - earlier for earlier, later in zip(summary.t, summary.t[1:], strict=False)]
        # The engine collects stats on a one-second tick; collection time makes each gap a little longer,
        # and a busy machine (a load test on the same cores) can delay one tick.
        assert len(summary.t) >= 7
        assert statistics.fmean(gaps) <= 1.1
        assert max(gaps) <= 2.0
        assert summary.peak_memory_bytes is not None
        assert summary.peak_memory_bytes > 0
    assert result.services["app"].limit_bytes == 67108864
    assert result.services["db"].limit_bytes is None
    assert result.oom_kills == result.restarts == 0
    cpu_seconds = (cpu_after.ru_utime + cpu_after.ru_stime) - (cpu_before.ru_utime + cpu_before.ru_stime)
    # Watching is meant to be nearly free next to the load; two containers cost well under 5 % of a core.
    assert cpu_seconds / (wall_after - wall_before) < 0.05
    assert seen
    assert set(seen[-1]) == {"app", "db"}
    assert seen[-1]["app"].limit_bytes == 67108864


def test_pid_1_oom_kills_and_policy_restarts_are_counted_exactly(client: docker.DockerClient, project: Project) -> None:
    with Watcher(client, project.name) as watcher:
        # Created after the watch began: the watcher must pick it up from its start event.
        web = project.run(
            "web", ["python3", "-c", GROW], restart_policy={"Name": "on-failure", "MaximumRetryCount": 2}, **STRICT_64M
        )
        wait_for(lambda: status_of(web) == "exited", 60, "the third OOM kill to end the container")
        time.sleep(0.5)  # let the last events arrive
    result = watcher.result

    assert web.attrs["RestartCount"] == 2
    assert web.attrs["State"]["ExitCode"] == 137
    assert result.oom_kills == 3
    assert result.restarts == 2
    summary = result.services["web"]
    assert (summary.oom_kills, summary.restarts) == (3, 2)
    actions = [(e.action, e.exit_code) for e in result.events]
    assert actions.count(("oom", None)) == 3
    assert actions.count(("die", 137)) == 3
    assert actions.count(("start", None)) == 3
    assert all(e.container == web.name and e.service == "web" for e in result.events)
    assert [e.t for e in result.events] == sorted(e.t for e in result.events)
    assert summary.peak_memory_bytes is not None
    assert summary.peak_memory_bytes <= 67108864


def test_a_worker_oom_is_counted_while_the_container_lives_on(client: docker.DockerClient, project: Project) -> None:
    with Watcher(client, project.name) as watcher:
        # PID 1 is the shell, like a server's main process; the OOM killer takes the larger child.
        app = project.run("app", ["sh", "-c", f"python3 -c '{GROW}'; sleep 120"], **STRICT_64M)
        wait_for(lambda: any(e.action == "oom" for e in watcher.events_so_far()), 30, "the child's OOM kill")
        time.sleep(1.5)  # a die, were there one, would have arrived by now
    result = watcher.result

    assert status_of(app) == "running"
    assert result.oom_kills == 1
    assert result.restarts == 0
    assert [e.action for e in result.events] == ["start", "oom"]


def test_a_replacement_container_of_a_service_is_picked_up(client: docker.DockerClient, project: Project) -> None:
    first = project.run("app", ["sleep", "120"], **STRICT_64M)
    with Watcher(client, project.name) as watcher:
        assert watcher.wait_for_samples(timeout=5)
        first.remove(force=True)
        # What `docker compose up` does on a changed service: a new container under the same service.
        second = project.run("app", ["sleep", "120"], index=2, **STRICT_64M)
        wait_for(
            lambda: watcher.latest().get("app", None) is not None and watcher.latest()["app"].container == second.name,
            10,
            "a sample of the new container",
        )
    result = watcher.result

    summary = result.services["app"]
    assert summary.containers == tuple(sorted((first.name, second.name)))
    assert result.restarts == 0
    assert watch_threads() == []


def test_only_the_named_services_are_watched(client: docker.DockerClient, project: Project) -> None:
    project.run("app", ["sleep", "120"], **STRICT_64M)
    project.run("db", ["sh", "-c", f"python3 -c '{GROW}'; sleep 120"], **STRICT_64M)
    with Watcher(client, project.name, services=["app"]) as watcher:
        assert watcher.wait_for_samples(timeout=5)
        time.sleep(2)  # the db's child is OOM-killed meanwhile, unwatched
    result = watcher.result

    assert set(result.services) == {"app"}
    assert result.oom_kills == 0
    assert all(e.service == "app" for e in result.events)


def test_samples_before_the_load_start_are_idle_and_times_are_relative_to_it(
    client: docker.DockerClient, project: Project
) -> None:
    project.run("app", ["sleep", "120"], **STRICT_64M)
    with Watcher(client, project.name) as watcher:
        assert watcher.wait_for_samples(timeout=5)
        time.sleep(1.2)
        watcher.mark_load_start()
        time.sleep(2.2)
    summary = watcher.result.services["app"]

    before = [t for t in summary.t if t < 0]
    assert before
    assert summary.t[-1] > 1.0
    assert summary.idle_memory_bytes is not None
    assert summary.idle_memory_bytes > 0
