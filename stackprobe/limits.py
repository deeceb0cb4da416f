"""The limits a container really runs under: what the engine recorded and what its cgroup enforces."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
from docker.models.containers import Container

from stackprobe import cgroup
from stackprobe.cgroup import CGROUP_SOURCE_EXEC, CGROUP_SOURCE_HOST, FileReader

# The kernel rounds a v1 memory limit down to whole pages, so a limit that is not page-aligned reads back
# smaller than asked. A difference under one page is the same limit.
_PAGE_BYTES = 4096
_CPU_TOLERANCE = 0.001

__all__ = [
    "CGROUP_SOURCE_EXEC",
    "CGROUP_SOURCE_HOST",
    "AppliedLimits",
    "FileReader",
    "compare_limits",
    "detect_cgroup_version",
    "limit_notes",
    "limits_section",
    "parse_cgroup_cpus",
    "parse_cgroup_memory",
    "read_applied_limits",
    "swap_description",
]


@dataclass(frozen=True)
class AppliedLimits:
    """The limits one container runs under, from its HostConfig, its own cgroup files and the engine's host.

    memory_bytes, memswap_bytes: HostConfig.Memory and MemorySwap in bytes (None: 0 or -1, unlimited);
    cpus: HostConfig.NanoCpus (or CpuQuota/CpuPeriod) in CPUs. memory_cgroup_bytes and cpus_cgroup: what
    the kernel enforces (v1 memory.limit_in_bytes, cpu.cfs_quota_us/cpu.cfs_period_us; v2 memory.max,
    cpu.max). swap_limit_supported: `docker info` SwapLimit (False: the kernel has no swap accounting, so
    the engine drops every swap limit). host_swap_bytes: swap space on the engine's host from /proc/swaps
    (0: none, so nothing can be swapped out; None: not read), read where host_swap_source says.
    """

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
    # HostConfig.MemorySwap exactly as the engine recorded it: -1 (unlimited), 0 (unset) or bytes.
    memswap_raw: int | None = None
    swap_limit_supported: bool | None = None
    host_swap_bytes: int | None = None
    host_swap_source: str | None = None

    @property
    def cgroup_read(self) -> bool:
        """Tell whether the container's cgroup files were read at all."""
        return self.cgroup_source is not None

    @property
    def swap_held_to_memory(self) -> bool:
        """Tell whether HostConfig holds memory + swap to the memory limit (no swap allowed)."""
        return (
            self.memory_bytes is not None and self.memswap_bytes is not None and self.memswap_bytes <= self.memory_bytes
        )


def detect_cgroup_version(client: docker.DockerClient) -> int | None:
    """Return the engine host's cgroup version (1 or 2) from `docker info`, or None if it does not say."""
    return _cgroup_version_from_info(client.info())


