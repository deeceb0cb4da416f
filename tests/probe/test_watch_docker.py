"""The Watcher against real containers: sampling rate, kernel peaks and OOM kills, frozen cgroups, restarts,
replicas, new containers, late events and a prompt stop."""

from __future__ import annotations

import contextlib
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

from stackprobe.cgroup import locate_on_host, read_memory_counters
from stackprobe.watch import Snapshot, Watcher

pytestmark = pytest.mark.probe

MIB = 1024 * 1024
# Grows by 8 MiB every 50 ms: past a 64 MiB limit within a second.
GROW = "import time\nb = bytearray()\nwhile True:\n    b += bytearray(8 * 2**20)\n    time.sleep(0.05)\n"
STRICT_64M = {"mem_limit": "64m", "memswap_limit": "64m"}
# Before the watch: a 150 MiB spike (a peak the load's must leave out). Then, 3 s after /tmp/go appears,
# 100 MiB for 200 ms once: between two stats samples, which come about once a second.
SPIKE = """import os, time
b = b"x" * (150 * 2**20)
del b
open("/tmp/ready", "w").close()
while not os.path.exists("/tmp/go"):
    time.sleep(0.01)
time.sleep(3)
b = b"x" * (100 * 2**20)
time.sleep(0.2)
del b
open("/tmp/done", "w").close()
time.sleep(120)
"""
# Allocates 128 MiB at once when /tmp/go appears: OOM-killed within milliseconds under 64 MiB.
KILL_ON_GO = """import os, time
while not os.path.exists("/tmp/go"):
    time.sleep(0.01)
b = b"x" * (128 * 2**20)
"""


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


@pytest.fixture
def project(client: docker.DockerClient, python_image: str) -> Iterator[Project]:
    """Return a fresh project; its containers are removed whatever the test did."""
    made = Project(client, python_image)
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


def at_the_limit(peak: int | None, limit: int = 64 * MIB) -> bool:
    """Tell whether a kernel high-water mark reached the limit.

    It may pass it by a few pages: the kernel charges some allocations past the limit rather than fail them
    (a task being OOM-killed, an exec's first pages); a read once gave 64 MiB + 4 KiB.
    """
    return peak is not None and limit <= peak <= limit + MIB


def exists_in(container: Container, path: str) -> bool:
    """Tell whether a file exists inside the container (by exec)."""
    return container.exec_run(["test", "-e", path]).exit_code == 0


def touch_in(container: Container, path: str) -> None:
    """Create a file inside the container (by exec)."""
    assert container.exec_run(["touch", path]).exit_code == 0


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
    # The container dies three times within about 2 s, often before any stats sample: the counts come from
    # the kernel's counter (read from the host) and the engine's die events, not from samples or timing.
    with Watcher(client, project.name) as watcher:
        # Created after the watch began: the watcher must pick it up from its start event.
        web = project.run(
            "web", ["python3", "-c", GROW], restart_policy={"Name": "on-failure", "MaximumRetryCount": 2}, **STRICT_64M
        )
        wait_for(lambda: status_of(web) == "exited", 60, "the third OOM kill to end the container")
    result = watcher.result

    assert web.attrs["RestartCount"] == 2
    assert web.attrs["State"]["ExitCode"] == 137
    assert (result.oom_kills, result.restarts) == (3, 2)
    summary = result.services["web"]
    assert (summary.oom_kills, summary.restarts) == (3, 2)
    (container,) = summary.containers
    assert container.cgroup_read
    assert [i.exit_code for i in container.incarnations] == [137, 137, 137]
    assert [i.oom_kills for i in container.incarnations] == [1, 1, 1]
    assert all(i.pid1_oom_killed for i in container.incarnations)
    # Each run was killed at the limit: that is the kernel's peak, whatever the samples (if any) saw.
    assert summary.peak_kernel_bytes == summary.peak_memory_bytes
    assert at_the_limit(summary.peak_kernel_bytes)
    assert result.stopped_containers("web") == [web.name]
    actions = [(e.action, e.exit_code) for e in result.events]
    assert actions.count(("die", 137)) == 3
    assert actions.count(("start", None)) == 3
    # The engine's oom events are reported beside the kills, however containerd grouped them.
    assert summary.oom_events == result.oom_events == actions.count(("oom", None))
    assert summary.oom_events >= 1
    assert all(e.container == web.name and e.service == "web" for e in result.events)
    assert [e.t for e in result.events] == sorted(e.t for e in result.events)
    assert result.events_cover_window


