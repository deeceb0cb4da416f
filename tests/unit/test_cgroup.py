"""Reading a container's cgroup from fake host trees: recorded cgroup v1 files and synthesised v2 ones.

tests/unit/data/cgroup_v1_*: copied from this project's machine (Engine 20.10, cgroupfs driver, cgroup v1,
Linux 6.x) while three containers ran: `cgroup_v1_idle` (`sleep`, 128 MiB strict), `cgroup_v1_worker_oom_killed`
(PID 1 a shell whose python child grew past 64 MiB and was OOM-killed; the shell lives on, 0.5 CPU) and
`cgroup_v1_frozen_at_limit` (64 MiB with oom_kill_disable: the growing python waits at the limit). Each holds
/proc/PID/cgroup and the container's memory and cpu directories, as the host shows them.

tests/unit/data/cgroup_v2_*: synthesised in the shape Documentation/admin-guide/cgroup-v2.rst gives (systemd
driver, so the container's directory is system.slice/docker-ID.scope): `cgroup_v2_worker_oom_killed` (128 MiB,
two OOM kills in three OOMs, processes left), `cgroup_v2_emptied` (the same after a third kill emptied it) and
`cgroup_v2_kernel_5_15` (no memory.peak, which came in Linux 5.19; unlimited).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from docker.models.containers import ExecResult

from stackprobe.cgroup import (
    HostCgroup,
    MemoryCounters,
    container_cat,
    exec_reader,
    locate_on_host,
    parse_bytes,
    parse_flat_keyed,
    parse_membership,
    parse_swaps,
    read_memory_counters,
    reclaim_page_cache,
    reset_peak,
)

DATA = Path(__file__).parent / "data"
MIB = 1024 * 1024
V1_IDLE = ("cgroup_v1_idle", 12248, "2a27ec0d1e5b6f429da625d857848cfd5ae2613a7396e16486406f1cb331a0b9")
V1_WORKER = ("cgroup_v1_worker_oom_killed", 12122, "095807d05b3f10353d0ad42e5547c3447ba77b60af74398504ea54e4fef215e1")
V1_FROZEN = ("cgroup_v1_frozen_at_limit", 12178, "40c9e98b0b0f0692c45d4663e505e06a1274f8ce31572d3baa330fb1e3778d57")
V2_ID = "5e2f0c9a7b1d4e3f8a6c2b0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f"


def host(tree: str, pid: int, container_id: str, version: int | None = None) -> HostCgroup:
    """Return the recorded container's cgroup as found from its PID under the tree."""
    found = locate_on_host(pid, host_root=DATA / tree, container_id=container_id, version=version)
    assert found is not None
    return found


def test_v1_idle_container_reads_its_high_water_mark_and_limit() -> None:
    cgroup = host(*V1_IDLE)

    counters = read_memory_counters(cgroup.read, cgroup.version)

    assert cgroup.version == 1
    assert counters == MemoryCounters(
        version=1,
        peak_bytes=4354048,
        limit_bytes=128 * MIB,
        oom_kill=0,
        under_oom=False,
        oom_kill_disable=False,
        populated=True,
    )
    assert not counters.frozen


def test_v1_worker_kill_shows_in_oom_control_while_the_shell_lives_on() -> None:
    counters = read_memory_counters(host(*V1_WORKER).read, 1)

    assert counters is not None
    assert counters.oom_kill == 1
    # The kernel charged up to the limit before it killed: the high-water mark is the limit.
    assert counters.peak_bytes == counters.limit_bytes == 64 * MIB
    assert counters.populated is True
    assert not counters.frozen


def test_v1_oom_kill_disabled_at_the_limit_is_frozen_and_killed_nothing() -> None:
    counters = read_memory_counters(host(*V1_FROZEN).read, 1)

    assert counters is not None
    assert counters.frozen
    assert counters.under_oom
    assert counters.oom_kill_disable
    assert counters.oom_kill == 0
    assert counters.peak_bytes == 64 * MIB


def test_v1_cpu_files_of_the_same_container_are_found_under_their_own_hierarchy() -> None:
    cgroup = host(*V1_WORKER)

    assert cgroup.read("cpu/cpu.cfs_quota_us") == "50000\n"
    assert parse_flat_keyed(cgroup.read("cpu/cpu.stat") or "")["nr_periods"] >= 0
    stat = parse_flat_keyed(cgroup.read("memory/memory.stat") or "")
    assert {"total_rss", "total_cache", "total_inactive_file", "hierarchical_memory_limit"} <= set(stat)
    assert stat["hierarchical_memory_limit"] == 64 * MIB


