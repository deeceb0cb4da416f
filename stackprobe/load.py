"""Locust, run headless in a subprocess: it monkey-patches with gevent on import, so never in here."""

from __future__ import annotations

import contextlib
import json
import math
import os
import resource
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, NamedTuple

import psutil

from stackprobe.report.verdict import GENERATOR_CPU_SATURATED_PERCENT

CSV_NAME = "locust"
WRITE_LOG_NAME = "writes.jsonl"
# The write log as a Jepsen-shaped history (stackprobe.history.write_history), written after the load.
HISTORY_NAME = "history.jsonl"
WINDOWS_NAME = "locust_windows.jsonl"
ERRORS_NAME = "locust_errors.json"
# stackprobe's listener, loaded by Locust beside the user's locustfiles (never imported here: it imports
# Locust). Its environment variables are pinned against the file by tests/unit/test_locust_listener.py.
LISTENER = Path(__file__).with_name("locust_listener.py")
WINDOWS_ENV = "STACKPROBE_LOCUST_WINDOWS"
ERRORS_ENV = "STACKPROBE_LOCUST_ERRORS"
# The open model's arrivals per second (LoadPlan.rate); unset: the closed model.
RATE_ENV = "STACKPROBE_ARRIVAL_RATE"

# Locust gives running tasks this long to finish once the run time is up (--stop-timeout).
STOP_TIMEOUT_S = 5
# After SIGINT, how long Locust gets to stop its users and write its files before SIGKILL.
KILL_AFTER_S = 30.0
# How many lines of Locust's output a LoadError and LoadResult.output_tail keep.
TAIL_LINES = 25
# Distributed runs: how long the master waits for its workers to connect before it gives up (Locust's
# --expect-workers-max-wait), for workers started here and for workers that join from other machines.
LOCAL_WORKERS_WAIT_S = 60
REMOTE_WORKERS_WAIT_S = 300
# Once the master has quit, how long its workers get to follow it (Locust sends them "quit") before SIGINT,
# and after SIGINT before SIGKILL.
WORKER_EXIT_S = 10.0
# A worker's busiest stretch of CPU use is taken over this many seconds: Locust's own CPU monitor
# (locust.runners.CPU_MONITOR_INTERVAL) judges 10-s samples against its 90 % warning.
BUSIEST_SPAN_S = 10.0
# The master's bind addresses that mean "every interface": local workers connect to loopback then.
_ANY_INTERFACE = ("", "*", "0.0.0.0", "::")


def overrun_grace_s(duration_s: float) -> float:
    """Return how long past --duration and the stop timeout a run may go before it is stopped: 10 s or 10 %."""
    return max(10.0, 0.1 * duration_s)


# The open model's pool: at least this many users, and twice the users an arrival rate keeps busy when
# each task takes EXPECTED_TASK_S (Little's law: busy users = rate x time per task).
MIN_POOL = 20
EXPECTED_TASK_S = 0.5


def default_pool_size(rate: float) -> int:
    """Return the users that take arrivals at `rate` per second when none are asked: max(20, 2 x rate x 0.5 s).

    A pool of P users keeps the rate while a task takes up to P / rate seconds: this default keeps it
    through tasks of up to 1 s (twice the 0.5 s expected), so a slow service or a short stall is seen as
    latency. While every user is busy, arrivals that came due wait and are measured from when they were
    due; a pool too small for long shows as an achieved rate under the target. The pool also bounds
    how many requests the service has in hand at once: more users, more of a backlog reaches it.
    """
    if not (math.isfinite(rate) and rate > 0):
        raise ValueError(f"an arrival rate must be a number above 0, not {rate!r}")
    return max(MIN_POOL, math.ceil(2 * rate * EXPECTED_TASK_S))