def test_a_worker_oom_killed_twice_is_counted_twice_while_the_container_lives_on(
    client: docker.DockerClient, project: Project
) -> None:
    with Watcher(client, project.name) as watcher:
        # PID 1 is the shell, like a server's main process; the OOM killer takes the larger child, twice.
        app = project.run(
            "app",
            ["sh", "-c", f"python3 -c '{GROW}'; python3 -c '{GROW}'; touch /tmp/done; sleep 120"],
            **STRICT_64M,
        )
        wait_for(lambda: exists_in(app, "/tmp/done"), 60, "both children to be OOM-killed")
    result = watcher.result

    assert status_of(app) == "running"
    summary = result.services["app"]
    assert summary.oom_kills == result.oom_kills == 2
    assert summary.oom_kills_source.startswith("the kernel's oom_kill counter (cgroup v")
    assert "recovered" not in summary.oom_kills_source
    assert summary.oom_events >= 1
    assert result.restarts == 0
    assert [e.action for e in result.events if e.action != "oom"] == ["start"]
    assert at_the_limit(summary.peak_kernel_bytes)
    assert result.stopped_containers("app") == []


def test_a_100_mib_spike_between_samples_is_the_kernels_peak_since_the_load_started(
    client: docker.DockerClient, project: Project
) -> None:
    app = project.run("app", ["python3", "-c", SPIKE], mem_limit="256m", memswap_limit="256m")
    wait_for(lambda: exists_in(app, "/tmp/ready"), 30, "the idle spike to be over")
    with Watcher(client, project.name) as watcher:
        assert watcher.wait_for_samples(timeout=5)
        watcher.mark_load_start()
        touch_in(app, "/tmp/go")
        wait_for(lambda: exists_in(app, "/tmp/done"), 30, "the load's spike to be over")
    summary = watcher.result.services["app"]

    assert summary.peak_kernel_bytes is not None
    assert summary.peak_kernel_bytes >= 100 * MIB
    # The 150 MiB before the load is left out: the high-water mark was reset when the load started.
    assert summary.peak_kernel_bytes < 150 * MIB
    assert summary.containers[0].peak_reset
    assert summary.peak_memory_bytes == summary.peak_kernel_bytes
    assert summary.peak_source.endswith("since the load started")
    assert summary.peak_sampled_bytes is not None
    # The samples may or may not have caught the 200 ms spike; they never see more than the kernel.
    assert summary.peak_sampled_bytes <= summary.peak_kernel_bytes
    print(f"spike: kernel peak {summary.peak_kernel_bytes}, sampled peak {summary.peak_sampled_bytes}")


def test_a_cgroup_with_oom_killing_disabled_is_frozen_at_its_limit_not_killed(
    client: docker.DockerClient, project: Project
) -> None:
    info = client.info()
    honoured = bool(info.get("OomKillDisable")) and str(info.get("CgroupVersion")) == "1"
    with Watcher(client, project.name) as watcher:
        app = project.run("app", ["python3", "-c", GROW], oom_kill_disable=True, **STRICT_64M)
        wait_for(lambda: any(e.action == "oom" for e in watcher.events_so_far()), 30, "the limit to be reached")
        time.sleep(1.0)  # two cgroup readings at least
    summary = watcher.result.services["app"]

    if honoured:
        # cgroup v1 with oom_kill_disable (checked on Engine 20.10, Linux 6.x): the kernel kills nothing and
        # every allocating task waits at the limit (under_oom 1); the engine still sends an oom event.
        assert status_of(app) == "running"
        assert summary.frozen_at is not None
        assert summary.oom_kills == 0
        assert summary.oom_events >= 1
        assert at_the_limit(summary.peak_kernel_bytes)
        assert watcher.result.memory_section("app")["frozen_at"] is not None
    else:
        # cgroup v2 has no oom_kill_disable: the engine ignores it and the kernel kills as usual.
        assert summary.frozen_at is None
        assert summary.oom_kills >= 1


