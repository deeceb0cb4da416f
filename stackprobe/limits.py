"""The limits a container really runs under: what the engine recorded and what its cgroup enforces."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
from docker.models.containers import Container

# cgroup v1 writes "no limit" as the largest page-aligned counter (9223372036854771712 with 4 KiB pages);
# anything this large is not a limit any machine could reach.
_UNLIMITED_FLOOR = 2**62
# The kernel rounds a v1 memory limit down to whole pages, so a limit that is not page-aligned reads back
# smaller than asked. A difference under one page is the same limit.
_PAGE_BYTES = 4096
_CPU_TOLERANCE = 0.001
# Exit codes of an exec whose program could not run at all (126: not executable, 127: not found).
_EXEC_CANNOT_RUN = {126, 127}

CGROUP_SOURCE_EXEC = "exec"
CGROUP_SOURCE_HOST = "host"

# Read a file of the container's cgroup, given its path relative to the cgroup mount; None if absent.
FileReader = Callable[[str], str | None]


@dataclass(frozen=True)
class AppliedLimits:
    """The limits one container runs under, from its HostConfig and from its own cgroup files."""

    container: str
    memory_bytes: int | None
    memswap_bytes: int | None
    cpus: float | None
    cgroup_version: int | None
    # None with a cgroup_source means the cgroup says "unlimited"; None without one means it was not read.
    memory_cgroup_bytes: int | None = None
    memory_cgroup_raw: str | None = None
    cpus_cgroup: float | None = None
    cpu_cgroup_raw: str | None = None
    cgroup_source: str | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def cgroup_read(self) -> bool:
        """Tell whether the container's cgroup files were read at all."""
        return self.cgroup_source is not None


def detect_cgroup_version(client: docker.DockerClient) -> int | None:
    """Return the engine host's cgroup version (1 or 2) from `docker info`, or None if it does not say."""
    value = client.info().get("CgroupVersion")
    try:
        version = int(value)
    except (TypeError, ValueError):
        # Engines before API 1.40 do not report it.
        return None
    return version if version in (1, 2) else None


def read_applied_limits(
    client: docker.DockerClient,
    container: Container | str,
    *,
    cgroup_version: int | None = None,
    host_root: Path = Path("/"),
) -> AppliedLimits:
    """Read a container's memory, swap and CPU limits from inspect and from its cgroup files."""
    if isinstance(container, str):
        container = client.containers.get(container)
    else:
        container.reload()  # attrs are cached from when the object was made
    attrs = container.attrs
    host_config = attrs.get("HostConfig") or {}
    notes: list[str] = []

    memory = host_config.get("Memory") or 0
    memory_bytes = memory if memory > 0 else None
    memswap = host_config.get("MemorySwap") or 0
    if memswap == -1:
        memswap_bytes = None
        notes.append("MemorySwap is -1: swap is unlimited")
    else:
        memswap_bytes = memswap if memswap > 0 else None

    version = cgroup_version if cgroup_version is not None else detect_cgroup_version(client)
    limits = AppliedLimits(
        container=container.name or container.id,
        memory_bytes=memory_bytes,
        memswap_bytes=memswap_bytes,
        cpus=_cpus_from_host_config(host_config),
        cgroup_version=version,
    )

    if version is None:
        notes.append("cgroup version unknown: the engine does not report CgroupVersion")
        return _with(limits, notes=notes)
    if not (attrs.get("State") or {}).get("Running"):
        # A stopped container has no cgroup: there is nothing to read until it runs again.
        notes.append("container is not running: its cgroup could not be read")
        return _with(limits, notes=notes)

    reader, source = _exec_reader(container), CGROUP_SOURCE_EXEC
    probe = _read_cgroup(reader, version)
    if probe is None:
        host_reader = _host_reader(attrs, host_root)
        if host_reader is not None:
            reader, source = host_reader, CGROUP_SOURCE_HOST
            probe = _read_cgroup(reader, version)
        if probe is None:
            notes.append("cgroup files could not be read, neither by exec inside the container nor on the host")
            return _with(limits, notes=notes)
    memory_raw, cpu_raw = probe
    return _with(
        limits,
        memory_cgroup_bytes=parse_cgroup_memory(memory_raw),
        memory_cgroup_raw=memory_raw,
        cpus_cgroup=parse_cgroup_cpus(cpu_raw),
        cpu_cgroup_raw=cpu_raw,
        cgroup_source=source,
        notes=notes,
    )


def compare_limits(memory_bytes: int | None, cpus: float | None, applied: AppliedLimits) -> tuple[bool, list[str]]:
    """Compare the requested (or declared) memory and CPUs with what is applied; return (matches, problems)."""
    problems: list[str] = []
    problems += _memory_problems(memory_bytes, applied)
    problems += _swap_problems(applied)
    problems += _cgroup_memory_problems(applied)
    problems += _cpu_problems(cpus, applied)
    return not problems, problems