def test_v2_counts_oom_kills_from_memory_events_and_reads_memory_peak() -> None:
    cgroup = host("cgroup_v2_worker_oom_killed", 3311, V2_ID, version=2)

    counters = read_memory_counters(cgroup.read, 2)

    assert counters == MemoryCounters(
        version=2,
        peak_bytes=128 * MIB,
        limit_bytes=128 * MIB,
        oom_kill=2,
        oom=3,
        under_oom=False,
        oom_kill_disable=False,
        populated=True,
    )


def test_v2_emptied_cgroup_says_it_holds_no_process() -> None:
    counters = read_memory_counters(host("cgroup_v2_emptied", 3311, V2_ID, version=2).read, 2)

    assert counters is not None
    assert counters.populated is False
    assert counters.oom_kill == 3


def test_v2_before_linux_5_19_has_no_peak_but_still_counts_kills() -> None:
    counters = read_memory_counters(host("cgroup_v2_kernel_5_15", 3311, V2_ID).read, 2)

    assert counters is not None
    assert counters.peak_bytes is None
    assert counters.limit_bytes is None  # memory.max says "max"
    assert counters.oom_kill == 0


def test_v2_memory_stat_and_cpu_stat_parse_as_flat_keyed_files() -> None:
    cgroup = host("cgroup_v2_worker_oom_killed", 3311, V2_ID)

    stat = parse_flat_keyed(cgroup.read("memory.stat") or "")
    cpu = parse_flat_keyed(cgroup.read("cpu.stat") or "")

    assert stat["anon"] == 121634816
    assert stat["inactive_file"] == 6336512
    assert cpu == {
        "usage_usec": 41893200,
        "user_usec": 38112004,
        "system_usec": 3781196,
        "nr_periods": 5210,
        "nr_throttled": 1187,
        "throttled_usec": 92456012,
        "nr_bursts": 0,
        "burst_usec": 0,
    }


def test_the_version_is_guessed_from_the_membership_when_not_given() -> None:
    assert host(*V1_IDLE, version=None).version == 1
    assert host("cgroup_v2_kernel_5_15", 3311, V2_ID, version=None).version == 2


def test_a_pid_whose_cgroup_does_not_name_the_container_is_someone_elses() -> None:
    # On a remote engine, the PID docker inspect gives may be any process of this host.
    assert locate_on_host(V1_IDLE[1], host_root=DATA / V1_IDLE[0], container_id=V1_WORKER[2]) is None


def test_no_proc_entry_or_pid_zero_means_not_visible(tmp_path: Path) -> None:
    assert locate_on_host(4242, host_root=tmp_path) is None
    assert locate_on_host(0, host_root=DATA / V1_IDLE[0]) is None


def test_a_removed_cgroup_reads_as_none(tmp_path: Path) -> None:
    cgroup = HostCgroup(cgroup_root=tmp_path, controllers={"memory": "/docker/gone"}, version=1)

    assert read_memory_counters(cgroup.read, 1) is None


def test_the_v1_high_water_mark_is_reset_by_writing_zero(tmp_path: Path) -> None:
    own = tmp_path / "sys/fs/cgroup/memory/docker/abc"
    own.mkdir(parents=True)
    (own / "memory.max_usage_in_bytes").write_text("67108864\n")
    (tmp_path / "proc/7").mkdir(parents=True)
    (tmp_path / "proc/7/cgroup").write_text("4:memory:/docker/abc\n")
    cgroup = locate_on_host(7, host_root=tmp_path, container_id="abc")
    assert cgroup is not None

    assert reset_peak(cgroup) is None
    # A real cgroup file then reads the current usage; a plain file keeps what was written.
    assert (own / "memory.max_usage_in_bytes").read_text() == "0"


def _v1_tree(tmp_path: Path, *, swaps: str, limit: int, memsw: int, swappiness: int = 60) -> tuple[HostCgroup, Path]:
    own = tmp_path / "sys/fs/cgroup/memory/docker/abc"
    own.mkdir(parents=True)
    (own / "memory.max_usage_in_bytes").write_text(f"{limit}\n")
    (own / "memory.limit_in_bytes").write_text(f"{limit}\n")
    (own / "memory.memsw.limit_in_bytes").write_text(f"{memsw}\n")
    (own / "memory.swappiness").write_text(f"{swappiness}\n")
    (tmp_path / "proc/7").mkdir(parents=True)
    (tmp_path / "proc/7/cgroup").write_text("4:memory:/docker/abc\n")
    (tmp_path / "proc/swaps").write_text(swaps)
    cgroup = locate_on_host(7, host_root=tmp_path, container_id="abc")
    assert cgroup is not None
    return cgroup, own


