"""A container's cgroup files: where they are, how to read them, and what the kernel's memory counters say.

Everything here reads files below a root directory, the engine host's "/" in production and a fake tree
in tests, or through a `cat` run inside the container when the host's tree is not visible (an engine in a
VM or on another host). No Docker API call is made here; callers pass what `docker inspect` said.

Paths given to a reader are relative to the cgroup mount: "memory/memory.oom_control" on cgroup v1 (the
controller's hierarchy first) and "memory.events" on cgroup v2 (one unified tree).

What the kernel keeps, and what is read from it (Documentation/admin-guide/cgroup-v1/memory.rst and
cgroup-v2.rst):

- high-water mark of charged memory (anonymous memory *and* page cache, the figure the limit is held
  against): v1 `memory.max_usage_in_bytes`, reset by writing 0 to it; v2 `memory.peak` (kernel 5.19+),
  which cannot be reset for everyone, so it covers the cgroup's whole life;
- OOM kills: `oom_kill` in v1 `memory.oom_control` (kernel 4.13+) and in v2 `memory.events`;
- frozen at the limit: v1 `under_oom 1` with `oom_kill_disable 1` in `memory.oom_control` (v2 has no
  oom_kill_disable);
- whether any process is left: v1 `cgroup.procs` empty, v2 `populated 0` in `cgroup.events`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker

CGROUP_SOURCE_EXEC = "exec"
CGROUP_SOURCE_HOST = "host"

# cgroup v1 writes "no limit" as the largest page-aligned counter (9223372036854771712 with 4 KiB pages);
# anything this large is not a limit any machine could reach.
UNLIMITED_FLOOR = 2**62
# Exit codes of an exec whose program could not run at all (126: not executable, 127: not found).
_EXEC_CANNOT_RUN = {126, 127}
# One read of a cgroup file; the kernel hands a small file over whole, a larger one (cgroup.procs) in pieces.
_READ_BYTES = 65536

# Read a file of the container's cgroup, given its path relative to the cgroup mount; None if unreadable.
FileReader = Callable[[str], str | None]
# Run `cat PATH` in the container: ("ok", text), ("missing", None) or ("cannot-run", None).
ExecCat = Callable[[str], tuple[str, str | None]]


@dataclass(frozen=True)
class MemoryCounters:
    """One reading of a container's memory cgroup, as the kernel keeps it; sizes in bytes.

    peak_bytes: the high-water mark of charged memory (page cache included): v1 memory.max_usage_in_bytes
        (since creation or its last reset), v2 memory.peak (since creation; None on kernels before 5.19).
    limit_bytes: v1 memory.limit_in_bytes or v2 memory.max; None when unlimited or unreadable.
    oom_kill: processes the kernel OOM-killed in this cgroup since it was created (v1 memory.oom_control,
        kernel 4.13+; v2 memory.events); None when the kernel does not say.
    oom: v2 only, memory.events `oom`: times the cgroup reached its limit and the OOM killer was invoked.
    under_oom, oom_kill_disable: v1 memory.oom_control; both true means frozen at the limit (nothing is
        killed, every allocating task waits). Always false on v2.
    populated: False when no process is left in the cgroup (its last counters are final); None when not
        known (read by exec: the reading `cat` is itself in the cgroup).
    """

    version: int
    peak_bytes: int | None
    limit_bytes: int | None
    oom_kill: int | None
    oom: int | None = None
    under_oom: bool = False
    oom_kill_disable: bool = False
    populated: bool | None = None

    @property
    def frozen(self) -> bool:
        """Tell whether the cgroup is frozen at its limit (v1 under_oom with OOM killing disabled)."""
        return self.under_oom and self.oom_kill_disable


def parse_membership(text: str) -> dict[str, str]:
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


def parse_flat_keyed(text: str) -> dict[str, int]:
    """Parse a flat keyed file ("key value" lines: memory.stat, memory.events, cpu.stat, memory.oom_control)."""
    values: dict[str, int] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2:
            try:
                values[parts[0]] = int(parts[1])
            except ValueError:
                continue
    return values


def parse_bytes(text: str | None) -> int | None:
    """Parse a one-number file (memory.peak, memory.max, memory.limit_in_bytes, ...); None for "max" or huge."""
    if text is None:
        return None
    value = text.strip()
    if not value or value == "max":
        return None
    number = int(value)
    return None if number >= UNLIMITED_FLOOR else number


def parse_swaps(text: str) -> int:
    """Return the swap space /proc/swaps lists, in bytes (its Size column is in KiB); 0 when it lists none."""
    total = 0
    for line in text.splitlines()[1:]:
        parts = line.split()
        if len(parts) >= 3 and parts[2].isdigit():
            total += int(parts[2]) * 1024
    return total


def memory_path(version: int, name: str) -> str:
    """Return a memory controller file's path relative to the cgroup mount for the given version."""
    return f"memory/{name}" if version == 1 else name