def limits_section(
    applied: AppliedLimits,
    *,
    memory_requested_bytes: int | None,
    memory_declared_bytes: int | None,
    cpus_requested: float | None,
) -> dict[str, Any]:
    """Build the report's "limits" object; a requested memory limit takes precedence over a declared one."""
    expected_memory = memory_requested_bytes if memory_requested_bytes is not None else memory_declared_bytes
    matches, problems = compare_limits(expected_memory, cpus_requested, applied)
    if expected_memory is None and applied.memory_bytes is None:
        # Nothing to compare is not a match: a probe's point is the limit, and this run had none.
        matches = False
        problems.insert(
            0,
            "memory limit not in force: none asked for with --memory, none declared in the compose file "
            "and none applied, so this is not a throttled run",
        )
    return {
        "memory_requested_bytes": memory_requested_bytes,
        "memory_declared_bytes": memory_declared_bytes,
        "memory_applied_bytes": applied.memory_bytes,
        "memswap_applied_bytes": applied.memswap_bytes,
        "memory_cgroup_bytes": applied.memory_cgroup_bytes,
        "cgroup_version": applied.cgroup_version,
        "cpus_requested": cpus_requested,
        "cpus_applied": applied.cpus,
        "applied_matches": matches,
        "problems": problems,
    }


def parse_cgroup_memory(raw: str) -> int | None:
    """Parse memory.limit_in_bytes (v1) or memory.max (v2) into bytes; None means unlimited."""
    text = raw.strip()
    if text == "max":
        return None
    value = int(text)
    return None if value >= _UNLIMITED_FLOOR else value


def parse_cgroup_cpus(raw: str | None) -> float | None:
    """Parse "QUOTA PERIOD" (v1 cfs_quota_us and cfs_period_us, or v2 cpu.max) into CPUs; None = unlimited."""
    if raw is None:
        return None
    parts = raw.split()
    if len(parts) != 2 or parts[0] in ("max", "-1"):
        return None
    quota, period = int(parts[0]), int(parts[1])
    if quota <= 0 or period <= 0:
        return None
    return quota / period


def _exact_bytes(value: int) -> str:
    """Format a byte count for a problem text: the exact number and a binary-unit reading."""
    for unit, size in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if value >= size:
            return f"{value} ({value / size:g} {unit})"
    return str(value)


def _with(limits: AppliedLimits, *, notes: list[str], **changes: Any) -> AppliedLimits:
    """Return a copy of limits with the given fields changed and the notes attached."""
    return dataclasses.replace(limits, notes=tuple(notes), **changes)


def _cpus_from_host_config(host_config: dict[str, Any]) -> float | None:
    """Return the CPU limit in CPUs: from NanoCpus (`cpus:`), else CpuQuota/CpuPeriod (`cpu_quota:`)."""
    nano = host_config.get("NanoCpus") or 0
    if nano > 0:
        return nano / 1e9
    quota = host_config.get("CpuQuota") or 0
    if quota > 0:
        # The kernel's default CFS period is 100 ms when none is given.
        period = host_config.get("CpuPeriod") or 100_000
        return quota / period
    return None


def _read_cgroup(reader: FileReader, version: int) -> tuple[str, str | None] | None:
    """Read (memory limit text, "quota period" text) through reader, or None when memory cannot be read."""
    if version == 1:
        memory = reader("memory/memory.limit_in_bytes")
        if memory is None:
            return None
        quota, period = reader("cpu/cpu.cfs_quota_us"), reader("cpu/cpu.cfs_period_us")
        cpu = f"{quota.strip()} {period.strip()}" if quota is not None and period is not None else None
        return memory.strip(), cpu
    memory = reader("memory.max")
    if memory is None:
        return None
    cpu = reader("cpu.max")
    return memory.strip(), cpu.strip() if cpu is not None else None


def _exec_reader(container: Container) -> FileReader:
    """Return a reader that cats files of the container's own cgroup from inside it."""
    usable = True
    v2_own: list[str | None] = []  # filled on first need: the container's path in a host-namespace v2 tree

    def read(relative: str) -> str | None:
        nonlocal usable
        if not usable:
            return None
        status, text = _exec_cat(container, f"/sys/fs/cgroup/{relative}")
        if status == "missing" and "/" not in relative:
            # cgroup v2 with the host cgroup namespace mounts the whole tree: the container's own
            # directory is the path /proc/1/cgroup names ("0::/system.slice/docker-ID.scope").
            if not v2_own:
                v2_own.append(_v2_path_from_proc(_exec_cat(container, "/proc/1/cgroup")[1] or ""))
            if v2_own[0] not in (None, "/"):
                status, text = _exec_cat(container, f"/sys/fs/cgroup{v2_own[0]}/{relative}")
        if status == "cannot-run":
            usable = False  # no cat in the image, or no exec at all: stop trying
        return text if status == "ok" else None

    return read


def _exec_cat(container: Container, path: str) -> tuple[str, str | None]:
    """Run `cat PATH` in the container; return ("ok", text), ("missing", None) or ("cannot-run", None)."""
    try:
        result = container.exec_run(["cat", path], stdout=True, stderr=False)
    except docker.errors.APIError:
        # 409 when the container stopped or is paused between inspect and exec.
        return "cannot-run", None
    if result.exit_code == 0:
        return "ok", result.output.decode("utf-8", "replace")
    if result.exit_code in _EXEC_CANNOT_RUN:
        return "cannot-run", None
    return "missing", None


