"""The kernel's own log of OOM kills (/dev/kmsg): which memory cgroup each kill was charged to, and when.

When a container is OOM-killed before its cgroup is ever read (a limit too small to start under), the
cgroup, with its `oom_kill` counter, is gone by the time anyone looks; the engine's `oom` event, and
`State.OOMKilled` that inspect derives from it, come from containerd, which may miss a kill when the cgroup
is already removed. The kernel still logs the kill, with the cgroup it was charged to
(mm/oom_kill.c, dump_oom_summary):

    oom-kill:constraint=CONSTRAINT_MEMCG,...,oom_memcg=/docker/ID,task_memcg=/docker/ID,task=python3,pid=4242,uid=0

Each /dev/kmsg record is "PRIORITY,SEQUENCE,MICROSECONDS,FLAGS;MESSAGE" (Documentation/ABI/testing/dev-kmsg),
MICROSECONDS on CLOCK_MONOTONIC, the clock of time.monotonic(). The kernel rate-limits this line in an OOM
storm, so a count from it is a lower bound: it is used as evidence that a kill happened, and as a count
only where no cgroup reading can give one. Reading /dev/kmsg needs root (CAP_SYSLOG where dmesg_restrict
is set) and the engine on this host; elsewhere the log is simply not available.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import select
import threading
from dataclasses import dataclass

KMSG = "/dev/kmsg"
# One record is at most about 8 KiB (the kernel's CONSOLE_EXT_LOG_MAX).
_RECORD_BYTES = 8192
# How long stop() waits for the thread, which it wakes through a pipe (the thread sleeps until a record
# comes or stop() writes to the pipe: no periodic wake-ups).
_JOIN_S = 1.4
_OOM_KILL = re.compile(r"oom-kill:.*?\btask_memcg=(?P<memcg>[^,\s]*).*?\bpid=(?P<pid>\d+)")


@dataclass(frozen=True)
class KernelOomKill:
    """One `oom-kill:` line: at (seconds, CLOCK_MONOTONIC), the task's memory cgroup path, its host PID."""

    at: float
    memcg: str
    pid: int


def parse_record(record: str) -> KernelOomKill | None:
    """Parse one /dev/kmsg record; the OOM kill it logs, or None for any other line (or a malformed one)."""
    prefix, sep, message = record.partition(";")
    if not sep:
        return None
    fields = prefix.split(",")
    match = _OOM_KILL.search(message)
    if match is None or len(fields) < 3 or not fields[2].isdigit():
        return None
    return KernelOomKill(at=int(fields[2]) / 1_000_000, memcg=match["memcg"], pid=int(match["pid"]))


class KernelLog:
    """Follow /dev/kmsg from now on in a thread, keeping its OOM-kill lines.

    start() opens the log at its end (earlier records are not read); stop() ends the thread. available is
    False, with error saying why, when the log cannot be read (not root, no such device). kills_for(id)
    returns the kills charged to a cgroup whose path names the container id.
    """

    def __init__(self, path: str = KMSG) -> None:
        self._path = path
        self._kills: list[KernelOomKill] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._fd: int | None = None
        # stop() writes a byte to the pipe's second end to wake the thread blocked in select() on the first.
        self._wake: tuple[int, int] | None = None
        self.error: str | None = None

    @property
    def available(self) -> bool:
        """Tell whether the log is being read."""
        return self._fd is not None and self.error is None

    def start(self) -> None:
        """Open the log at its end and follow it; on failure, record why in error and do nothing else."""
        try:
            fd = os.open(self._path, os.O_RDONLY | os.O_NONBLOCK)
        except OSError as exc:
            self.error = f"{self._path}: {exc.strerror or exc}"
            return
        try:
            os.lseek(fd, 0, os.SEEK_END)
        except OSError as exc:
            os.close(fd)
            self.error = f"{self._path}: {exc.strerror or exc}"
            return
        self._fd = fd
        self._wake = os.pipe()
        self._thread = threading.Thread(target=self._follow, name="stackprobe-kmsg", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Read what is left, end the thread and close the log. Safe to call twice."""
        self._stop.set()
        if self._wake is not None:
            with contextlib.suppress(OSError):  # a closed pipe: the thread has ended already
                os.write(self._wake[1], b"x")
        if self._thread is not None:
            self._thread.join(_JOIN_S)
        if self._fd is not None and (self._thread is None or not self._thread.is_alive()):
            os.close(self._fd)
            self._fd = None
            if self._wake is not None:
                for end in self._wake:
                    os.close(end)
                self._wake = None

    def kills_for(self, container_id: str) -> list[float]:
        """Return the times (CLOCK_MONOTONIC seconds) of the OOM kills charged to that container's cgroup."""
        with self._lock:
            return [kill.at for kill in self._kills if container_id and container_id in kill.memcg]

    def _follow(self) -> None:
        assert self._fd is not None
        assert self._wake is not None
        while not self._stop.is_set():
            ready, _, _ = select.select([self._fd, self._wake[0]], [], [])
            if self._fd in ready:
                self._drain()
        if self.error is None:
            self._drain()  # what was logged up to the stop

    def _drain(self) -> bool:
        """Read every record available now; return whether any was read."""
        assert self._fd is not None
        read_any = False
        while True:
            try:
                record = os.read(self._fd, _RECORD_BYTES)
            except BlockingIOError:
                return read_any
            except OSError as exc:
                if exc.errno == errno.EPIPE:  # records were overwritten before we read them: go on
                    continue
                self.error = f"{self._path}: {exc.strerror or exc}"
                self._stop.set()
                return read_any
            if not record:
                return read_any
            read_any = True
            kill = parse_record(record.decode("utf-8", errors="replace"))
            if kill is not None:
                with self._lock:
                    self._kills.append(kill)
