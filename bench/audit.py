"""Benchmark the write audit: 300,000 acknowledged writes read back, in time, CPU and memory.

    python bench/audit.py [--target bundled|stand-in] [--writes 300000] [--workers 8] [--no-trace] [--per-write] [--old]
    python bench/audit.py --url URL --log PATH [--workers 8] [--no-trace] [--per-write] [--old]

Three targets:
- bundled (the default): the bundled stack (docker-compose.yml, its app under its own 128 MiB strict limit)
  brought up under a Compose project of its own (`docker compose -p NAME up --build --wait`, the app on a
  free 127.0.0.1 port, its own database volume). services/users/seed.sh fills the users table to --writes
  rows; their ids and names are read back in bulk with psql in the db container and written as the
  locustfile (loadtests/registrar.py) logs its creates: the listing it declares ({"type": "scan", "url":
  "/users?limit=500", "key": "id"}), then an invoke (with its name's lookup) and an ok (location and
  expect {"id": ..., "name": ...}) per create; then audit_write_log reads them back from the service. The
  stack is torn down afterwards, its volume with it (only what carries the project's label). This is what
  the audit takes on a real service.
- stand-in: a stand-in users service in a child process on 127.0.0.1, asyncio, answering the bundled
  service's GET /users?limit=N&after=ID pages, /users?name=NAME and /users/<id> at once: what the audit
  itself costs the prober, without a service's own pace.
- --url and --log: a running service and its write log (for example after `stackprobe run --keep-up --out
  DIR`, the stack's URL and DIR/writes.jsonl).

Each measurement runs in a fresh process of its own, so that its maximum RSS is its own:
- listed, the timed run: seconds, writes/s, CPU seconds (all threads), growth of the maximum RSS;
- listed-traced: the peak of the Python heap under tracemalloc (which slows each request about tenfold);
- with --per-write, the baseline: the same log without its listing, so that every write is read back alone
  at its lookup (the audit before the listing; 300,000 writes take minutes);
- with --old, the audit as it was before streaming (audit_writes over a list), read from git history.
Beside them, the CPU seconds the service spent answering (the bundled stack's app and db containers, or
the stand-in process): not the audit's, but where the rest of the two cores went.

Goals: 300,000 writes in under 60 s, with under 50 MiB of heap. Exit 0 when measured (goals met or not),
1 when every write was not verified (the figures then do not describe a full audit) or nothing could be
measured, and when the bundled stack's teardown left something behind.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import importlib.util
import io
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from run import host_busy_percent  # noqa: E402  (bench/run.py, beside this file, as workers.py takes it)

from stackprobe.audit import audit_write_log  # noqa: E402
from stackprobe.stack import ComposeError, Stack, free_ports, unique_project_name  # noqa: E402

MIB = 2**20
GOAL_SECONDS_PER_300K = 60.0
GOAL_HEAP_MIB = 50.0
COMPOSE_FILE = ROOT / "docker-compose.yml"
SEEDER = ROOT / "services" / "users" / "seed.sh"
# The app's port inside its container, and how long the stack may take to build and become healthy.
APP_PORT = 5000
UP_TIMEOUT_S = 300
SEED_TIMEOUT_S = 600
# Every row the seeder left, as the locustfile's write log records a create: id and name (the service's
# own columns; created_at is not in the log). CSV, so that any name comes back as it is stored.
DUMP_QUERY = r"\copy (SELECT id, name FROM users ORDER BY id) TO STDOUT WITH (FORMAT csv)"
# Host CPU busier than this (share of all cores) just before the runs: other work was competing with them.
BUSY_HOST_PERCENT = 20.0
# The earlier audits' costs as measured when they were replaced, for when they are not asked for.
OLD_QUOTED = "~620 MiB of heap for 300k writes (a list of them and a Future each)"
PER_WRITE_QUOTED = "216.5 s for 300k writes against the bundled stack, one request per write"
# The listing the locustfile declares (loadtests/registrar.py): the service's largest page.
SCAN_LINE = {"type": "scan", "url": "/users?limit=500", "key": "id"}


# -- the stand-in service ------------------------------------------------------------------------------


class _Users(asyncio.Protocol):
    """HTTP/1.1 keep-alive, GET only, users 1 … USERS: pages of the list, look-ups by name, one user; else 404."""

    users = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]
        self.pending = b""

    def data_received(self, data: bytes) -> None:
        self.pending += data
        answers = []
        while (end := self.pending.find(b"\r\n\r\n")) >= 0:
            head, self.pending = self.pending[:end], self.pending[end + 4 :]
            answers.append(_answer(head.split(b" ", 2)[1], self.users))
        if answers:
            self.transport.write(b"".join(answers))


def _user(user: int) -> bytes:
    return b'{"id": %d, "name": "user-%d", "created_at": "2026-01-01T00:00:00Z"}' % (user, user)


def _answer(target: bytes, users: int) -> bytes:
    path, _, query = target.partition(b"?")
    fields = dict(field.partition(b"=")[::2] for field in query.split(b"&") if field)
    status, body = b"404 Not Found", b'{"error": "not found"}'
    user = path.removeprefix(b"/users/")
    if user is not path and user.isdigit() and 1 <= int(user) <= users:
        status, body = b"200 OK", _user(int(user))
    elif path == b"/users" and b"name" in fields:
        named = fields[b"name"].removeprefix(b"user-")
        found = [_user(int(named))] if named.isdigit() and 1 <= int(named) <= users else []
        status, body = b"200 OK", b'{"items": [%s], "next": null}' % b",".join(found)
    elif path == b"/users" and fields.get(b"limit", b"").isdigit():
        limit, after = int(fields[b"limit"]), int(fields.get(b"after", b"0"))
        last = min(after + limit, users)
        following = b'"/users?limit=%d&after=%d"' % (limit, last) if last < users else b"null"
        page = b",".join(_user(user) for user in range(after + 1, last + 1))
        status, body = b"200 OK", b'{"items": [%s], "next": %s}' % (page, following)
    head = b"HTTP/1.1 %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % (status, len(body))
    return head + body


def serve(users: int) -> None:
    """Serve the stand-in (users 1 … users) on a free 127.0.0.1 port; print the port; stop when stdin closes."""
    _Users.users = users

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


def _copy_log(log: Path, kind: str) -> Path:
    """Return the log as `kind` reads it: without its listing (per-write), or in the first format (old)."""
    copy = log.with_name(f"{log.stem}.{kind}.jsonl")
    with log.open("rb") as source, copy.open("w", encoding="utf-8") as out:
        for line in source:
            record = json.loads(line)
            if kind == "per-write" and record.get("type") != "scan":
                out.write(line.decode())
            elif kind == "old" and record.get("type") in (None, "ok"):
                expect = record["expect"]
                out.write(json.dumps({"location": record["location"], "expect": expect}, ensure_ascii=False) + "\n")
    return copy


def measure(kind: str, url: str, log: Path, workers: int) -> dict[str, Any]:
    """Audit log once as `kind` (listed, listed-traced, per-write, old) and return the figures."""
    old = _old_audit_module() if kind == "old" else None
    if kind in ("per-write", "old"):
        log = _copy_log(log, kind)
    if kind == "listed-traced":
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
        "heap_peak_mib": tracemalloc.get_traced_memory()[1] / MIB if kind == "listed-traced" else None,
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


# -- the bench: the write logs ------------------------------------------------------------------------


def write_log(path: Path, writes: int) -> None:
    """Write a log of `writes` acknowledged creates of /users/1 … /users/<writes> named user-<id>."""
    with path.open("w", encoding="utf-8") as out:
        out.write(json.dumps(SCAN_LINE) + "\n")
        for user in range(1, writes + 1):
            out.write(log_lines(user, f"user-{user}"))


def log_lines(user_id: int, name: str) -> str:
    """Return the lines the locustfile's write log records for an acknowledged create: its invoke and its ok."""
    op = f"1-{user_id}"
    invoke = {"type": "invoke", "op": op, "process": "1-1", "f": "create", "name": name}
    invoke["lookup"] = f"/users?name={quote(name, safe='')}"
    ok = {"type": "ok", "op": op, "process": "1-1", "name": name, "status": 201, "location": f"/users/{user_id}"}
    ok["expect"] = {"id": user_id, "name": name}
    return json.dumps(invoke, ensure_ascii=False) + "\n" + json.dumps(ok, ensure_ascii=False) + "\n"