@dataclass(frozen=True)
class LoadPlan:
    """One Locust run: where it goes, how much load, in which shape, and where its files land.

    The single place that builds Locust's command line, environment and file names. locustfile: a file
    or a folder (Locust loads its *.py not starting with "_"); host: the base URL; users: peak users
    (with a rate: the pool that takes arrivals, e.g. default_pool_size(rate)); spawn_rate: users started
    per second; duration_s: seconds (Locust's --run-time, whole seconds); shape: LOCUST_SHAPE for
    locustfiles that read it (loadtests/shapes.py); slo: LOCUST_SLO; out: the folder of every file the
    run writes.

    rate: the open model, arrivals per second (None: the closed model, the users set the pace). One
    arrival is one task run of a user class, due on a schedule from the load's start whether or not
    earlier ones have answered; the listener paces any locustfile (STACKPROBE_ARRIVAL_RATE) and times
    the windows' requests from when their arrival was due. With --processes the rate is split among
    the workers. A shape then changes the pool, not the rate.

    Locust's distributed mode (locust.io's "Running distributed"): workers > 0 starts a master (headless,
    --master --expect-workers) and that many `--worker` processes here, each one process and at most one
    core; master_bind (host, port) is where the master listens (None: 127.0.0.1 and a free port chosen
    when the run starts, see with_master_port); expect_workers is how many workers the master waits for
    in all before it starts the load, those started here included (None: workers), so a master bound
    to another interface can take workers from other machines. workers == 0 and master_bind None: one
    Locust process (Locust's local runner). Raises ValueError for a rate that is not above 0, and for
    workers that cannot add up (fewer expected than started, workers from elsewhere with no master_bind).
    """

    locustfile: Path
    host: str
    users: int
    spawn_rate: float
    duration_s: float
    shape: str
    slo: str
    out: Path
    rate: float | None = None
    workers: int = 0
    master_bind: tuple[str, int | None] | None = None
    expect_workers: int | None = None

    def __post_init__(self) -> None:
        if self.rate is not None and not (math.isfinite(self.rate) and self.rate > 0):
            raise ValueError(f"an arrival rate must be a number above 0, not {self.rate!r}")
        if self.workers < 0:
            raise ValueError(f"workers must be 0 or more, not {self.workers}")
        if self.expect_workers is not None and self.expect_workers < max(1, self.workers):
            raise ValueError(
                f"expect_workers {self.expect_workers} is under the {self.workers} workers started here (or 1)"
            )
        if self.expect_workers is not None and self.expect_workers > self.workers and self.master_bind is None:
            raise ValueError("workers from elsewhere need a master_bind address to connect to")
        if self.master_bind is not None and self.expected_workers < 1:
            raise ValueError("a master needs workers: set workers or expect_workers")

    @property
    def distributed(self) -> bool:
        """Return whether Locust runs as a master with workers rather than as one process."""
        return self.workers > 0 or self.master_bind is not None

    @property
    def expected_workers(self) -> int:
        """Return how many workers the master waits for: those started here and those from elsewhere."""
        return self.expect_workers if self.expect_workers is not None else self.workers

    @property
    def remote_workers(self) -> int:
        """Return how many workers are expected to join from elsewhere (not started by this plan)."""
        return self.expected_workers - self.workers

    @property
    def workers_wait_s(self) -> int:
        """Return how long the master waits for its workers to connect, seconds (0 when not distributed)."""
        if not self.distributed:
            return 0
        return REMOTE_WORKERS_WAIT_S if self.remote_workers else LOCAL_WORKERS_WAIT_S

    def with_master_port(self) -> LoadPlan:
        """Return this plan with the master's port fixed: a free port of the bind host when none was given."""
        if not self.distributed:
            return self
        host, port = self.master_bind or ("127.0.0.1", None)
        if port is None:
            port = free_port(self.worker_master_host(host))
        return replace(self, master_bind=(host, port))

    @staticmethod
    def worker_master_host(bind_host: str) -> str:
        """Return the address a worker on this machine connects to for a master bound to bind_host."""
        return "127.0.0.1" if bind_host in _ANY_INTERFACE else bind_host

    @property
    def csv_prefix(self) -> Path:
        """Return the prefix Locust writes its CSV files (`--csv`) and its JSON totals (`--json-file`) under."""
        return self.out / CSV_NAME

    @property
    def json_file(self) -> Path:
        """Return the exact end-of-run stats Locust writes at shutdown (`--json-file`): a run's results."""
        return Path(f"{self.csv_prefix}.json")

    @property
    def write_log(self) -> Path:
        """Return the file the locustfile appends its write operations to (loadtests/_write_log.py)."""
        return self.out / WRITE_LOG_NAME

    @property
    def history(self) -> Path:
        """Return where the run's operation history goes (stackprobe.history.write_history)."""
        return self.out / HISTORY_NAME

    @property
    def windows(self) -> Path:
        """Return the listener's one-second windows (JSON lines; stackprobe.locuststats.read_windows)."""
        return self.out / WINDOWS_NAME

    @property
    def errors(self) -> Path:
        """Return the listener's failures and exceptions with times (JSON; stackprobe.locuststats.read_errors)."""
        return self.out / ERRORS_NAME

    @property
    def log(self) -> Path:
        """Return the file Locust's output goes to (the master's when distributed)."""
        return self.out / "locust.log"

    def worker_log(self, number: int) -> Path:
        """Return the file the output of worker `number` (from 1) started here goes to."""
        return self.out / f"locust_worker_{number}.log"

    def locustfiles(self) -> list[Path]:
        """Return what Locust loads: the user's locustfile (a file or a folder), then stackprobe's listener."""
        return [self.locustfile, LISTENER]

    def master_address(self) -> str | None:
        """Return "HOST:PORT" the master listens on ("[::]:5557" for IPv6), None when not distributed or not set."""
        if not self.distributed or self.master_bind is None or self.master_bind[1] is None:
            return None
        host, port = self.master_bind
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    def _master_address(self) -> tuple[str, int]:
        host, port = self.master_bind or ("127.0.0.1", None)
        if port is None:
            raise ValueError("the master's port is chosen when the run starts: call with_master_port() first")
        return host, port

    def master_options(self) -> list[str]:
        """Return the master's own options (none for a single Locust process)."""
        if not self.distributed:
            return []
        host, port = self._master_address()
        return [
            "--master",
            "--master-bind-host", host,
            "--master-bind-port", str(port),
            "--expect-workers", str(self.expected_workers),
            "--expect-workers-max-wait", str(self.workers_wait_s),
        ]  # fmt: skip

    def worker_argv(self) -> list[str]:
        """Return the command line of one worker started here (`locust -f ... --worker --master-host ...`).

        The locustfiles are the master's (Locust runs the same files on both); the host, users and run
        time come from the master. Raises ValueError for a plan that is not distributed or has no port yet.
        """
        if not self.distributed:
            raise ValueError("a worker needs a distributed plan (workers or master_bind)")
        host, port = self._master_address()
        return [
            sys.executable, "-m", "locust",
            "--locustfile", locustfile_option(self.locustfiles()),
            "--worker",
            "--master-host", self.worker_master_host(host),
            "--master-port", str(port),
            # As the master's: the failures are counted, not turned into this process's exit code.
            "--exit-code-on-error", "0",
        ]  # fmt: skip

    def remote_worker_command(self, listener: str | None = None) -> str:
        """Return the command a worker on another machine runs to join this plan's master.

        listener: where stackprobe's listener lives on that machine (default: this machine's path). The
        worker needs the same locustfiles, and the listener for its requests to reach the 1-s windows.
        """
        host, port = self._master_address()
        files = locustfile_option([self.locustfile, Path(listener) if listener else LISTENER])
        shown = "<this machine's address>" if host in _ANY_INTERFACE else host
        return f"locust -f {files} --worker --master-host {shown} --master-port {port}"

    def argv(self) -> list[str]:
        """Return Locust's command line (the master's when distributed).

        Raises LoadError for a path Locust's `-f` cannot take (a comma), ValueError for a distributed plan
        whose master port is not chosen yet.
        """
        return [
            sys.executable, "-m", "locust",
            "--locustfile", locustfile_option(self.locustfiles()),
            "--headless",
            *self.master_options(),
            "--host", self.host,
            "--users", str(self.users),
            "--spawn-rate", str(self.spawn_rate),
            "--run-time", f"{max(1, round(self.duration_s))}s",
            "--stop-timeout", str(STOP_TIMEOUT_S),
            # locust_stats.csv, _failures.csv and _exceptions.csv stay for people; the figures come from
            # the JSON totals and the listener's files.
            "--csv", str(self.csv_prefix),
            # The exact final totals: the CSV summary is rewritten each second but not at shutdown.
            "--json-file", str(self.csv_prefix),
            "--only-summary",
            # Locust's exit code is reported as a figure (LoadResult.exit_code). With 0 here a non-zero code
            # says what the failure counts do not: the locustfile set environment.process_exit_code, or
            # Locust hit an unexpected error (2); failures and exceptions are counted on their own.
            "--exit-code-on-error", "0",
        ]  # fmt: skip

    def outputs(self) -> list[Path]:
        """Return the files a run writes, which must not survive from an earlier run in the same folder."""
        prefix = self.csv_prefix
        suffixes = ("_stats.csv", "_stats_history.csv", "_failures.csv", "_exceptions.csv", ".json")
        return [
            self.write_log,
            self.history,
            self.log,
            self.windows,
            self.errors,
            Path(f"{self.errors}.partial"),
            *(Path(f"{prefix}{suffix}") for suffix in suffixes),
            *(self.worker_log(number) for number in range(1, self.workers + 1)),
        ]

    def env(self) -> dict[str, str]:
        """Return the environment for Locust: the write log, the listener's files, the shape, the SLO and the rate."""
        env = {
            **os.environ,
            "STACKPROBE_WRITE_LOG": str(self.write_log),
            WINDOWS_ENV: str(self.windows),
            ERRORS_ENV: str(self.errors),
            "LOCUST_SHAPE": self.shape,
            "LOCUST_SLO": self.slo,
        }
        # Never inherited: a closed-model run is not paced by a variable left in stackprobe's environment.
        env.pop(RATE_ENV, None)
        if self.rate is not None:
            env[RATE_ENV] = repr(float(self.rate))
        return env