NO_SWAP = "Filename\tType\tSize\tUsed\tPriority\n"
SWAP = NO_SWAP + "/swapfile\tfile\t2097148\t0\t-2\n"


def test_the_page_cache_is_reclaimed_before_the_reset_when_the_host_has_no_swap(tmp_path: Path) -> None:
    cgroup, own = _v1_tree(tmp_path, swaps=NO_SWAP, limit=128 * MIB, memsw=256 * MIB)

    assert reset_peak(cgroup) is None
    assert (own / "memory.force_empty").read_text() == "0"


def test_the_page_cache_is_reclaimed_when_the_container_may_not_swap(tmp_path: Path) -> None:
    cgroup, own = _v1_tree(tmp_path, swaps=SWAP, limit=128 * MIB, memsw=128 * MIB)

    assert reclaim_page_cache(cgroup) is None
    assert (own / "memory.force_empty").exists()


def test_nothing_is_reclaimed_from_a_container_that_may_swap(tmp_path: Path) -> None:
    # force_empty would push the service's own memory to swap: the reset goes ahead without it.
    cgroup, own = _v1_tree(tmp_path, swaps=SWAP, limit=128 * MIB, memsw=256 * MIB)

    assert reclaim_page_cache(cgroup) == "the container may swap, so its memory is left where it is"
    assert reset_peak(cgroup) is None
    assert not (own / "memory.force_empty").exists()


def test_a_reset_that_cannot_be_written_says_why(tmp_path: Path) -> None:
    cgroup = HostCgroup(cgroup_root=tmp_path, controllers={"memory": "/docker/gone"}, version=1)

    error = reset_peak(cgroup)

    assert error is not None
    assert "memory.max_usage_in_bytes" in error


def test_v2_peak_is_not_reset() -> None:
    assert reset_peak(host("cgroup_v2_worker_oom_killed", 3311, V2_ID)) == "cgroup v2 memory.peak cannot be reset"


class FakeContainer:
    """A container whose `cat` answers from a dict of absolute paths."""

    def __init__(self, files: dict[str, str] | None) -> None:
        self.files = files
        self.calls: list[str] = []

    def exec_run(self, cmd: list[str], **_: object) -> ExecResult:
        self.calls.append(cmd[1])
        if self.files is None:
            return ExecResult(126, b"exec failed")
        if cmd[1] in self.files:
            return ExecResult(0, self.files[cmd[1]].encode())
        return ExecResult(1, None)


def test_exec_reading_gives_the_same_counters_but_cannot_know_if_processes_are_left() -> None:
    root = DATA / V1_WORKER[0] / "sys/fs/cgroup/memory/docker" / V1_WORKER[2]
    files = {f"/sys/fs/cgroup/memory/{p.name}": p.read_text() for p in root.iterdir()}
    read = exec_reader(container_cat(FakeContainer(files)))

    counters = read_memory_counters(read, 1, check_populated=False)

    assert counters is not None
    assert counters.oom_kill == 1
    assert counters.populated is None


def test_exec_in_a_v2_host_namespace_finds_its_own_directory() -> None:
    own = "/system.slice/docker-abc.scope"
    files = {
        "/proc/1/cgroup": f"0::{own}\n",
        f"/sys/fs/cgroup{own}/memory.peak": "1048576\n",
        f"/sys/fs/cgroup{own}/memory.events": "oom 0\noom_kill 0\n",
    }

    counters = read_memory_counters(exec_reader(container_cat(FakeContainer(files))), 2, check_populated=False)

    assert counters is not None
    assert counters.peak_bytes == MIB


def test_exec_without_cat_stops_trying_after_the_first_attempt() -> None:
    container = FakeContainer(None)

    assert read_memory_counters(exec_reader(container_cat(container)), 1) is None
    assert len(container.calls) == 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n", 0),
        (
            "Filename Type Size Used Priority\n/swapfile file 2097148 0 -2\n/dev/zram0 partition 1048572 12 100\n",
            (2097148 + 1048572) * 1024,
        ),
        ("", 0),
    ],
)
def test_swap_space_from_proc_swaps(text: str, expected: int) -> None:
    assert parse_swaps(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [("67108864\n", 67108864), ("max\n", None), ("9223372036854771712\n", None), ("", None), (None, None)],
)
def test_one_number_files(text: str | None, expected: int | None) -> None:
    assert parse_bytes(text) == expected


def test_membership_lists_shared_hierarchies_under_each_name() -> None:
    controllers = parse_membership("2:cpu,cpuacct:/docker/x\n4:memory:/docker/x\n0::/docker/x\ngarbage\n")

    assert controllers == {"cpu": "/docker/x", "cpuacct": "/docker/x", "memory": "/docker/x", "": "/docker/x"}
