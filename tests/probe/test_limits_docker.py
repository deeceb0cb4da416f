"""Applied limits read from real containers: HostConfig and the cgroup must tell the same story."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
from docker.models.containers import Container

from stackprobe.limits import (
    CGROUP_SOURCE_EXEC,
    CGROUP_SOURCE_HOST,
    compare_limits,
    detect_cgroup_version,
    limit_notes,
    read_applied_limits,
    swap_description,
)

pytestmark = pytest.mark.probe

MIB = 1024 * 1024
RunContainer = Callable[..., Container]


@pytest.fixture
def run_container(client: docker.DockerClient, python_image: str) -> Iterator[RunContainer]:
    """Return a function that starts a labelled container of a throwaway project; all are removed after."""
    project = f"splimits{secrets.token_hex(4)}"
    started: list[Container] = []

    def run(service: str, command: list[str], **options: Any) -> Container:
        container = client.containers.run(
            python_image,
            command,
            detach=True,
            name=f"{project}-{service}-1",
            labels={"com.docker.compose.project": project, "com.docker.compose.service": service},
            **options,
        )
        started.append(container)
        return container

    try:
        yield run
    finally:
        for container in started:
            container.remove(force=True)


def test_a_strict_64m_limit_is_applied_and_the_cgroup_agrees(
    client: docker.DockerClient, run_container: RunContainer
) -> None:
    container = run_container("app", ["sleep", "60"], mem_limit="64m", memswap_limit="64m")

    limits = read_applied_limits(client, container)

    assert limits.memory_bytes == 67108864
    assert limits.memswap_bytes == 67108864
    assert limits.memory_cgroup_bytes == 67108864
    assert limits.cgroup_source == CGROUP_SOURCE_EXEC
    assert limits.cgroup_version == detect_cgroup_version(client)
    assert limits.cgroup_version in (1, 2)
    assert compare_limits(64 * MIB, None, limits) == (True, [])


def test_a_container_without_a_limit_is_reported_unlimited_and_not_matching(
    client: docker.DockerClient, run_container: RunContainer
) -> None:
    container = run_container("app", ["sleep", "60"])

    limits = read_applied_limits(client, container.id)
    matches, problems = compare_limits(64 * MIB, None, limits)

    assert limits.memory_bytes is None
    assert limits.memory_cgroup_bytes is None
    assert limits.cgroup_read
    assert not matches
    assert problems == [
        "memory limit not applied: HostConfig.Memory is 0 (unlimited) while 67108864 (64 MiB) was asked for"
    ]


def host_swap_bytes() -> int:
    """Return the swap space this host lists in /proc/swaps (the engine runs here), in bytes."""
    lines = Path("/proc/swaps").read_text().splitlines()[1:]
    return sum(int(line.split()[2]) * 1024 for line in lines if len(line.split()) >= 3)


def test_a_memory_limit_alone_leaves_swap_at_twice_the_limit_which_only_swap_on_the_host_makes_soft(
    client: docker.DockerClient, run_container: RunContainer
) -> None:
    container = run_container("app", ["sleep", "60"], mem_limit="64m")

    limits = read_applied_limits(client, container)
    matches, problems = compare_limits(64 * MIB, None, limits)

    assert limits.memswap_bytes == 2 * 67108864
    assert limits.swap_limit_supported is client.info().get("SwapLimit")
    swap = host_swap_bytes()
    assert limits.host_swap_bytes == swap
    assert limits.host_swap_source == "the host's /proc/swaps"
    if swap == 0:
        # This project's machines have no swap: the limit is strict in effect, and the note says why.
        assert (matches, problems) == (True, [])
        assert limit_notes(limits)[0].startswith("memory limit strict in effect: MemorySwap 134217728 would allow swap")
        assert swap_description(limits) == "strict in effect: no swap on the host"
    else:
        assert not matches
        assert problems == [
            "swap not limited: MemorySwap 134217728 is twice Memory; "
            "set memswap_limit equal to mem_limit for a strict limit"
        ]


def test_a_strict_limit_needs_no_note(client: docker.DockerClient, run_container: RunContainer) -> None:
    container = run_container("app", ["sleep", "60"], mem_limit="64m", memswap_limit="64m")

    limits = read_applied_limits(client, container)

    assert limit_notes(limits) == []
    assert swap_description(limits) == "strict"


def test_a_cpu_limit_reaches_the_cgroup_quota(client: docker.DockerClient, run_container: RunContainer) -> None:
    container = run_container("app", ["sleep", "60"], mem_limit="64m", memswap_limit="64m", nano_cpus=500_000_000)

    limits = read_applied_limits(client, container)

    assert limits.cpus == 0.5
    assert limits.cpus_cgroup == 0.5
    assert compare_limits(64 * MIB, 0.5, limits) == (True, [])
    assert compare_limits(64 * MIB, 1.0, limits)[1] == [
        "cpu limit differs: HostConfig says 0.5 CPUs while 1 were asked for"
    ]


def test_a_paused_container_is_read_from_the_host_cgroup(
    client: docker.DockerClient, run_container: RunContainer
) -> None:
    container = run_container("app", ["sleep", "60"], mem_limit="48m", memswap_limit="48m")
    container.reload()
    in_ci = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
    if not Path(f"/proc/{container.attrs['State']['Pid']}").exists() and not in_ci:
        pytest.skip("the engine runs on another host (or VM): its cgroup files are not visible here")
    container.pause()
    try:
        limits = read_applied_limits(client, container)
    finally:
        container.unpause()

    # exec is refused while paused, so the limit can only have come from the host's cgroup tree.
    assert limits.cgroup_source == CGROUP_SOURCE_HOST
    assert limits.memory_cgroup_bytes == 48 * MIB
    assert compare_limits(48 * MIB, None, limits) == (True, [])


def test_a_stopped_container_reports_host_config_and_leaves_the_cgroup_unread(
    client: docker.DockerClient, run_container: RunContainer
) -> None:
    container = run_container("app", ["true"], mem_limit="64m", memswap_limit="64m")
    assert container.wait(timeout=30)["StatusCode"] == 0

    limits = read_applied_limits(client, container)

    assert limits.memory_bytes == 67108864
    assert not limits.cgroup_read
    assert any("not running" in note for note in limits.notes)