def read_memory_counters(read: FileReader, version: int, *, check_populated: bool = True) -> MemoryCounters | None:
    """Read a container's memory counters through `read`; None when its memory cgroup cannot be read.

    Whether processes are left is read first: when none are, the counters read after it are final (an OOM
    kill is counted before its SIGKILL is sent, so a kill that emptied the cgroup is in the counter).
    """
    populated: bool | None = None
    if check_populated:
        populated = _populated(read, version)
    if version == 1:
        peak_text = read("memory/memory.max_usage_in_bytes")
        control_text = read("memory/memory.oom_control")
        if peak_text is None and control_text is None:
            return None
        control = parse_flat_keyed(control_text or "")
        return MemoryCounters(
            version=1,
            peak_bytes=_int_or_none(peak_text),
            limit_bytes=parse_bytes(read("memory/memory.limit_in_bytes")),
            oom_kill=control.get("oom_kill"),
            under_oom=control.get("under_oom", 0) == 1,
            oom_kill_disable=control.get("oom_kill_disable", 0) == 1,
            populated=populated,
        )
    events_text = read("memory.events")
    peak_text = read("memory.peak")
    if events_text is None and peak_text is None:
        return None
    events = parse_flat_keyed(events_text or "")
    return MemoryCounters(
        version=2,
        peak_bytes=_int_or_none(peak_text),
        limit_bytes=parse_bytes(read("memory.max")),
        oom_kill=events.get("oom_kill"),
        oom=events.get("oom"),
        populated=populated,
    )


def _populated(read: FileReader, version: int) -> bool | None:
    """Tell whether any process is left in the cgroup; None when the file cannot be read."""
    if version == 1:
        procs = read("memory/cgroup.procs")
        return None if procs is None else bool(procs.split())
    events = read("cgroup.events")
    if events is None:
        return None
    populated = parse_flat_keyed(events).get("populated")
    return None if populated is None else populated == 1