def _cgroup_version_from_info(info: dict[str, Any]) -> int | None:
    value = info.get("CgroupVersion")
    try:
        version = int(value)  # type: ignore[arg-type]
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
    engine_info: dict[str, Any] | None = None,
) -> AppliedLimits:
    """Read a container's memory, swap and CPU limits from inspect, its cgroup files and the engine's host.

    The cgroup is read by `cat` inside the container, else from the host's cgroup tree (when the engine
    runs on this host); swap space is read from the host's /proc/swaps when the container's cgroup is
    visible here, else from /proc/swaps inside the container (which shows the host's swap).
    engine_info: a `docker info` answer already at hand (else it is asked for once).
    """
    if isinstance(container, str):
        container = client.containers.get(container)
    else:
        container.reload()  # attrs are cached from when the object was made
    attrs = container.attrs
    host_config = attrs.get("HostConfig") or {}
    notes: list[str] = []
    info = engine_info if engine_info is not None else _engine_info(client)
    swap_limit = info.get("SwapLimit")
    swap_limit_supported = swap_limit if isinstance(swap_limit, bool) else None

    memory = host_config.get("Memory") or 0
    memory_bytes = memory if memory > 0 else None
    memswap = host_config.get("MemorySwap") or 0
    if memswap == -1:
        memswap_bytes = None
        if swap_limit_supported is not False:
            notes.append("MemorySwap is -1: swap is unlimited")
    else:
        memswap_bytes = memswap if memswap > 0 else None

    version = cgroup_version if cgroup_version is not None else _cgroup_version_from_info(info)
    limits = AppliedLimits(
        container=container.name or container.id,
        memory_bytes=memory_bytes,
        memswap_bytes=memswap_bytes,
        cpus=_cpus_from_host_config(host_config),
        cgroup_version=version,
        memswap_raw=host_config.get("MemorySwap"),
        swap_limit_supported=swap_limit_supported,
    )

    if version is None:
        notes.append("cgroup version unknown: the engine does not report CgroupVersion")
        return _with(limits, notes=notes)
    if not (attrs.get("State") or {}).get("Running"):
        # A stopped container has no cgroup: there is nothing to read until it runs again.
        notes.append("container is not running: its cgroup could not be read")
        return _with(limits, notes=notes)

    cat = _guarded(cgroup.container_cat(container))
    host = _host_cgroup(attrs, host_root, version)
    reader, source = cgroup.exec_reader(cat), CGROUP_SOURCE_EXEC
    probe = _read_cgroup(reader, version)
    if probe is None and host is not None:
        reader, source = host.read, CGROUP_SOURCE_HOST
        probe = _read_cgroup(reader, version)
    host_swap, swap_source = _host_swap(host, cat)
    if probe is None:
        notes.append("cgroup files could not be read, neither by exec inside the container nor on the host")
        return _with(limits, notes=notes, host_swap_bytes=host_swap, host_swap_source=swap_source)
    memory_raw, cpu_raw = probe
    return _with(
        limits,
        memory_cgroup_bytes=parse_cgroup_memory(memory_raw),
        memory_cgroup_raw=memory_raw,
        cpus_cgroup=parse_cgroup_cpus(cpu_raw),
        cpu_cgroup_raw=cpu_raw,
        cgroup_source=source,
        notes=notes,
        host_swap_bytes=host_swap,
        host_swap_source=swap_source,
    )


def _engine_info(client: docker.DockerClient) -> dict[str, Any]:
    """Return `docker info`, or an empty answer when the engine fails to give one."""
    try:
        return dict(client.info())
    except docker.errors.APIError:
        return {}


def _guarded(cat: cgroup.ExecCat) -> cgroup.ExecCat:
    """Return the same `cat`, which stops trying once it proved unable to run at all."""
    usable = True

    def guarded(path: str) -> tuple[str, str | None]:
        nonlocal usable
        if not usable:
            return "cannot-run", None
        status, text = cat(path)
        if status == "cannot-run":
            usable = False
        return status, text

    return guarded


def _host_swap(host: cgroup.HostCgroup | None, cat: cgroup.ExecCat) -> tuple[int | None, str | None]:
    """Return the swap space of the engine's host in bytes and where it was read; (None, None) if unread."""
    if host is not None:
        text = host.read_host("proc/swaps")
        if text is not None:
            return cgroup.parse_swaps(text), "the host's /proc/swaps"
        return None, None
    status, text = cat("/proc/swaps")
    if status == "ok" and text is not None:
        # /proc/swaps is not namespaced: inside a container it lists the host's swap devices.
        return cgroup.parse_swaps(text), "/proc/swaps inside the container"
    return None, None


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
        "notes": [*applied.notes, *limit_notes(applied)],
    }


def parse_cgroup_memory(raw: str) -> int | None:
    """Parse memory.limit_in_bytes (v1) or memory.max (v2) into bytes; None means unlimited."""
    return cgroup.parse_bytes(raw)


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