def kernel_counted_a_kill(container: Container) -> Callable[[], bool]:
    """Return a check that the kernel has counted an OOM kill in the container's cgroup (or removed it).

    Read from this host's cgroup tree, as the watcher does; where the engine runs elsewhere, the check
    falls back to the container having exited.
    """
    container.reload()
    found = locate_on_host(container.attrs["State"]["Pid"], container_id=container.id)

    def check() -> bool:
        if found is None:
            return status_of(container) == "exited"
        counters = read_memory_counters(found.read, found.version)
        return counters is None or (counters.oom_kill or 0) > 0

    return check


def test_an_oom_kill_at_the_stop_instant_is_still_counted(client: docker.DockerClient, project: Project) -> None:
    app = project.run("app", ["python3", "-c", KILL_ON_GO], **STRICT_64M)
    killed = kernel_counted_a_kill(app)
    watcher = Watcher(client, project.name)
    watcher.start()
    try:
        assert watcher.wait_for_samples(timeout=5)
        touch_in(app, "/tmp/go")
        # However long the OOM takes, stop the moment the kernel counts the kill: the engine removes the
        # cgroup and sends its die event some 10-20 ms later, after the stop instant. Only the grace at
        # stop (events up to 0.75 s after it) can count them.
        deadline = time.monotonic() + 30
        while not killed() and time.monotonic() < deadline:
            time.sleep(0.001)
    finally:
        stop_began = time.monotonic()
        result = watcher.stop()
        stop_took = time.monotonic() - stop_began

    assert stop_took < 2.0
    assert watch_threads() == []
    assert result.oom_kills == 1
    assert ("die", 137) in [(e.action, e.exit_code) for e in result.events]
    assert result.events_cover_window
    assert result.stopped_containers("app") == [app.name]


def test_replicas_of_a_service_keep_one_series_each(client: docker.DockerClient, project: Project) -> None:
    big = "import time\nb = b'x' * (40 * 2**20)\ntime.sleep(120)\n"
    first = project.run("app", ["python3", "-c", big], index=1, **STRICT_64M)
    second = project.run("app", ["sleep", "120"], index=2, **STRICT_64M)
    with Watcher(client, project.name) as watcher:
        assert watcher.wait_for_samples(timeout=5)
        time.sleep(2.2)
    result = watcher.result

    summary = result.services["app"]
    assert summary.container_names == tuple(sorted((first.name, second.name)))
    series = result.containers_series()
    assert set(series) == {first.name, second.name}
    assert {entry["service"] for entry in series.values()} == {"app"}
    by_name = {c.name: c for c in summary.containers}
    assert (by_name[first.name].peak_kernel_bytes or 0) >= 40 * MIB
    assert summary.peak_kernel_bytes == max(c.peak_kernel_bytes or 0 for c in summary.containers)
    assert summary.peak_memory_bytes == by_name[first.name].peak_memory_bytes
    assert summary.sampled
    assert summary.cgroup_read
    assert result.problems == ()


def test_without_the_hosts_cgroup_tree_the_cgroup_is_read_by_exec_and_the_peak_spans_the_containers_life(
    client: docker.DockerClient, project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As with an engine in a VM or on another host: its PIDs are not ours, so only `cat` inside can read.
    monkeypatch.setattr("stackprobe.watch.cgroup.locate_on_host", lambda *args, **kwargs: None)
    with Watcher(client, project.name) as watcher:
        app = project.run("app", ["sh", "-c", f"python3 -c '{GROW}'; touch /tmp/done; sleep 120"], **STRICT_64M)
        wait_for(lambda: exists_in(app, "/tmp/done"), 60, "the child to be OOM-killed")
        watcher.mark_load_start()
        # An oom event asks for a reading at once; this leaves time for the 2-second schedule as well.
        time.sleep(2.5)
    summary = watcher.result.services["app"]

    (container,) = summary.containers
    assert container.cgroup_source == "exec"
    assert summary.oom_kills == 1
    assert "read by exec inside the container" in summary.oom_kills_source
    assert not container.peak_reset
    assert at_the_limit(summary.peak_kernel_bytes)
    assert summary.peak_source.endswith(
        "since the container started (read by exec inside it, the mark cannot be reset)"
    )


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
    assert summary.container_names == tuple(sorted((first.name, second.name)))
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
