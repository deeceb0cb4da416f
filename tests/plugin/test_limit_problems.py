"""compose_stack's check of the limits in force, per container, as a probe run checks its target's (no Docker)."""

from __future__ import annotations

from typing import Any

from stackprobe.limits import CGROUP_SOURCE_HOST, AppliedLimits
from stackprobe.pytest_plugin import limit_problems

MIB = 1024**2
# Services as `docker compose config --format json` prints them: sizes in bytes, as text.
SERVICES: dict[str, Any] = {
    "app": {"mem_limit": str(128 * MIB), "memswap_limit": str(128 * MIB)},
    "db": {},
}


def _applied(container: str, memory: int | None, memswap: int | None, *, cgroup: bool = True) -> AppliedLimits:
    return AppliedLimits(
        container=container,
        memory_bytes=memory,
        memswap_bytes=memswap,
        cpus=None,
        cgroup_version=1,
        memory_cgroup_bytes=memory if cgroup else None,
        memory_cgroup_raw=str(memory) if cgroup else None,
        cgroup_source=CGROUP_SOURCE_HOST if cgroup else None,
        notes=() if cgroup else ("container is not running: its cgroup could not be read",),
        swap_limit_supported=True,
        host_swap_bytes=8 * 1024 * MIB,
    )


def test_declared_limit_in_force_with_swap_held_equal_is_no_problem() -> None:
    applied = {"app": [_applied("p-app-1", 128 * MIB, 128 * MIB)], "db": [_applied("p-db-1", None, None)]}
    assert limit_problems(SERVICES, {}, applied) == []


def test_a_given_limit_is_checked_instead_of_the_declared_one() -> None:
    applied = {"app": [_applied("p-app-1", 128 * MIB, 128 * MIB)], "db": [_applied("p-db-1", None, None)]}
    assert limit_problems(SERVICES, {"app": 64 * MIB}, applied) == [
        "app (p-app-1): memory limit differs: HostConfig.Memory is 134217728 (128 MiB) "
        "while 67108864 (64 MiB) was asked for"
    ]


def test_swap_beyond_the_limit_on_a_host_with_swap_is_a_problem_of_that_container() -> None:
    applied = {
        "app": [_applied("p-app-1", 128 * MIB, 128 * MIB), _applied("p-app-2", 128 * MIB, 256 * MIB)],
        "db": [],
    }
    assert limit_problems(SERVICES, {}, applied) == [
        "app (p-app-2): swap not limited: MemorySwap 268435456 is twice Memory; "
        "set memswap_limit equal to mem_limit for a strict limit"
    ]


def test_an_unread_cgroup_leaves_the_limit_unverified() -> None:
    applied = {"app": [_applied("p-app-1", 128 * MIB, 128 * MIB, cgroup=False)], "db": []}
    assert limit_problems(SERVICES, {}, applied) == [
        "app (p-app-1): cgroup not read, so no limit is verified "
        "(container is not running: its cgroup could not be read)"
    ]


def test_a_limited_service_without_a_container_is_a_problem_and_an_unlimited_one_is_not_checked() -> None:
    assert limit_problems(SERVICES, {}, {"app": [], "db": []}) == ["app: no container to read its limits from"]