def _host_cgroup(attrs: dict[str, Any], host_root: Path, version: int) -> cgroup.HostCgroup | None:
    """Return the container's cgroup directories on the engine host, or None if not visible from here."""
    pid = (attrs.get("State") or {}).get("Pid") or 0
    return cgroup.locate_on_host(pid, host_root=host_root, container_id=attrs.get("Id"), version=version)


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
    """Say when swap lets the container go past its memory limit and something in Compose could stop it."""
    memory = applied.memory_bytes
    if memory is None or applied.swap_held_to_memory:
        return []
    if applied.swap_limit_supported is False:
        # The engine drops every swap limit on such a kernel (MemorySwap reads -1 or 0 whatever was asked):
        # nothing to fix in the compose file, and the memory limit itself is enforced. limit_notes says so.
        return []
    if applied.host_swap_bytes == 0:
        return []  # strict in effect: the host has no swap to go to; limit_notes says so
    advice = "set memswap_limit equal to mem_limit for a strict limit"
    if applied.memswap_bytes is None:
        return [f"swap not limited: MemorySwap is -1 (unlimited); {advice}"]
    if applied.memswap_bytes == 2 * memory:
        # The engine's default when only a memory limit is given.
        how = "is twice Memory"
    else:
        how = f"exceeds Memory {memory} by {_exact_bytes(applied.memswap_bytes - memory)}"
    return [f"swap not limited: MemorySwap {applied.memswap_bytes} {how}; {advice}"]


def limit_notes(applied: AppliedLimits) -> list[str]:
    """Return what is worth knowing about the limits but is no problem: how swap stands, and why.

    An engine without swap limits (`docker info` SwapLimit false) and a host without swap are both said
    here, with the source of each fact, instead of a "swap not limited" problem.
    """
    memory = applied.memory_bytes
    if memory is None:
        return []
    host = _host_swap_text(applied)
    if applied.swap_limit_supported is False:
        note = (
            "swap limits are unsupported on this engine (docker info SwapLimit: false; the kernel does not "
            f"account swap per cgroup), so HostConfig.MemorySwap reads {applied.memswap_raw} whatever memswap_limit "
            f"says; the memory limit of {_exact_bytes(memory)} is enforced all the same"
        )
        if applied.host_swap_bytes == 0:
            note += f"; {host} lists no swap device, so the limit is strict in effect"
        elif applied.host_swap_bytes is not None:
            note += (
                f"; {host} lists {_exact_bytes(applied.host_swap_bytes)} of swap, which the container can use "
                "beyond its memory limit and which no setting can stop on this engine"
            )
        else:
            note += "; whether the host has swap could not be read"
        return [note]
    if not applied.swap_held_to_memory and applied.host_swap_bytes == 0:
        allowed = "-1 (unlimited)" if applied.memswap_bytes is None else str(applied.memswap_bytes)
        return [
            f"memory limit strict in effect: MemorySwap {allowed} would allow swap, but {host} lists no swap "
            "device, so nothing can be swapped out; swap added to the host would make the limit soft"
        ]
    return []


def swap_description(applied: AppliedLimits) -> str:
    """Describe in a few words how swap stands beside the memory limit, for the console."""
    if applied.memory_bytes is None:
        return "no memory limit"
    if applied.swap_limit_supported is False:
        if applied.host_swap_bytes == 0:
            return "strict in effect: no swap on the host (this engine has no swap limits)"
        return "swap not limitable on this engine"
    if applied.swap_held_to_memory:
        return "strict"
    if applied.host_swap_bytes == 0:
        return "strict in effect: no swap on the host"
    if applied.memswap_bytes is None:
        return "swap unlimited"
    return f"swap allowed up to {_exact_bytes(applied.memswap_bytes - applied.memory_bytes)}"


def _host_swap_text(applied: AppliedLimits) -> str:
    return applied.host_swap_source or "the host's /proc/swaps"


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