def locustfile_option(paths: Sequence[Path]) -> str:
    """Return Locust's `-f` value for these files and folders; raise LoadError for a path with a comma."""
    for path in paths:
        if "," in str(path):
            raise LoadError(f"Locust's -f splits paths at commas, so it cannot load {path}: rename or move it")
    return ",".join(str(path) for path in paths)


@dataclass(frozen=True)
class LoadResult:
    """How a Locust run that left its results ended, and what it cost.

    exit_code: Locust's exit code, a figure rather than a failure: non-zero when the locustfile set
        environment.process_exit_code (Locust's CI idiom) or Locust hit an unexpected error (2);
        negative when a signal ended it (-9: SIGKILL).
    wall_s, cpu_seconds: seconds from start to end, and the CPU (user + system) Locust used meanwhile.
    output_tail: the last lines Locust printed.
    overran: None when Locust ended by itself in time; else why it was stopped, e.g. "Locust ran 14.2 s
        past --duration 5s (...); stopped with SIGINT".
    cpu_warning: Locust warned that its CPU use went above 90% (its own monitor samples every 10 s):
        the load generator, not the service, may have set the pace and the response times.
    unhandled_exception: Locust logged an exception it did not expect (a shape's tick, an event handler);
        with failures in the run its exit code does not show it.
    arrival_rate, achieved_rate: the open model (LoadPlan.rate), else None: the arrivals per second asked
        for, and those started per second from the load's start to its end (Locust's run time), from the
        listener's summary (stackprobe.locuststats.read_arrivals has the rest: started, due, waiting at
        the end, lateness). achieved_rate is None when the listener left no summary (Locust killed).
    master: distributed runs, the HOST:PORT the master listened on (else None).
    workers: distributed runs, each worker process started here with its CPU (WorkerCpu), in start order.
    worker_reports: distributed runs, what the master's listener heard of every worker that reported to
        it, here or elsewhere: the "workers" entries of the listener's errors file (id, host, pid,
        requests, failures, listener, cpu_usage_max, cpu_warning, missing).
    cpu_seconds then counts the master and every worker started here (master_cpu_seconds: the master's).
    """

    exit_code: int
    wall_s: float
    cpu_seconds: float
    output_tail: str
    overran: str | None = None
    cpu_warning: bool = False
    unhandled_exception: bool = False
    arrival_rate: float | None = None
    achieved_rate: float | None = None
    master: str | None = None
    workers: tuple[WorkerCpu, ...] = ()
    worker_reports: tuple[Mapping[str, Any], ...] = field(default=(), repr=False)

    @property
    def cpu_percent(self) -> float:
        """Return the load generator's average CPU use (master and workers together), in percent of one core."""
        return 100.0 * self.cpu_seconds / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def master_cpu_seconds(self) -> float:
        """Return the CPU seconds of Locust's own process: the master's when distributed (workers taken out)."""
        return max(0.0, self.cpu_seconds - sum(worker.cpu_seconds for worker in self.workers))


