"""The prober's own CPU by thread and by phase, printed at the end of a run when STACKPROBE_DEBUG_CPU=1.

A debugging aid for `cost.prober_cpu_seconds` (the process's getrusage from the run's start to the report):
where those seconds went. Each thread's CPU is its own clock (CLOCK_THREAD_CPUTIME_ID, nanoseconds):
read by the thread itself as it ends, so threads that end before the report (the audit's, the watch's, a
status spinner's) are counted whole, and read through pthread_getcpuclockid for those still alive. The
main thread's CPU is also split into the run's phases. A thread that was already running when the run
began (none in a `stackprobe run`) counts with its whole life. Off by default: nothing is patched or read
then.
"""

from __future__ import annotations

import os
import re
import resource
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from typing import TextIO

ENV = "STACKPROBE_DEBUG_CPU"
# Names that vary by run (a project, a container, a worker's number) folded into one row per kind.
_KIND = re.compile(r"^(stackprobe-(?:stats|events-tail|events|attach|cgroups))-.*$|^(stackprobe-audit)-\d+$")


def enabled() -> bool:
    """Tell whether STACKPROBE_DEBUG_CPU asks for the breakdown (any value but "", "0", "false", "no")."""
    return os.environ.get(ENV, "").strip().lower() not in ("", "0", "false", "no")


def process_cpu_seconds() -> float:
    """Return the process's CPU seconds so far, user + system, all threads (getrusage RUSAGE_SELF).

    The clock of report.json's cost.prober_cpu_seconds, so that the breakdown adds up to that figure.
    """
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _label(thread: threading.Thread) -> str:
    """Name a thread for the table: its own name, or its class for an unnamed one (rich's refresh thread)."""
    if thread is threading.main_thread():
        return "MainThread"
    if re.match(r"^Thread-\d+", thread.name):
        target = getattr(thread, "_target", None)
        what = getattr(target, "__qualname__", None) or type(thread).__qualname__
        return f"(unnamed) {what}"
    return thread.name


def kind(label: str) -> str:
    """Fold a thread's label into its kind: "stackprobe-stats-app-1" -> "stackprobe-stats-*"."""
    match = _KIND.match(label)
    if match is None:
        return label
    return f"{match.group(1) or match.group(2)}-*"


class CpuLedger:
    """Count CPU seconds per thread (ended and alive) and per phase of the main thread.

    install() wraps threading.Thread._bootstrap_inner so that every thread started afterwards records its
    own CPU clock when it ends; phase(name) closes the current phase of the main thread and starts another;
    lines() returns the table. All figures are CPU seconds.
    """

    def __init__(self) -> None:
        self.started_process_s = process_cpu_seconds()
        # The main thread's clock counts from the process's start: its share of the run is the growth since now.
        self._main_started_s = time.thread_time()
        self._ended: dict[str, float] = defaultdict(float)
        self._ended_count: dict[str, int] = defaultdict(int)
        self._lock = threading.Lock()
        self._phases: list[tuple[str, float, float]] = []  # (name, process CPU s, main thread CPU s) at its start
        self._original: Callable[[threading.Thread], None] | None = None

    def install(self) -> None:
        """Start recording each new thread's CPU as it ends."""
        original = threading.Thread._bootstrap_inner  # type: ignore[attr-defined]
        ledger = self

        def bootstrap_inner(thread: threading.Thread) -> None:
            try:
                original(thread)
            finally:
                spent = time.thread_time()
                label = _label(thread)
                with ledger._lock:
                    ledger._ended[label] += spent
                    ledger._ended_count[label] += 1

        self._original = original
        threading.Thread._bootstrap_inner = bootstrap_inner  # type: ignore[attr-defined]

    def uninstall(self) -> None:
        """Undo install()."""
        if self._original is not None:
            threading.Thread._bootstrap_inner = self._original  # type: ignore[attr-defined]
            self._original = None

    def phase(self, name: str) -> None:
        """Start a phase of the main thread (call from the main thread)."""
        self._phases.append((name, process_cpu_seconds(), time.thread_time()))

    def threads(self) -> dict[str, tuple[float, int]]:
        """Return CPU seconds and thread count by label: threads that ended, plus those alive now."""
        with self._lock:
            totals = {label: (spent, self._ended_count[label]) for label, spent in self._ended.items()}
        for thread in threading.enumerate():
            if thread is threading.main_thread():
                spent = time.thread_time() - self._main_started_s if threading.current_thread() is thread else None
            else:
                spent = _thread_cpu_s(thread)
            if spent is None:
                continue
            label = _label(thread)
            before, count = totals.get(label, (0.0, 0))
            totals[label] = (before + spent, count + 1)
        return totals

    def lines(self) -> list[str]:
        """Return the breakdown as text lines (the process's CPU since the ledger was made, by thread and phase)."""
        now_process = process_cpu_seconds()
        total = now_process - self.started_process_s
        by_thread = self.threads()
        out = [f"prober CPU: {total:.3f} s since the run began ({self.started_process_s:.3f} s before it)"]
        out.append("  by thread (CPU s, threads):")
        for label, (spent, count) in sorted(by_thread.items(), key=lambda item: -item[1][0]):
            out.append(f"    {spent:8.3f}  {count:3d}  {label}")
        by_kind: dict[str, float] = defaultdict(float)
        for label, (spent, _) in by_thread.items():
            by_kind[kind(label)] += spent
        out.append("  by kind (CPU s):")
        for label, spent in sorted(by_kind.items(), key=lambda item: -item[1]):
            out.append(f"    {spent:8.3f}  {label}")
        if self._phases:
            out.append("  by phase (process CPU s, of it the main thread's):")
            ends = [*self._phases[1:], ("", now_process, time.thread_time())]
            for (name, process_s, main_s), (_, process_end, main_end) in zip(self._phases, ends, strict=True):
                out.append(f"    {process_end - process_s:8.3f}  {main_end - main_s:8.3f}  {name}")
        return out

    def print(self, stream: TextIO | None = None) -> None:
        """Write lines() to stream (default stderr)."""
        print("\n".join(self.lines()), file=stream or sys.stderr, flush=True)


def _thread_cpu_s(thread: threading.Thread) -> float | None:
    """Return a live thread's CPU seconds from its own clock, or None when it is gone or unreadable."""
    if thread.ident is None:
        return None
    try:
        return time.clock_gettime(time.pthread_getcpuclockid(thread.ident))
    except (OSError, ValueError, OverflowError):
        return None


_current: CpuLedger | None = None


def begin(first_phase: str) -> CpuLedger | None:
    """Start a ledger for this run when STACKPROBE_DEBUG_CPU asks for one (else None, and nothing changes)."""
    global _current
    if not enabled():
        return None
    _current = CpuLedger()
    _current.install()
    _current.phase(first_phase)
    return _current


def phase(name: str) -> None:
    """Start a phase of the run's main thread in the current ledger; nothing without one."""
    if _current is not None:
        _current.phase(name)


def finish() -> None:
    """Print the current ledger's breakdown to stderr and drop it; nothing without one."""
    global _current
    ledger, _current = _current, None
    if ledger is not None:
        ledger.uninstall()
        ledger.print()