def _host_reader(attrs: dict[str, Any], host_root: Path) -> FileReader | None:
    """Return a reader of the container's cgroup directories on the engine host, or None if not visible."""
    pid = (attrs.get("State") or {}).get("Pid") or 0
    proc_cgroup = host_root / "proc" / str(pid) / "cgroup"
    try:
        membership = proc_cgroup.read_text() if pid > 0 else ""
    except OSError:
        # The engine runs elsewhere (a VM, another host): its /proc is not ours.
        return None
    controllers = _cgroup_membership(membership)
    if not controllers:
        return None
    cgroup_root = host_root / "sys" / "fs" / "cgroup"

    def read(relative: str) -> str | None:
        if "/" in relative:  # v1: "memory/memory.limit_in_bytes" lives under the memory hierarchy's path
            controller, name = relative.split("/", 1)
            own = controllers.get(controller)
            if own is None:
                return None
            path = cgroup_root / controller / own.lstrip("/") / name
        else:
            own = controllers.get("")
            if own is None:
                return None
            path = cgroup_root / own.lstrip("/") / relative
        try:
            return path.read_text()
        except OSError:
            return None

    return read


def _cgroup_membership(text: str) -> dict[str, str]:
    """Map each controller in a /proc/PID/cgroup text to its path; the v2 unified entry is keyed ""."""
    controllers: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        for name in parts[1].split(","):
            # "cpu,cpuacct" lists two controllers sharing a hierarchy; v1 mounts it under both names.
            controllers.setdefault(name, parts[2])
    return controllers


def _v2_path_from_proc(text: str) -> str | None:
    """Return the unified (v2) cgroup path from a /proc/PID/cgroup text, or None."""
    return _cgroup_membership(text).get("")


def _memory_problems(expected: int | None, applied: AppliedLimits) -> list[str]:
    """Say how the HostConfig memory limit differs from the expected one."""
    if expected is None:
        return []
    if applied.memory_bytes is None:
        return [
            f"memory limit not applied: HostConfig.Memory is 0 (unlimited) while {_exact_bytes(expected)} was asked for"
        ]
    if applied.memory_bytes != expected:
        return [
            f"memory limit differs: HostConfig.Memory is {_exact_bytes(applied.memory_bytes)} "
            f"while {_exact_bytes(expected)} was asked for"
        ]
    return []


def _swap_problems(applied: AppliedLimits) -> list[str]:
    """Say when swap lets the container go past its memory limit."""
    memory = applied.memory_bytes
    if memory is None:
        return []
    advice = "set memswap_limit equal to mem_limit for a strict limit"
    if applied.memswap_bytes is None:
        return [f"swap not limited: MemorySwap is -1 (unlimited); {advice}"]
    if applied.memswap_bytes > memory:
        if applied.memswap_bytes == 2 * memory:
            # The engine's default when only a memory limit is given.
            how = "is twice Memory"
        else:
            how = f"exceeds Memory {memory} by {_exact_bytes(applied.memswap_bytes - memory)}"
        return [f"swap not limited: MemorySwap {applied.memswap_bytes} {how}; {advice}"]
    return []


def _cgroup_memory_problems(applied: AppliedLimits) -> list[str]:
    """Say when the cgroup enforces another memory limit than HostConfig records."""
    if not applied.cgroup_read:
        return []
    cgroup = applied.memory_cgroup_bytes
    host = applied.memory_bytes
    said = (
        f"cgroup says {applied.memory_cgroup_raw} (unlimited)"
        if cgroup is None
        else f"cgroup says {_exact_bytes(cgroup)}"
    )
    if host is None:
        if cgroup is None:
            return []
        return [f"{said} while HostConfig.Memory is 0 (unlimited)"]
    if cgroup is None or abs(cgroup - host) >= _PAGE_BYTES:
        return [f"{said} while HostConfig.Memory is {host}"]
    return []


def _cpu_problems(expected: float | None, applied: AppliedLimits) -> list[str]:
    """Say how the CPU limit in HostConfig and in the cgroup differs from the expected one."""
    problems: list[str] = []
    if expected is not None:
        if applied.cpus is None:
            problems.append(
                f"cpu limit not applied: HostConfig.NanoCpus is 0 (unlimited) while {expected:g} CPUs were asked for"
            )
        elif abs(applied.cpus - expected) > _CPU_TOLERANCE:
            problems.append(
                f"cpu limit differs: HostConfig says {applied.cpus:g} CPUs while {expected:g} were asked for"
            )
    if applied.cgroup_read and applied.cpus is not None:
        cgroup = applied.cpus_cgroup
        if cgroup is None or abs(cgroup - applied.cpus) > _CPU_TOLERANCE:
            said = "unlimited" if cgroup is None else f"{cgroup:g} CPUs"
            problems.append(
                f"cgroup cpu quota says {applied.cpu_cgroup_raw} ({said}) while HostConfig says {applied.cpus:g} CPUs"
            )
    return problems