@dataclass(frozen=True)
class WorkerCpu:
    """The CPU of one worker process started on this machine, as stackprobe measured it (psutil: /proc).

    pid: its process id; cpu_seconds: user + system CPU over its life (read once more as it exited);
    wall_s: its life, seconds; busiest_percent: the highest share of one core over any BUSIEST_SPAN_S
    stretch of its samples (busiest_stretch_percent), its whole life's share when it lived less than
    that; exit_code: how it ended (negative: a signal; None: not seen to end).
    """

    pid: int
    cpu_seconds: float
    wall_s: float
    busiest_percent: float
    exit_code: int | None

    @property
    def cpu_percent(self) -> float:
        """Return its average CPU use over its life, percent of one core."""
        return 100.0 * self.cpu_seconds / self.wall_s if self.wall_s > 0 else 0.0


def busiest_stretch_percent(samples: Sequence[tuple[float, float]], span_s: float = BUSIEST_SPAN_S) -> float:
    """Return the highest CPU share over any stretch of at least span_s seconds, percent of one core.

    samples: (seconds, cumulative CPU seconds) in time order, as a process's cpu_times read every tick.
    Each stretch runs from one sample to the first later one at least span_s away; with no such pair (a
    life shorter than span_s) the share from the first sample to the last. 0.0 for fewer than 2 samples.
    """
    best: float | None = None
    start = 0
    for end in range(1, len(samples)):
        while start + 1 < end and samples[end][0] - samples[start + 1][0] >= span_s:
            start += 1
        elapsed = samples[end][0] - samples[start][0]
        if elapsed >= span_s:
            share = 100.0 * (samples[end][1] - samples[start][1]) / elapsed
            best = share if best is None else max(best, share)
    if best is not None:
        return best
    if len(samples) < 2 or samples[-1][0] <= samples[0][0]:
        return 0.0
    return 100.0 * (samples[-1][1] - samples[0][1]) / (samples[-1][0] - samples[0][0])


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port of `host` that nothing listens on right now (the kernel's choice)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


STEP_RESULT_PREFIX = "step result: "


def read_step_result(log_path: Path) -> dict[str, Any] | None:
    """Return the step shape's summary, the last "step result: {...}" line Locust printed, or None."""
    if not log_path.is_file():
        return None
    found = None
    for line in log_path.read_text(errors="replace").splitlines():
        if line.startswith(STEP_RESULT_PREFIX):
            found = line[len(STEP_RESULT_PREFIX) :]
    if found is None:
        return None
    try:
        data = json.loads(found)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


class LoadError(RuntimeError):
    """Locust left no results (a broken locustfile, a bad option, a run killed before it wrote them).

    The message holds Locust's exit code and the last lines it printed (a traceback's end).
    """


def run_load(
    plan: LoadPlan,
    on_tick: Callable[[float], None] | None = None,
    tick_s: float = 0.5,
    *,
    grace_s: float | None = None,
    kill_after_s: float = KILL_AFTER_S,
) -> LoadResult:
    """Run Locust to its end, on time; call on_tick(elapsed seconds) meanwhile; stop it cleanly on Ctrl-C.

    A run that wrote its `--json-file` totals is a run, whatever Locust's exit code: LoadResult. A run
    that goes on past plan.duration_s + STOP_TIMEOUT_S + grace_s (default overrun_grace_s: 10 s or 10 %)
    gets SIGINT (Locust then stops its users and writes its files), and SIGKILL kill_after_s later; its
    LoadResult.overran says so. A distributed plan starts the master, then its workers here (each with
    its own log, plan.worker_log), and counts that time from when the load began (the master's test
    start, which waits for every expected worker); once the master has quit, its workers get
    WORKER_EXIT_S to follow before they are stopped. Raises LoadError when Locust left no results, or
    when a worker started here ended before the load began, with the output's tail.
    """
    plan = plan.with_master_port()
    plan.out.mkdir(parents=True, exist_ok=True)
    # The locustfile appends to the write log: an earlier run's lines would be audited against this run's
    # database, and an earlier run's JSON would pass for this one's if Locust wrote none.
    for path in plan.outputs():
        path.unlink(missing_ok=True)
    argv = plan.argv()
    worker_argv = plan.worker_argv() if plan.workers else []
    run_s = plan.duration_s + STOP_TIMEOUT_S + (overrun_grace_s(plan.duration_s) if grace_s is None else grace_s)
    log_path = plan.log
    env = plan.env()
    started = time.monotonic()
    # Locust's CPU, workers included, is what the children we waited for used meanwhile.
    children_before = _children_cpu_seconds()
    interrupted_at: float | None = None
    killed = False
    # A single process counts its run time from its start; a master from its test's start, which waits
    # for the workers (at most workers_wait_s, then Locust gives up by itself).
    load_began_at: float | None = None if plan.distributed else 0.0
    workers: list[_WorkerProcess] = []
    with log_path.open("w") as log:
        # A session of its own: a terminal's Ctrl-C reaches stackprobe only, which then stops Locust once
        # (a second SIGINT could cut Locust's shutdown short), and a signal reaches its --processes workers.
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        try:
            for index in range(plan.workers):
                workers.append(_WorkerProcess.start(worker_argv, plan.worker_log(index + 1), env))
            while process.poll() is None:
                elapsed = time.monotonic() - started
                if on_tick is not None:
                    on_tick(elapsed)
                for worker in workers:
                    worker.sample()
                if load_began_at is None:
                    if _test_started(plan.errors):
                        load_began_at = elapsed
                    elif early := next((worker for worker in workers if worker.ended is not None), None):
                        raise LoadError(
                            f"a Locust worker exited with code {early.exit_code} before the load began:\n"
                            f"{output_tail(early.log_path.read_text(errors='replace'))}"
                        )
                deadline_s = load_began_at + run_s if load_began_at is not None else plan.workers_wait_s + run_s
                if interrupted_at is None and elapsed > deadline_s:
                    _signal_group(process, signal.SIGINT)
                    interrupted_at = elapsed
                elif interrupted_at is not None and not killed and elapsed > interrupted_at + kill_after_s:
                    _signal_group(process, signal.SIGKILL)
                    killed = True
                time.sleep(tick_s)
            # The master told its workers to quit as it did: let them, measuring them to the end.
            _stop_workers(workers, follow_s=WORKER_EXIT_S)
        except BaseException:
            # SIGINT lets Locust stop its users and still write its files; then make sure it is gone.
            _signal_group(process, signal.SIGINT)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                _signal_group(process, signal.SIGKILL)
                process.wait()
            _stop_workers(workers, follow_s=0.0)
            raise
        finally:
            for worker in workers:
                worker.close()
    wall = time.monotonic() - started
    cpu_seconds = _children_cpu_seconds() - children_before
    output = log_path.read_text(errors="replace")
    tail = output_tail(output)
    overran = None
    if interrupted_at is not None:
        how = (
            f"SIGINT did not stop it within {kill_after_s:g} s: killed with SIGKILL"
            if killed
            else "stopped with SIGINT"
        )
        waited = "" if not plan.distributed or load_began_at is not None else ", and its workers never all joined"
        overran = (
            f"Locust ran {wall - (load_began_at or 0.0) - plan.duration_s:.1f} s past --duration "
            f"{plan.duration_s:g}s (a shape that never returns None, or a task that blocks{waited}); {how}"
        )
    if not _complete_json(plan.json_file):
        reason = f" ({overran})" if overran else ""
        raise LoadError(f"Locust exited with code {process.returncode} and left no results{reason}:\n{tail}")
    summary = _listener_summary(plan.errors)
    arrivals = summary.get("arrivals") if isinstance(summary.get("arrivals"), dict) else {}
    achieved = arrivals.get("achieved_rate")
    reports = summary.get("workers") if isinstance(summary.get("workers"), list) else []
    return LoadResult(
        exit_code=process.returncode,
        wall_s=wall,
        cpu_seconds=cpu_seconds,
        output_tail=tail,
        overran=overran,
        cpu_warning=bool(summary.get("cpu_warning")) or _cpu_warning_logged(output),
        unhandled_exception=bool(summary.get("unhandled_exception")),
        arrival_rate=plan.rate,
        achieved_rate=float(achieved) if plan.rate is not None and isinstance(achieved, int | float) else None,
        master=plan.master_address(),
        workers=tuple(worker.figures() for worker in workers),
        worker_reports=tuple(report for report in reports if isinstance(report, dict)),
    )


def distributed_section(plan: LoadPlan, result: LoadResult) -> dict[str, Any] | None:
    """Return report.json's load.distributed for a run (None when Locust ran as one process).

    Each worker that reported to the master gets its requests and failures (Locust's own reports), and,
    for those started here (matched by host and pid), stackprobe's measure of its CPU. A worker is
    saturated when any source puts it over GENERATOR_CPU_SATURATED_PERCENT of a core; the generator is
    bound when a worker or the master (its CPU over the run) is.
    """
    if not plan.distributed:
        return None
    here = socket.gethostname()
    local = {worker.pid: worker for worker in result.workers}
    workers = []
    for report in result.worker_reports:
        pid = report.get("pid")
        mine = local.get(pid) if report.get("host") == here and isinstance(pid, int) else None
        reported = report.get("cpu_usage_max")
        figures = {
            "id": str(report.get("id", "")),
            "host": report.get("host"),
            "pid": pid if isinstance(pid, int) else None,
            "local": mine is not None,
            "requests": int(report.get("requests") or 0),
            "failures": int(report.get("failures") or 0),
            "listener": bool(report.get("listener")),
            "cpu_percent": round(mine.cpu_percent, 2) if mine else None,
            "cpu_busiest_percent": round(mine.busiest_percent, 2) if mine else None,
            "locust_cpu_percent_max": float(reported) if isinstance(reported, int | float) else None,
            "cpu_warning": bool(report.get("cpu_warning")),
            "missing": bool(report.get("missing")),
            "exit_code": mine.exit_code if mine else None,
        }
        shares = [figures["cpu_busiest_percent"], figures["locust_cpu_percent_max"]]
        figures["saturated"] = figures["cpu_warning"] or any(
            share is not None and share > GENERATOR_CPU_SATURATED_PERCENT for share in shares
        )
        workers.append(figures)
    master_percent = 100.0 * result.master_cpu_seconds / result.wall_s if result.wall_s > 0 else None
    master_bound = master_percent is not None and master_percent > GENERATOR_CPU_SATURATED_PERCENT
    return {
        "master": result.master or "",
        "workers_started": plan.workers,
        "workers_expected": plan.expected_workers,
        "master_cpu_percent": round(master_percent, 2) if master_percent is not None else None,
        "generator_bound": master_bound or any(worker["saturated"] for worker in workers),
        "workers": workers,
    }


class _WorkerProcess:
    """A Locust worker started here: its process, its log, and its CPU read every tick until it ends."""

    def __init__(self, process: subprocess.Popen[Any], log: Any, log_path: Path) -> None:
        self.process = process
        self.log = log
        self.log_path = log_path
        self.started = time.monotonic()
        self.ended: float | None = None
        self.exit_code: int | None = None
        self.samples: list[tuple[float, float]] = [(self.started, 0.0)]
        try:
            self.ps: psutil.Process | None = psutil.Process(process.pid)
        except psutil.Error:
            self.ps = None

    @classmethod
    def start(cls, argv: Sequence[str], log_path: Path, env: Mapping[str, str]) -> _WorkerProcess:
        log = log_path.open("w")
        # Its own session: Ctrl-C in a terminal must not stop a worker before the master has its last report.
        process = subprocess.Popen(
            list(argv), stdout=log, stderr=subprocess.STDOUT, env=dict(env), start_new_session=True
        )
        return cls(process, log, log_path)

    def sample(self) -> None:
        """Read its CPU; when it has exited, read it once more before reaping it (a zombie keeps its times)."""
        if self.ended is not None:
            return
        try:
            exited = os.waitid(os.P_PID, self.process.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            exited = None
            self.process.poll()
        if self.ps is not None:
            with contextlib.suppress(psutil.Error):
                times = self.ps.cpu_times()
                self.samples.append((time.monotonic(), times.user + times.system))
        if exited is not None or self.process.returncode is not None:
            self.exit_code = self.process.wait()
            self.ended = time.monotonic()

    def signal(self, signum: int) -> None:
        if self.ended is None:
            _signal_group(self.process, signum)

    def close(self) -> None:
        self.log.close()

    def figures(self) -> WorkerCpu:
        """Return what it used: CPU seconds, life, the busiest stretch, how it ended."""
        last_t, last_cpu = self.samples[-1]
        end = self.ended if self.ended is not None else last_t
        return WorkerCpu(
            pid=self.process.pid,
            cpu_seconds=last_cpu,
            wall_s=max(0.0, end - self.started),
            busiest_percent=busiest_stretch_percent(self.samples),
            exit_code=self.exit_code,
        )


def _stop_workers(workers: Sequence[_WorkerProcess], follow_s: float, step_s: float = 0.1) -> None:
    """Give workers follow_s to end by themselves, then SIGINT, then SIGKILL; measure them meanwhile."""

    def wait(seconds: float) -> bool:
        until = time.monotonic() + seconds
        while True:
            for worker in workers:
                worker.sample()
            if all(worker.ended is not None for worker in workers):
                return True
            if time.monotonic() >= until:
                return False
            time.sleep(step_s)

    if wait(follow_s):
        return
    for worker in workers:
        worker.signal(signal.SIGINT)
    if wait(WORKER_EXIT_S):
        return
    for worker in workers:
        worker.signal(signal.SIGKILL)
    wait(WORKER_EXIT_S)


def _test_started(errors_path: Path) -> bool:
    """Return whether the master's listener has seen its test start (its errors file says when)."""
    return isinstance(_listener_summary(errors_path).get("test_start"), int | float)


def _signal_group(process: subprocess.Popen[Any], signum: int) -> None:
    """Send a signal to Locust and its workers (its process group); nothing if they are gone."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signum)


def output_tail(output: str, lines: int = TAIL_LINES) -> str:
    """Return the last `lines` non-blank lines of Locust's output (where a traceback ends)."""
    kept = [line for line in output.splitlines() if line.strip()]
    return "\n".join(kept[-lines:])


def _complete_json(path: Path) -> bool:
    """Return whether Locust's --json-file is there and whole (a list of stats entries)."""
    try:
        return isinstance(json.loads(path.read_text()), list)
    except (OSError, ValueError):
        return False


def _listener_summary(path: Path) -> dict[str, Any]:
    """Return the listener's errors file as a dict, or {} when it is missing or torn."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


# Locust's own warnings: its monitor (standalone or a worker), the master's note on a worker, its summary.
_CPU_WARNINGS = ("CPU usage above", "exceeded cpu threshold", "CPU usage was too high", "CPU usage threshold")


def _cpu_warning_logged(output: str) -> bool:
    return any(marker in output for marker in _CPU_WARNINGS)


def _children_cpu_seconds() -> float:
    """Return the user+system CPU seconds of every child process this process has waited for."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class LocustfileInfo(NamedTuple):
    """What Locust finds in a set of locustfiles: the names of its User classes and of its shape classes.

    Locust runs the first shape class it finds; with none, plain -u/-r/-t.
    """

    user_classes: list[str]
    shape_classes: list[str]


CHECK_MARKER = "stackprobe locustfile check: "
# Locust's own loading, as `locust -f` does it (locust.main.main): the paths of -f, every locustfile
# imported, User and shape classes merged (duplicates refused, pytest-style files tried when no User).
_CHECK_SCRIPT = f"""
import json
from locust.argument_parser import get_locustfiles_locally, parse_locustfile_option
from locust.main import merge_locustfiles_content

files = get_locustfiles_locally(parse_locustfile_option())
users, shapes, _tasks, _shape = merge_locustfiles_content(files)
print({CHECK_MARKER!r} + json.dumps({{"user_classes": list(users), "shape_classes": list(shapes)}}), flush=True)
"""


def check_locustfile(paths: Path | Sequence[Path], shape: str = "", *, timeout_s: float = 120.0) -> LocustfileInfo:
    """Load locustfiles (a file or folder, or several) as Locust will, in a subprocess; say what they hold.

    Locust imports them as `-f` would, beside stackprobe's listener, with LOCUST_SHAPE=shape in the
    environment (a locustfile may, like loadtests/shapes.py, leave only the chosen shape class concrete:
    with shape "" it offers none). Takes about as long as Locust's start (1-2 s).
    Raises LoadError when they cannot load (a syntax or import error, duplicate classes, no User class),
    with the tail of the traceback, or when loading takes more than timeout_s seconds.
    """
    files = [paths] if isinstance(paths, Path) else list(paths)
    argv = [sys.executable, "-c", _CHECK_SCRIPT, "--locustfile", locustfile_option([*files, LISTENER])]
    env = {**os.environ, "LOCUST_SHAPE": shape}
    for name in (WINDOWS_ENV, ERRORS_ENV, RATE_ENV, "STACKPROBE_WRITE_LOG"):
        env.pop(name, None)
    try:
        done = subprocess.run(
            argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, errors="replace", env=env, timeout=timeout_s
        )
    except subprocess.TimeoutExpired:
        raise LoadError(f"loading {_names(files)} took more than {timeout_s:g} s") from None
    output = done.stdout + done.stderr
    found = [line[len(CHECK_MARKER) :] for line in done.stdout.splitlines() if line.startswith(CHECK_MARKER)]
    if done.returncode != 0 or not found:
        # With no User class Locust tries the files as pytest tests, whose own errors then end the output.
        hint = " (no User class found, so Locust tried them as pytest files)" if _PYTEST_LOADER in output else ""
        raise LoadError(
            f"Locust cannot load {_names(files)}{hint} (exit code {done.returncode}):\n{output_tail(output)}"
        )
    data = json.loads(found[-1])
    info = LocustfileInfo(user_classes=list(data["user_classes"]), shape_classes=list(data["shape_classes"]))
    if not info.user_classes:
        raise LoadError(f'no User class in {_names(files)}: Locust would stop with "No User class found!"')
    return info


_PYTEST_LOADER = "in load_locustfile_pytest"


def _names(paths: Sequence[Path]) -> str:
    return ", ".join(str(path) for path in paths)