# -- the bench: the bundled stack ----------------------------------------------------------------------


def _stage(text: str) -> Callable[[], None]:
    """Print text as a stage under way; return a function that prints how long it took."""
    print(f"{text} …", end="", flush=True)
    started = time.monotonic()
    return lambda: print(f" {time.monotonic() - started:.1f} s", flush=True)


@contextmanager
def bundled_stack() -> Iterator[Stack]:
    """Bring the bundled stack up under a project of its own, its app on a free 127.0.0.1 port; tear it down.

    Teardown (stackprobe's, as `stackprobe run` does it) removes only what carries the project's label: its
    containers, networks and its own database volume. SystemExit when the stack does not start or is not
    wholly removed.
    """
    project = unique_project_name("spaudit")
    port = free_ports(1)[0]
    # The compose file publishes the app on 127.0.0.1:${APP_PORT}: a free port, not a stack already on 5000.
    stack = Stack([COMPOSE_FILE], project=project, env={"APP_PORT": str(port)})
    done = _stage(f"bundled stack: docker compose -p {project} up --build --wait (app on 127.0.0.1:{port})")
    try:
        try:
            stack.up(build=True, wait_timeout=UP_TIMEOUT_S)
        except ComposeError as exc:
            print(flush=True)
            raise SystemExit(f"the bundled stack did not start: {exc}") from None
        done()
        yield stack
    finally:
        done = _stage(f"bundled stack: teardown of project {project}")
        teardown = stack.down()
        done()
        print(f"  {teardown.message}", flush=True)
        if not teardown.ok:
            raise SystemExit(f"remove what is left with: {teardown.leftover_command}")


