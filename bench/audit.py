"""Benchmark the write audit: 300,000 acknowledged writes read back, in time, CPU and memory.

    python bench/audit.py [--writes 300000] [--workers 8] [--old] [--url URL --log PATH]

By default the target is a stand-in users service started in a child process on 127.0.0.1: asyncio,
answering GET /users/<id> with that user's JSON at once. It measures what the audit itself costs the
prober, not how fast a real service answers (the bundled one, under its 128 MiB limit, answers slower:
there the audit waits more and spends the same CPU). With --url and --log the audit reads back a real
write log from a running service instead (for example after `stackprobe run --keep-up --out DIR`, the
stack's URL and DIR/writes.jsonl).

Each measurement runs in a fresh process of its own, so that its maximum RSS is its own:
- the timed run: seconds, writes/s, CPU seconds (all threads), growth of the maximum RSS;
- the traced run: the peak of the Python heap under tracemalloc (which slows each request about tenfold);
- with --old, the audit as it was before streaming (audit_writes over a list), read from git history.

Goals: 300,000 writes in under 60 s, with under 50 MiB of heap.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from stackprobe.audit import audit_write_log  # noqa: E402

MIB = 2**20
GOAL_SECONDS_PER_300K = 60.0
GOAL_HEAP_MIB = 50.0
# The old audit's cost as measured when it was replaced, for when --old is not asked for.
OLD_QUOTED = "~620 MiB of heap for 300k writes (a list of them and a Future each)"


# -- the stand-in service ------------------------------------------------------------------------------


class _Users(asyncio.Protocol):
    """HTTP/1.1 keep-alive, GET only: /users/<id> answers that user's JSON, anything else 404."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]
        self.pending = b""

    def data_received(self, data: bytes) -> None:
        self.pending += data
        answers = []
        while (end := self.pending.find(b"\r\n\r\n")) >= 0:
            head, self.pending = self.pending[:end], self.pending[end + 4 :]
            answers.append(_answer(head.split(b" ", 2)[1]))
        if answers:
            self.transport.write(b"".join(answers))


def _answer(target: bytes) -> bytes:
    user = target.removeprefix(b"/users/")
    if user is not target and user.isdigit():
        status = b"200 OK"
        body = b'{"id": %s, "name": "user-%s", "created_at": "2026-01-01T00:00:00Z"}' % (user, user)
    else:
        status, body = b"404 Not Found", b'{"error": "not found"}'
    head = b"HTTP/1.1 %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % (status, len(body))
    return head + body


def serve() -> None:
    """Serve the stand-in on a free 127.0.0.1 port; print the port; stop when stdin closes."""

    async def main() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(_Users, "127.0.0.1", 0)
        print(server.sockets[0].getsockname()[1], flush=True)
        await loop.run_in_executor(None, sys.stdin.read)
        server.close()

    asyncio.run(main())


# -- one measurement, in a process of its own ----------------------------------------------------------