def _int_or_none(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        return int(text.strip())
    except ValueError:
        return None


@dataclass(frozen=True)
class HostCgroup:
    """A container's cgroup directories on the engine's host, found through /proc/PID/cgroup.

    cgroup_root: the cgroup mount (host_root/sys/fs/cgroup); controllers: each controller's path from
    /proc/PID/cgroup ("" for the v2 unified entry); version: 1 or 2.
    """

    cgroup_root: Path
    controllers: Mapping[str, str]
    version: int
    host_root: Path = Path("/")
    # Each file's path as read() opens it, found once: the watch reads the same few files every 0.5 s.
    _paths: dict[str, str | None] = field(default_factory=dict, init=False, repr=False, compare=False)

    def path(self, relative: str) -> Path | None:
        """Return the host path of a file given relative to the cgroup mount, or None if not in this cgroup."""
        if "/" in relative:  # v1: "memory/memory.limit_in_bytes" lives under the memory hierarchy's path
            controller, name = relative.split("/", 1)
            own = self.controllers.get(controller)
            if own is None:
                return None
            return self.cgroup_root / controller / own.lstrip("/") / name
        own = self.controllers.get("")
        if own is None:
            return None
        return self.cgroup_root / own.lstrip("/") / relative

    def read(self, relative: str) -> str | None:
        """Return a cgroup file's text, or None when it is absent or unreadable (the cgroup went away)."""
        try:
            path = self._paths[relative]
        except KeyError:
            found = self.path(relative)
            path = self._paths[relative] = None if found is None else str(found)
        if path is None:
            return None
        # os.open and os.read rather than Path.read_text: a tenth of the CPU for these small files.
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return None
        try:
            chunks = []
            while chunk := os.read(fd, _READ_BYTES):
                chunks.append(chunk)
        except OSError:
            return None
        finally:
            os.close(fd)
        return b"".join(chunks).decode("utf-8", "replace")

    def write(self, relative: str, text: str) -> str | None:
        """Write a cgroup file; return None on success, else why it failed."""
        path = self.path(relative)
        if path is None:
            return f"{relative}: no such controller in the container's cgroup"
        try:
            path.write_text(text)
        except OSError as exc:
            return f"{path}: {exc.strerror or exc}"
        return None

    def read_host(self, relative: str) -> str | None:
        """Return a file of the engine's host below its root (e.g. "proc/swaps"), or None."""
        try:
            return (self.host_root / relative).read_text()
        except OSError:
            return None


def locate_on_host(
    pid: int, *, host_root: Path = Path("/"), container_id: str | None = None, version: int | None = None
) -> HostCgroup | None:
    """Find the cgroup of the container whose PID 1 has host PID `pid`; None when it is not visible here.

    Not visible: the engine runs in a VM or on another host (its PIDs are not ours), or the PID is gone.
    With container_id, a /proc/PID/cgroup that does not name the container is someone else's process and
    is refused. Without version, v1 is assumed when a memory hierarchy is listed, else v2.
    """
    if pid <= 0:
        return None
    try:
        membership = (host_root / "proc" / str(pid) / "cgroup").read_text()
    except OSError:
        return None
    controllers = parse_membership(membership)
    if not controllers:
        return None
    if container_id and not any(container_id in path for path in controllers.values()):
        return None
    if version is None:
        version = 1 if "memory" in controllers else 2
    return HostCgroup(
        cgroup_root=host_root / "sys" / "fs" / "cgroup", controllers=controllers, version=version, host_root=host_root
    )


def can_swap(cgroup: HostCgroup) -> bool:
    """Tell whether the kernel may move this v1 cgroup's anonymous memory to swap.

    No when the host lists no swap (/proc/swaps), when memory.memsw.limit_in_bytes equals
    memory.limit_in_bytes (Compose's memswap_limit equal to mem_limit), or when memory.swappiness is 0.
    Unreadable files count as "may swap", so nothing is reclaimed on a guess.
    """
    swaps = cgroup.read_host("proc/swaps")
    if swaps is not None and parse_swaps(swaps) == 0:
        return False
    limit = parse_bytes(cgroup.read("memory/memory.limit_in_bytes"))
    memsw = parse_bytes(cgroup.read("memory/memory.memsw.limit_in_bytes"))
    if limit is not None and memsw is not None and memsw <= limit:
        return False
    return _int_or_none(cgroup.read("memory/memory.swappiness")) != 0


def reclaim_page_cache(cgroup: HostCgroup) -> str | None:
    """Reclaim a v1 cgroup's page cache before its high-water mark is reset; None when done, else why not.

    v1 counts page cache in memory.usage_in_bytes and keeps it until the limit forces reclaim, so a
    container that read its image's files from a cold cache (a fresh machine, the first run after a build)
    sits at its limit before any load, and a high-water mark reset then stays at the limit. Writing
    memory.force_empty makes the kernel reclaim what it can (cgroup-v1/memory.rst, "force_empty"): clean
    page cache, and anonymous memory only where it may swap; so this is done only when can_swap() is false,
    and the service loses nothing but cache it re-reads on demand.
    """
    if cgroup.version != 1:
        return "cgroup v2 has no force_empty"
    if can_swap(cgroup):
        return "the container may swap, so its memory is left where it is"
    return cgroup.write("memory/memory.force_empty", "0")


def reset_peak(cgroup: HostCgroup) -> str | None:
    """Reset a v1 cgroup's high-water mark (write 0 to memory.max_usage_in_bytes); None on success, else why not.

    The page cache is reclaimed first where that is safe (reclaim_page_cache), so the mark starts from what
    the service holds, not from the cache a cold start left at the limit. v2's memory.peak cannot be reset
    for every reader (kernels 6.12+ reset it per open file only), so a v2 peak always covers the cgroup's
    whole life.
    """
    if cgroup.version != 1:
        return "cgroup v2 memory.peak cannot be reset"
    reclaim_page_cache(cgroup)
    return cgroup.write("memory/memory.max_usage_in_bytes", "0")


def exec_reader(cat: ExecCat) -> FileReader:
    """Return a reader that cats files of the container's own cgroup from inside it (through `cat`).

    Inside a container /sys/fs/cgroup is its own cgroup, except with cgroup v2 and the host's cgroup
    namespace, where the whole tree is mounted: the container's directory is then the path its
    /proc/1/cgroup names. Once `cat` proves unable to run, no further exec is tried.
    """
    usable = True
    v2_own: list[str | None] = []  # filled on first need: the container's path in a host-namespace v2 tree

    def read(relative: str) -> str | None:
        nonlocal usable
        if not usable:
            return None
        status, text = cat(f"/sys/fs/cgroup/{relative}")
        if status == "missing" and "/" not in relative:
            if not v2_own:
                v2_own.append(parse_membership(cat("/proc/1/cgroup")[1] or "").get(""))
            if v2_own[0] not in (None, "/"):
                status, text = cat(f"/sys/fs/cgroup{v2_own[0]}/{relative}")
        if status == "cannot-run":
            usable = False  # no cat in the image, or no exec at all: stop trying
        return text if status == "ok" else None

    return read


def container_cat(container: Any) -> ExecCat:
    """Return an ExecCat running `cat` in a docker SDK Container (anything with exec_run)."""

    def cat(path: str) -> tuple[str, str | None]:
        try:
            result = container.exec_run(["cat", path], stdout=True, stderr=False)
        except docker.errors.APIError:
            # 409 when the container stopped or is paused between inspect and exec.
            return "cannot-run", None
        if result.exit_code == 0:
            return "ok", (result.output or b"").decode("utf-8", "replace")
        if result.exit_code in _EXEC_CANNOT_RUN:
            return "cannot-run", None
        return "missing", None

    return cat