def app_url(stack: Stack) -> str:
    """Return the app's URL on 127.0.0.1, as the engine published it."""
    return f"http://127.0.0.1:{stack.port('app', APP_PORT)}"


def seed(stack: Stack, url: str, rows: int) -> str:
    """Fill the users table to `rows` rows with the bundled seeder; return its last line."""
    assert stack.project is not None
    drop = ("COMPOSE_FILE", "COMPOSE_PROJECT_NAME", "COMPOSE_PROFILES")
    env = {key: value for key, value in os.environ.items() if key not in drop}
    # What `stackprobe grow` gives a seed command; seed.sh reaches the db with -p and the root compose file.
    env |= {
        **stack.env,
        "STACKPROBE_PROJECT": stack.project,
        "STACKPROBE_ROWS": str(rows),
        "STACKPROBE_SERVICE_URL": url,
        "STACKPROBE_COMPOSE_FILES": str(COMPOSE_FILE),
    }
    try:
        seeded = subprocess.run(
            ["bash", str(SEEDER)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=SEED_TIMEOUT_S
        )
    except subprocess.TimeoutExpired:
        raise SystemExit(f"{SEEDER.relative_to(ROOT)} ran past {SEED_TIMEOUT_S} s") from None
    if seeded.returncode != 0:
        words = (seeded.stderr or seeded.stdout).strip()[-2000:]
        raise SystemExit(f"{SEEDER.relative_to(ROOT)} exited with code {seeded.returncode}:\n{words}")
    lines = seeded.stdout.strip().splitlines()
    return lines[-1] if lines else ""


def dump_write_log(stack: Stack, path: Path) -> int:
    """Write every row of the users table as an acknowledged create to `path`, after the listing; return how many.

    The rows come out of psql in the db container in one COPY, streamed: no request per row, and the
    whole table is never held here.
    """
    # psql as the database's own user, from the db container's environment (as seed.sh runs it).
    psql = 'exec psql -X -q -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d "$POSTGRES_DB" "$@"'
    command = stack.command("exec", "-T", "db", "sh", "-c", psql, "psql", "-c", DUMP_QUERY)
    count = 0
    with (
        path.open("w", encoding="utf-8") as out,
        subprocess.Popen(
            command, env={**os.environ, **stack.env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        ) as dump,
    ):
        assert dump.stdout is not None
        assert dump.stderr is not None
        out.write(json.dumps(SCAN_LINE) + "\n")
        for user_id, name in csv.reader(io.TextIOWrapper(dump.stdout, encoding="utf-8", newline="")):
            out.write(log_lines(int(user_id), name))
            count += 1
        error = dump.stderr.read().decode(errors="replace").strip()
    if dump.returncode != 0:
        raise SystemExit(f"reading the users back with psql failed ({dump.returncode}):\n{error[-2000:]}")
    return count


def container_cpu_seconds(stack: Stack) -> Callable[[], float | None]:
    """Return a function giving the CPU seconds spent so far by the stack's containers (app and db).

    Each container's processes as the host sees them (its PID 1 and descendants, with the children they
    reaped); None when they cannot be read.
    """
    pids = []
    for container in stack.container_ids():
        done = subprocess.run(
            ["docker", "inspect", "--format", "{{.State.Pid}}", container], capture_output=True, text=True
        )
        if done.returncode == 0 and done.stdout.strip().isdigit():
            pids.append(int(done.stdout.strip()))

    def cpu_seconds() -> float | None:
        total = 0.0
        try:
            for pid in pids:
                top = psutil.Process(pid)
                for process in [top, *top.children(recursive=True)]:
                    with contextlib.suppress(psutil.NoSuchProcess):
                        times = process.cpu_times()
                        total += times.user + times.system + times.children_user + times.children_system
        except (psutil.Error, OSError):
            return None
        return total if pids else None

    return cpu_seconds


# -- the bench: the runs and the report ----------------------------------------------------------------


def run_all(
    kinds: Sequence[str], url: str, log: Path, workers: int, service_cpu: Callable[[], float | None] | None
) -> list[dict[str, Any]]:
    """Run each measurement in turn; with service_cpu, record what the service spent during each."""
    runs = []
    for kind in kinds:
        done = _stage(f"audit: {kind} run")
        before = service_cpu() if service_cpu else None
        run = run_child(kind, url, log, workers)
        after = service_cpu() if service_cpu else None
        run["service_cpu_seconds"] = None if before is None or after is None else after - before
        runs.append(run)
        done()
    return runs


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--target",
        choices=("bundled", "stand-in"),
        help="the bundled stack, seeded (the default), or a stand-in service that answers at once",
    )
    parser.add_argument("--writes", type=int, default=300_000, help="writes in the log (default: 300000)")
    parser.add_argument("--workers", type=int, default=8, help="the audit's worker threads (default: 8)")
    parser.add_argument(
        "--per-write", action="store_true", help="also run the baseline: every write read back alone (minutes)"
    )
    parser.add_argument("--old", action="store_true", help="also run the old list-based audit (slow, ~2 KiB/write)")
    parser.add_argument("--no-trace", action="store_true", help="skip the tracemalloc run (it takes minutes)")
    parser.add_argument("--url", help="audit a running service at this URL instead")
    parser.add_argument("--log", type=Path, help="with --url: the write log to read back")
    parser.add_argument("--child", choices=("listed", "listed-traced", "per-write", "old"), help=argparse.SUPPRESS)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is None and not args.serve:
        if (args.url is None) != (args.log is None):
            parser.error("--url and --log go together")
        if args.url is not None and args.target is not None:
            parser.error("--target and --url are two different targets: give one")
        if args.writes < 1:
            parser.error("--writes must be at least 1")
        if args.url is None and args.target is None:
            args.target = "bundled"
    return args


def _row(name: str, values: Sequence[str], note: str = "") -> str:
    return f"{name:<22}" + "".join(f"{value:>14}" for value in values) + (f"   {note}" if note else "")


def _met(ok: bool) -> str:
    return "met" if ok else "NOT met"


def report(runs: Sequence[dict[str, Any]], target: str, workers: int, service: str, host_busy: float | None) -> bool:
    """Print each run's figures side by side, then the goals; return whether every write was verified."""
    timed = runs[0]
    writes = timed["acknowledged"] or 0
    print(f"\nWrite audit of {writes:,} acknowledged writes, {workers} workers, against {target}:\n")
    print(_row("", [run["kind"] for run in runs]))

    def cells(key: str, form: str) -> list[str]:
        return [form.format(run[key]) if run.get(key) is not None else "-" for run in runs]

    print(_row("writes", cells("acknowledged", "{:,}")))
    print(_row("verified", cells("verified", "{:,}")))
    print(_row("lost", cells("lost", "{:,}")))
    print(_row("unverified", cells("unverified", "{:,}")))
    print(_row("seconds", cells("seconds", "{:.1f}"), "(the traced run is slowed by tracemalloc)"))
    print(_row("writes/s", [f"{(run['acknowledged'] or 0) / run['seconds']:,.0f}" for run in runs]))
    print(_row("CPU seconds", cells("cpu_seconds", "{:.1f}"), "(the audit's process, all threads)"))
    print(_row("CPU µs/write", [f"{1e6 * run['cpu_seconds'] / max(writes, 1):.0f}" for run in runs]))
    print(_row(f"{service} CPU s", cells("service_cpu_seconds", "{:.1f}"), "(the service's, not the audit's)"))
    print(_row("max RSS growth MiB", cells("rss_growth_mib", "{:.1f}")))
    print(_row("tracemalloc peak MiB", cells("heap_peak_mib", "{:.2f}")))
    if not any(run["kind"] == "per-write" for run in runs):
        print(f"\nper-write (quoted, run with --per-write to measure): {PER_WRITE_QUOTED}")
    if not any(run["kind"] == "old" for run in runs):
        print(f"old (quoted, run with --old to measure): {OLD_QUOTED}")

    goal_seconds = GOAL_SECONDS_PER_300K * writes / 300_000
    rate = writes / timed["seconds"]
    print(
        f"\nGoal: {writes:,} writes in under {goal_seconds:.3g} s: {timed['seconds']:.1f} s "
        f"({rate:,.0f} writes/s, {timed['cpu_seconds']:.1f} CPU s, max RSS +{timed['rss_growth_mib']:.1f} MiB): "
        f"{_met(timed['seconds'] < goal_seconds)}"
    )
    traced = [run for run in runs if run["heap_peak_mib"] is not None]
    if traced:
        heap = traced[0]["heap_peak_mib"]
        print(
            f"Goal: under {GOAL_HEAP_MIB:.0f} MiB of prober heap: tracemalloc peak {heap:.2f} MiB: "
            f"{_met(heap < GOAL_HEAP_MIB)}"
        )
    else:
        print(f"Goal: under {GOAL_HEAP_MIB:.0f} MiB of prober heap: not measured (--no-trace)")
    complete = all(run["verified"] == run["acknowledged"] for run in runs)
    counts = ", ".join(
        f"{run['kind']} {run['verified']:,} verified, {run['lost']:,} lost, {run['unverified'] or 0:,} unverified"
        for run in runs
    )
    print(f"Check: every write read back as logged ({counts}): {_met(complete)}")
    for run in runs:
        if run.get("gave_up"):
            print(f"  {run['kind']}: the audit gave up: {run['gave_up']}")
    if host_busy is not None and host_busy > BUSY_HOST_PERCENT:
        print(
            f"Host: {host_busy:.0f} % busy just before the runs (other work than this bench): "
            "the figures are contended; run again on a quiet machine."
        )
    return complete


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve:
        serve(args.writes)
        return 0
    if args.child:
        print(json.dumps(measure(args.child, args.url, args.log, args.workers)))
        return 0
    kinds = ["listed"] + ([] if args.no_trace else ["listed-traced"])
    kinds += (["per-write"] if args.per_write else []) + (["old"] if args.old else [])
    if args.url:
        target = f"{args.url} (the write log {args.log})"
        runs = run_all(kinds, args.url, args.log, args.workers, None)
        return 0 if report(runs, target, args.workers, "service", None) else 1
    with tempfile.TemporaryDirectory(prefix="stackprobe-bench-audit-") as folder:
        log = Path(folder) / "writes.jsonl"
        if args.target == "bundled":
            return bundled(args, kinds, log)
        return stand_in(args, kinds, log)


def bundled(args: argparse.Namespace, kinds: Sequence[str], log: Path) -> int:
    """Measure the audit against the bundled stack, seeded to --writes rows."""
    with bundled_stack() as stack:
        url = app_url(stack)
        done = _stage(f"bundled stack: {SEEDER.relative_to(ROOT)} to {args.writes:,} rows")
        seeded = seed(stack, url, args.writes)
        done()
        print(f"  {seeded}", flush=True)
        done = _stage("bundled stack: ids and names read back with psql \\copy into the write log")
        rows = dump_write_log(stack, log)
        done()
        if rows != args.writes:
            raise SystemExit(f"the users table holds {rows:,} rows, not the {args.writes:,} asked for")
        host_busy = host_busy_percent()
        runs = run_all(kinds, url, log, args.workers, container_cpu_seconds(stack))
    target = (
        f"the bundled stack at {url} (the users service under its own memory limit, PostgreSQL beside it, "
        f"{args.writes:,} rows seeded by {SEEDER.relative_to(ROOT)})"
    )
    return 0 if report(runs, target, args.workers, "app+db", host_busy) else 1


def stand_in(args: argparse.Namespace, kinds: Sequence[str], log: Path) -> int:
    """Measure the audit against the stand-in service: what the audit itself costs."""
    target = "a stand-in service in a child process on 127.0.0.1 (answers at once: this is the audit's own cost)"
    serve = [sys.executable, __file__, "--serve", "--writes", str(args.writes)]
    server = subprocess.Popen(serve, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert server.stdout is not None
        url = f"http://127.0.0.1:{int(server.stdout.readline())}"
        write_log(log, args.writes)
        stand_in_process = psutil.Process(server.pid)
        host_busy = host_busy_percent()
        runs = run_all(kinds, url, log, args.workers, lambda: sum(stand_in_process.cpu_times()[:2]))
    finally:
        server.terminate()
        server.wait(10)
    return 0 if report(runs, target, args.workers, "stand-in", host_busy) else 1


if __name__ == "__main__":
    sys.exit(main())
