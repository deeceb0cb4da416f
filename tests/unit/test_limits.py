"""Applied limits: reading HostConfig and cgroup files, and comparing them with what was asked for."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import docker
import pytest
from docker.models.containers import ExecResult

from stackprobe.limits import (
    CGROUP_SOURCE_EXEC,
    CGROUP_SOURCE_HOST,
    AppliedLimits,
    compare_limits,
    detect_cgroup_version,
    limit_notes,
    limits_section,
    parse_cgroup_cpus,
    parse_cgroup_memory,
    read_applied_limits,
    swap_description,
)

MIB = 1024 * 1024
V1_UNLIMITED = "9223372036854771712"
CONTAINER_ID = "00fa1d34a9dac8a6cf8a416423ba348504808ca90323022ac8c4dbd2a7cc6cc6"


def inspect_attrs(
    *, memory: int = 64 * MIB, memswap: int = 64 * MIB, nano_cpus: int = 0, running: bool = True, pid: int = 4242
) -> dict[str, Any]:
    """Return the parts of a recorded `docker inspect` (Engine 20.10) that the limits code reads."""
    return {
        "Id": CONTAINER_ID,
        "Name": "/proj-web-1",
        "State": {"Status": "running" if running else "exited", "Running": running, "Pid": pid if running else 0},
        "HostConfig": {
            "Memory": memory,
            "MemorySwap": memswap,
            "NanoCpus": nano_cpus,
            "CpuPeriod": 0,
            "CpuQuota": 0,
            "ShmSize": 67108864,
        },
        "RestartCount": 0,
    }


class FakeContainer:
    """A container whose `cat` answers from a dict of files, or cannot run at all."""

    def __init__(self, attrs: dict[str, Any], files: dict[str, str] | None, exec_error: bool = False) -> None:
        self.attrs = attrs
        self.id = attrs["Id"]
        self.name = attrs["Name"].lstrip("/")
        self.files = files
        self.exec_error = exec_error
        self.exec_calls: list[list[str]] = []

    def reload(self) -> None:
        pass

    def exec_run(self, cmd: list[str], **_: Any) -> ExecResult:
        self.exec_calls.append(cmd)
        if self.exec_error:
            raise docker.errors.APIError("409 Client Error: Conflict (container is paused)")
        if self.files is None:
            message = b'OCI runtime exec failed: exec: "cat": executable file not found in $PATH: unknown\r\n'
            return ExecResult(126, message)
        path = cmd[1]
        if path in self.files:
            return ExecResult(0, self.files[path].encode())
        return ExecResult(1, None)


class FakeClient:
    """A client whose `docker info` says which cgroup version the host runs (and, when given, SwapLimit)."""

    def __init__(self, cgroup_version: str | None = "1", swap_limit: bool | None = None) -> None:
        self._info: dict[str, Any] = {"CgroupVersion": cgroup_version} if cgroup_version is not None else {}
        if swap_limit is not None:
            self._info["SwapLimit"] = swap_limit

    def info(self) -> dict[str, Any]:
        return self._info


def v1_files(memory: str = "67108864", quota: str = "-1", period: str = "100000") -> dict[str, str]:
    """Return what a cgroup v1 container sees of its own memory and cpu cgroups."""
    return {
        "/sys/fs/cgroup/memory/memory.limit_in_bytes": f"{memory}\n",
        "/sys/fs/cgroup/cpu/cpu.cfs_quota_us": f"{quota}\n",
        "/sys/fs/cgroup/cpu/cpu.cfs_period_us": f"{period}\n",
    }


def applied(**overrides: Any) -> AppliedLimits:
    """Return limits as read from a strict 64 MiB container on cgroup v1, with some fields changed."""
    values: dict[str, Any] = {
        "container": "proj-web-1",
        "memory_bytes": 64 * MIB,
        "memswap_bytes": 64 * MIB,
        "cpus": None,
        "cgroup_version": 1,
        "memory_cgroup_bytes": 64 * MIB,
        "memory_cgroup_raw": "67108864",
        "cpus_cgroup": None,
        "cpu_cgroup_raw": "-1 100000",
        "cgroup_source": CGROUP_SOURCE_EXEC,
    }
    values.update(overrides)
    return AppliedLimits(**values)


def test_reads_a_strict_limit_from_host_config_and_the_cgroup_by_exec() -> None:
    container = FakeContainer(inspect_attrs(nano_cpus=500_000_000), v1_files(quota="50000"))

    limits = read_applied_limits(FakeClient("1"), container)  # type: ignore[arg-type]

    assert limits.memory_bytes == limits.memswap_bytes == limits.memory_cgroup_bytes == 67108864
    assert limits.cpus == limits.cpus_cgroup == 0.5
    assert limits.cgroup_version == 1
    assert limits.cgroup_source == CGROUP_SOURCE_EXEC
    assert compare_limits(64 * MIB, 0.5, limits) == (True, [])


def test_memory_zero_and_a_huge_cgroup_value_both_read_as_unlimited() -> None:
    container = FakeContainer(inspect_attrs(memory=0, memswap=0), v1_files(memory=V1_UNLIMITED))

    limits = read_applied_limits(FakeClient("1"), container)  # type: ignore[arg-type]

    assert limits.memory_bytes is None
    assert limits.memswap_bytes is None
    assert limits.memory_cgroup_bytes is None
    assert limits.memory_cgroup_raw == V1_UNLIMITED
    assert limits.cgroup_read


def test_unlimited_swap_is_none_and_noted() -> None:
    container = FakeContainer(inspect_attrs(memswap=-1), v1_files())

    limits = read_applied_limits(FakeClient("1"), container)  # type: ignore[arg-type]

    assert limits.memswap_bytes is None
    assert any("unlimited" in note for note in limits.notes)


def test_cgroup_v2_files_are_read_and_max_means_unlimited() -> None:
    files = {"/sys/fs/cgroup/memory.max": "max\n", "/sys/fs/cgroup/cpu.max": "max 100000\n"}
    container = FakeContainer(inspect_attrs(memory=0, memswap=0), files)

    limits = read_applied_limits(FakeClient("2"), container)  # type: ignore[arg-type]

    assert limits.cgroup_version == 2
    assert limits.memory_cgroup_bytes is None
    assert limits.memory_cgroup_raw == "max"
    assert limits.cpus_cgroup is None


def test_cgroup_v2_in_the_host_namespace_is_found_through_proc_1_cgroup() -> None:
    own = "/system.slice/docker-abc.scope"
    files = {
        "/proc/1/cgroup": f"0::{own}\n",
        f"/sys/fs/cgroup{own}/memory.max": "134217728\n",
        f"/sys/fs/cgroup{own}/cpu.max": "150000 100000\n",
    }
    container = FakeContainer(inspect_attrs(memory=128 * MIB, memswap=128 * MIB, nano_cpus=1_500_000_000), files)

    limits = read_applied_limits(FakeClient("2"), container)  # type: ignore[arg-type]

    assert limits.memory_cgroup_bytes == 128 * MIB
    assert limits.cpus_cgroup == 1.5
    assert compare_limits(128 * MIB, 1.5, limits) == (True, [])


def make_host_tree(root: Path, pid: int, memory: str, quota: str) -> None:
    """Lay out /proc/PID/cgroup and the cgroup v1 files of a cgroupfs-driver container under root."""
    (root / "proc" / str(pid)).mkdir(parents=True)
    (root / "proc" / str(pid) / "cgroup").write_text(
        f"4:memory:/docker/{CONTAINER_ID}\n1:cpu:/docker/{CONTAINER_ID}\n0::/docker/{CONTAINER_ID}\n"
    )
    memory_dir = root / "sys/fs/cgroup/memory/docker" / CONTAINER_ID
    cpu_dir = root / "sys/fs/cgroup/cpu/docker" / CONTAINER_ID
    memory_dir.mkdir(parents=True)
    cpu_dir.mkdir(parents=True)
    (memory_dir / "memory.limit_in_bytes").write_text(f"{memory}\n")
    (cpu_dir / "cpu.cfs_quota_us").write_text(f"{quota}\n")
    (cpu_dir / "cpu.cfs_period_us").write_text("100000\n")


def test_an_image_without_cat_falls_back_to_the_host_cgroup_and_says_so(tmp_path: Path) -> None:
    make_host_tree(tmp_path, 4242, "67108864", "25000")
    container = FakeContainer(inspect_attrs(nano_cpus=250_000_000), files=None)

    limits = read_applied_limits(FakeClient("1"), container, host_root=tmp_path)  # type: ignore[arg-type]

    assert limits.cgroup_source == CGROUP_SOURCE_HOST
    assert limits.memory_cgroup_bytes == 67108864
    assert limits.cpus_cgroup == 0.25
    # Once cat proved missing, no further exec is attempted.
    assert len(container.exec_calls) == 1


def test_a_refused_exec_falls_back_to_the_host_cgroup(tmp_path: Path) -> None:
    make_host_tree(tmp_path, 4242, V1_UNLIMITED, "-1")
    container = FakeContainer(inspect_attrs(), v1_files(), exec_error=True)

    limits = read_applied_limits(FakeClient("1"), container, host_root=tmp_path)  # type: ignore[arg-type]

    assert limits.cgroup_source == CGROUP_SOURCE_HOST
    assert limits.memory_cgroup_bytes is None
    matches, problems = compare_limits(64 * MIB, None, limits)
    assert not matches
    assert problems == [f"cgroup says {V1_UNLIMITED} (unlimited) while HostConfig.Memory is 67108864"]


def test_cgroup_left_unread_when_neither_exec_nor_host_files_work(tmp_path: Path) -> None:
    container = FakeContainer(inspect_attrs(), files=None)

    limits = read_applied_limits(FakeClient("1"), container, host_root=tmp_path)  # type: ignore[arg-type]

    assert limits.cgroup_source is None
    assert limits.memory_cgroup_bytes is None
    assert any("could not be read" in note for note in limits.notes)
    # An unread cgroup is not evidence of a mismatch: HostConfig alone still matches.
    assert compare_limits(64 * MIB, None, limits) == (True, [])


def test_a_stopped_container_has_no_cgroup_to_read() -> None:
    container = FakeContainer(inspect_attrs(running=False), v1_files())

    limits = read_applied_limits(FakeClient("1"), container)  # type: ignore[arg-type]

    assert container.exec_calls == []
    assert limits.memory_bytes == 64 * MIB
    assert limits.cgroup_source is None
    assert any("not running" in note for note in limits.notes)


@pytest.mark.parametrize(("info", "expected"), [("1", 1), ("2", 2), (None, None), ("", None)])
def test_detects_the_host_cgroup_version_from_docker_info(info: str | None, expected: int | None) -> None:
    assert detect_cgroup_version(FakeClient(info)) == expected  # type: ignore[arg-type]


def test_unapplied_memory_limit_is_a_problem() -> None:
    limits = applied(memory_bytes=None, memswap_bytes=None, memory_cgroup_bytes=None, memory_cgroup_raw=V1_UNLIMITED)

    matches, problems = compare_limits(128 * MIB, None, limits)

    assert not matches
    assert problems == [
        "memory limit not applied: HostConfig.Memory is 0 (unlimited) while 134217728 (128 MiB) was asked for"
    ]


def test_a_different_memory_limit_is_a_problem() -> None:
    matches, problems = compare_limits(128 * MIB, None, applied())

    assert not matches
    assert problems == [
        "memory limit differs: HostConfig.Memory is 67108864 (64 MiB) while 134217728 (128 MiB) was asked for"
    ]


def test_default_swap_of_twice_the_memory_is_not_a_strict_limit() -> None:
    matches, problems = compare_limits(
        128 * MIB, None, applied(memory_bytes=128 * MIB, memswap_bytes=256 * MIB, memory_cgroup_bytes=128 * MIB)
    )

    assert not matches
    assert problems == [
        "swap not limited: MemorySwap 268435456 is twice Memory; "
        "set memswap_limit equal to mem_limit for a strict limit"
    ]


def test_unlimited_swap_is_a_problem() -> None:
    _, problems = compare_limits(64 * MIB, None, applied(memswap_bytes=None))

    assert problems == [
        "swap not limited: MemorySwap is -1 (unlimited); set memswap_limit equal to mem_limit for a strict limit"
    ]


def test_other_swap_excess_names_the_difference() -> None:
    _, problems = compare_limits(64 * MIB, None, applied(memswap_bytes=96 * MIB))

    assert problems == [
        "swap not limited: MemorySwap 100663296 exceeds Memory 67108864 by 33554432 (32 MiB); "
        "set memswap_limit equal to mem_limit for a strict limit"
    ]


def test_cgroup_disagreeing_with_host_config_is_a_problem() -> None:
    _, problems = compare_limits(None, None, applied(memory_cgroup_bytes=32 * MIB, memory_cgroup_raw="33554432"))

    assert problems == ["cgroup says 33554432 (32 MiB) while HostConfig.Memory is 67108864"]


def test_cgroup_limit_without_host_config_limit_is_a_problem() -> None:
    limits = applied(memory_bytes=None, memswap_bytes=None)

    _, problems = compare_limits(None, None, limits)

    assert problems == ["cgroup says 67108864 (64 MiB) while HostConfig.Memory is 0 (unlimited)"]


def test_kernel_page_rounding_of_the_cgroup_limit_still_matches() -> None:
    # 100000000 bytes is not page-aligned; the v1 kernel keeps 99999744.
    limits = applied(memory_bytes=100_000_000, memswap_bytes=100_000_000, memory_cgroup_bytes=99_999_744)

    assert compare_limits(100_000_000, None, limits) == (True, [])


def test_nothing_asked_and_nothing_applied_matches() -> None:
    limits = applied(memory_bytes=None, memswap_bytes=None, memory_cgroup_bytes=None, memory_cgroup_raw=V1_UNLIMITED)

    assert compare_limits(None, None, limits) == (True, [])


def test_unapplied_cpu_limit_is_a_problem() -> None:
    _, problems = compare_limits(None, 0.5, applied())

    assert problems == ["cpu limit not applied: HostConfig.NanoCpus is 0 (unlimited) while 0.5 CPUs were asked for"]


def test_cpu_quota_missing_from_the_cgroup_is_a_problem() -> None:
    _, problems = compare_limits(None, 0.5, applied(cpus=0.5))

    assert problems == ["cgroup cpu quota says -1 100000 (unlimited) while HostConfig says 0.5 CPUs"]


def test_cpu_quota_from_cpu_quota_and_period_counts_as_applied() -> None:
    attrs = inspect_attrs()
    attrs["HostConfig"].update({"CpuQuota": 150000, "CpuPeriod": 100000})
    container = FakeContainer(attrs, v1_files(quota="150000"))

    limits = read_applied_limits(FakeClient("1"), container)  # type: ignore[arg-type]

    assert limits.cpus == 1.5
    assert compare_limits(64 * MIB, 1.5, limits) == (True, [])


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("67108864\n", 67108864), (V1_UNLIMITED, None), ("max", None), ("9223372036854775807", None)],
)
def test_parses_cgroup_memory_limits(raw: str, expected: int | None) -> None:
    assert parse_cgroup_memory(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("50000 100000", 0.5), ("-1 100000", None), ("max 100000", None), ("200000 100000", 2.0), (None, None)],
)
def test_parses_cgroup_cpu_quotas(raw: str | None, expected: float | None) -> None:
    assert parse_cgroup_cpus(raw) == expected


def test_limits_section_has_the_report_keys_and_prefers_the_requested_limit() -> None:
    section = limits_section(
        applied(), memory_requested_bytes=64 * MIB, memory_declared_bytes=128 * MIB, cpus_requested=None
    )

    assert set(section) == {
        "memory_requested_bytes",
        "memory_declared_bytes",
        "memory_applied_bytes",
        "memswap_applied_bytes",
        "memory_cgroup_bytes",
        "cgroup_version",
        "cpus_requested",
        "cpus_applied",
        "applied_matches",
        "problems",
        "notes",
    }
    assert section["applied_matches"] is True
    assert section["memory_applied_bytes"] == section["memory_cgroup_bytes"] == 64 * MIB


def test_limits_section_falls_back_to_the_declared_limit() -> None:
    section = limits_section(
        applied(), memory_requested_bytes=None, memory_declared_bytes=128 * MIB, cpus_requested=None
    )

    assert section["applied_matches"] is False
    assert section["problems"][0].startswith("memory limit differs")


def test_probe_with_no_limit_anywhere_is_flagged_as_not_throttled() -> None:
    applied = AppliedLimits(container="c", memory_bytes=None, memswap_bytes=None, cpus=None, cgroup_version=1)
    section = limits_section(applied, memory_requested_bytes=None, memory_declared_bytes=None, cpus_requested=None)
    assert section["applied_matches"] is False
    assert "not a throttled run" in section["problems"][0]


NO_SWAP = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n"
TWO_GIB_SWAP = NO_SWAP + "/swapfile                               file\t\t2097148\t\t0\t\t-2\n"


def with_swaps(files: dict[str, str], swaps: str) -> dict[str, str]:
    """Return the container's files with /proc/swaps, which inside a container lists the host's swap."""
    return {**files, "/proc/swaps": swaps}


@pytest.mark.parametrize("memswap", [-1, 0])
def test_an_engine_without_swap_limits_keeps_the_memory_limit_in_force_and_notes_why(memswap: int) -> None:
    # `docker info` SwapLimit false: the engine dropped memswap_limit (MemorySwap reads -1 or 0), yet the
    # memory limit is in the cgroup.
    container = FakeContainer(inspect_attrs(memswap=memswap), with_swaps(v1_files(), NO_SWAP))

    limits = read_applied_limits(FakeClient("1", swap_limit=False), container)  # type: ignore[arg-type]
    section = limits_section(limits, memory_requested_bytes=None, memory_declared_bytes=64 * MIB, cpus_requested=None)

    assert limits.swap_limit_supported is False
    assert limits.memswap_bytes is None
    assert compare_limits(64 * MIB, None, limits) == (True, [])
    assert section["applied_matches"] is True
    assert section["problems"] == []
    (note,) = section["notes"]
    assert note.startswith("swap limits are unsupported on this engine (docker info SwapLimit: false")
    assert f"MemorySwap reads {memswap} whatever memswap_limit says" in note
    assert "strict in effect" in note
    assert "set memswap_limit" not in " ".join(section["notes"] + section["problems"])
    assert swap_description(limits) == "strict in effect: no swap on the host (this engine has no swap limits)"


def test_an_engine_without_swap_limits_on_a_host_with_swap_says_the_container_may_swap() -> None:
    limits = applied(memswap_bytes=None, memswap_raw=-1, swap_limit_supported=False, host_swap_bytes=2 * 1024**3)

    assert compare_limits(64 * MIB, None, limits) == (True, [])
    (note,) = limit_notes(limits)
    assert "2147483648 (2 GiB) of swap, which the container can use beyond its memory limit" in note
    assert "set memswap_limit" not in note
    assert swap_description(limits) == "swap not limitable on this engine"


def test_a_limit_without_memswap_limit_is_strict_in_effect_on_a_host_without_swap() -> None:
    container = FakeContainer(inspect_attrs(memswap=128 * MIB), with_swaps(v1_files(), NO_SWAP))

    limits = read_applied_limits(FakeClient("1", swap_limit=True), container)  # type: ignore[arg-type]

    assert limits.host_swap_bytes == 0
    assert limits.host_swap_source == "/proc/swaps inside the container"
    assert compare_limits(64 * MIB, None, limits) == (True, [])
    assert limit_notes(limits) == [
        "memory limit strict in effect: MemorySwap 134217728 would allow swap, but /proc/swaps inside the "
        "container lists no swap device, so nothing can be swapped out; swap added to the host would make the "
        "limit soft"
    ]
    assert swap_description(limits) == "strict in effect: no swap on the host"


def test_a_limit_without_memswap_limit_on_a_host_with_swap_is_still_a_problem() -> None:
    container = FakeContainer(inspect_attrs(memswap=128 * MIB), with_swaps(v1_files(), TWO_GIB_SWAP))

    limits = read_applied_limits(FakeClient("1", swap_limit=True), container)  # type: ignore[arg-type]

    assert limits.host_swap_bytes == 2097148 * 1024
    assert compare_limits(64 * MIB, None, limits)[1] == [
        "swap not limited: MemorySwap 134217728 is twice Memory; "
        "set memswap_limit equal to mem_limit for a strict limit"
    ]
    assert limit_notes(limits) == []
    assert swap_description(limits) == "swap allowed up to 67108864 (64 MiB)"


def test_host_swap_is_read_from_the_host_when_the_cgroup_is_visible_there(tmp_path: Path) -> None:
    make_host_tree(tmp_path, 4242, "67108864", "-1")
    (tmp_path / "proc" / "swaps").write_text(NO_SWAP)
    container = FakeContainer(inspect_attrs(memswap=128 * MIB), files=None)

    limits = read_applied_limits(FakeClient("1"), container, host_root=tmp_path)  # type: ignore[arg-type]

    assert limits.host_swap_bytes == 0
    assert limits.host_swap_source == "the host's /proc/swaps"
    assert len(container.exec_calls) == 1  # the cgroup probe; swap was not asked of the container


def test_unknown_host_swap_keeps_the_old_verdict() -> None:
    limits = applied(memswap_bytes=128 * MIB)

    assert compare_limits(64 * MIB, None, limits)[0] is False
    assert limit_notes(limits) == []


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({}, "strict"),
        ({"memory_bytes": None, "memswap_bytes": None}, "no memory limit"),
        ({"memswap_bytes": None}, "swap unlimited"),
    ],
)
def test_swap_descriptions(overrides: dict[str, Any], expected: str) -> None:
    assert swap_description(applied(**overrides)) == expected