def _old_audit_module() -> Any:
    """Load stackprobe/audit.py as it was before the streaming audit replaced audit_writes."""
    relative = "stackprobe/audit.py"
    found = subprocess.run(
        ["git", "-C", str(ROOT), "log", "-1", "--format=%H", "-S", "def audit_writes", "--", relative],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    if not found:
        raise SystemExit("no commit in git history has audit_writes")
    for revision in (found, f"{found}^"):
        source = subprocess.run(
            ["git", "-C", str(ROOT), "show", f"{revision}:{relative}"], capture_output=True, text=True, check=False
        ).stdout
        if "def audit_writes" in source:
            break
    else:
        raise SystemExit(f"audit_writes is neither in {found} nor its parent")
    spec = importlib.util.spec_from_loader("stackprobe_old_audit", loader=None)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    exec(compile(source, f"{revision}:{relative}", "exec"), module.__dict__)
    return module


def measure(kind: str, url: str, log: Path, workers: int) -> dict[str, Any]:
    """Audit log once as `kind` (new, new-traced, old) and return the figures."""
    old = _old_audit_module() if kind == "old" else None
    if kind == "new-traced":
        tracemalloc.start()
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    cpu_before, started = time.process_time(), time.monotonic()
    if old is not None:
        result = old.audit_writes(url, old.read_write_log(log), workers=workers)
        unverified = None
    else:
        result = audit_write_log(url, log, workers=workers, deadline_s=3600)
        unverified = result.unverified
    seconds = time.monotonic() - started
    figures = {
        "kind": kind,
        "acknowledged": result.acknowledged,
        "verified": result.verified,
        "lost": result.lost,
        "unverified": unverified,
        "seconds": seconds,
        "cpu_seconds": time.process_time() - cpu_before,
        # ru_maxrss is in KiB on Linux.
        "rss_growth_mib": (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024,
        "heap_peak_mib": tracemalloc.get_traced_memory()[1] / MIB if kind == "new-traced" else None,
        "gave_up": getattr(result, "gave_up", None),
    }
    return figures


def run_child(kind: str, url: str, log: Path, workers: int) -> dict[str, Any]:
    """Run one measurement in a fresh interpreter and return its figures."""
    done = subprocess.run(
        [sys.executable, __file__, "--child", kind, "--url", url, "--log", str(log), "--workers", str(workers)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"the {kind} run failed:\n{done.stderr.strip()}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# -- the bench -----------------------------------------------------------------------------------------


def write_log(path: Path, writes: int) -> None:
    """Write a log of `writes` acknowledged creates of /users/1 … /users/<writes>, as the locustfile does."""
    with path.open("w") as out:
        for user in range(1, writes + 1):
            out.write(f'{{"location": "/users/{user}", "expect": {{"id": {user}, "name": "user-{user}"}}}}\n')


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writes", type=int, default=300_000, help="writes in the generated log (default: 300000)")
    parser.add_argument("--workers", type=int, default=8, help="the audit's worker threads (default: 8)")
    parser.add_argument("--old", action="store_true", help="also run the old list-based audit (slow, ~2 KiB/write)")
    parser.add_argument("--no-trace", action="store_true", help="skip the tracemalloc run (it takes minutes)")
    parser.add_argument("--url", help="audit a running service at this URL instead of the stand-in")
    parser.add_argument("--log", type=Path, help="with --url: the write log to read back")
    parser.add_argument("--child", choices=("new", "new-traced", "old"), help=argparse.SUPPRESS)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if (args.url is None) != (args.log is None) and args.child is None:
        parser.error("--url and --log go together")
    return args


def _row(name: str, values: Sequence[str], goal: str = "") -> str:
    return f"{name:<22}" + "".join(f"{value:>14}" for value in values) + f"   {goal}"


def report(runs: Sequence[dict[str, Any]], target: str, workers: int) -> None:
    """Print each run's figures side by side, with the goals."""
    timed = runs[0]
    writes = timed["acknowledged"] or 0
    print(f"\nWrite audit of {writes:,} writes, {workers} workers, against {target}:\n")
    print(_row("", [run["kind"] for run in runs], "goal"))

    def cells(key: str, form: str) -> list[str]:
        return [form.format(run[key]) if run[key] is not None else "-" for run in runs]

    goal_seconds = GOAL_SECONDS_PER_300K * writes / 300_000
    print(_row("writes", cells("acknowledged", "{:,}")))
    print(_row("verified", cells("verified", "{:,}")))
    print(_row("lost", cells("lost", "{:,}")))
    print(_row("unverified", cells("unverified", "{:,}")))
    print(_row("seconds", cells("seconds", "{:.1f}"), f"< {goal_seconds:.0f} (60 s per 300k; traced run slowed)"))
    print(_row("writes/s", [f"{run['acknowledged'] / run['seconds']:,.0f}" for run in runs]))
    print(_row("CPU seconds", cells("cpu_seconds", "{:.1f}")))
    print(_row("CPU µs/write", [f"{1e6 * run['cpu_seconds'] / max(writes, 1):.0f}" for run in runs]))
    if all("server_cpu_seconds" in run for run in runs):
        print(_row("stand-in CPU seconds", cells("server_cpu_seconds", "{:.1f}"), "(the server's, not the audit's)"))
    print(_row("max RSS growth MiB", cells("rss_growth_mib", "{:.1f}")))
    print(_row("tracemalloc peak MiB", cells("heap_peak_mib", "{:.2f}"), f"< {GOAL_HEAP_MIB:.0f}"))
    if not any(run["kind"] == "old" for run in runs):
        print(f"\nold (quoted, run with --old to measure): {OLD_QUOTED}")
    verdicts = [f"time {'met' if timed['seconds'] < goal_seconds else 'MISSED'}"]
    traced = [run for run in runs if run["heap_peak_mib"] is not None]
    if traced:
        verdicts.append(f"heap {'met' if traced[0]['heap_peak_mib'] < GOAL_HEAP_MIB else 'MISSED'}")
    print("Goals: " + ", ".join(verdicts))
    load = os.getloadavg()[0]
    if load > (os.cpu_count() or 1) * 0.5:
        print(f"Host: load average {load:.1f} on {os.cpu_count()} CPUs: other work competed; figures are contended.")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve:
        serve()
        return 0
    if args.child:
        print(json.dumps(measure(args.child, args.url, args.log, args.workers)))
        return 0
    kinds = ["new"] + ([] if args.no_trace else ["new-traced"]) + (["old"] if args.old else [])
    if args.url:
        target = f"{args.url} (the write log {args.log})"
        runs = [run_child(kind, args.url, args.log, args.workers) for kind in kinds]
        report(runs, target, args.workers)
        return 0
    target = "a stand-in service in a child process on 127.0.0.1 (answers at once: this is the audit's own cost)"
    server = subprocess.Popen([sys.executable, __file__, "--serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert server.stdout is not None
        url = f"http://127.0.0.1:{int(server.stdout.readline())}"
        with tempfile.TemporaryDirectory(prefix="stackprobe-bench-audit-") as folder:
            log = Path(folder) / "writes.jsonl"
            write_log(log, args.writes)
            runs = []
            stand_in = psutil.Process(server.pid)
            for kind in kinds:
                print(f"Running {kind} …", flush=True)
                before = sum(stand_in.cpu_times()[:2])
                runs.append(run_child(kind, url, log, args.workers))
                runs[-1]["server_cpu_seconds"] = sum(stand_in.cpu_times()[:2]) - before
        report(runs, target, args.workers)
    finally:
        server.terminate()
        server.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
