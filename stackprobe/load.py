"""Locust, run headless in a subprocess: it monkey-patches with gevent on import, so never in here."""

from __future__ import annotations

import contextlib
import json
import math
import os
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

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

    def __post_init__(self) -> None:
        if self.rate is not None and not (math.isfinite(self.rate) and self.rate > 0):
            raise ValueError(f"an arrival rate must be a number above 0, not {self.rate!r}")

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
        """Return the file Locust's output goes to."""
        return self.out / "locust.log"

    def locustfiles(self) -> list[Path]:
        """Return what Locust loads: the user's locustfile (a file or a folder), then stackprobe's listener."""
        return [self.locustfile, LISTENER]

    def argv(self) -> list[str]:
        """Return the Locust command line; raise LoadError for a path Locust's `-f` cannot take (a comma)."""
        return [
            sys.executable, "-m", "locust",
            "--locustfile", locustfile_option(self.locustfiles()),
            "--headless",
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

    @property
    def cpu_percent(self) -> float:
        """Return the load generator's average CPU use, in percent of one core."""
        return 100.0 * self.cpu_seconds / self.wall_s if self.wall_s > 0 else 0.0


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
    LoadResult.overran says so. Raises LoadError when Locust left no results, with its output's tail.
    """
    plan.out.mkdir(parents=True, exist_ok=True)
    # The locustfile appends to the write log: an earlier run's lines would be audited against this run's
    # database, and an earlier run's JSON would pass for this one's if Locust wrote none.
    for path in plan.outputs():
        path.unlink(missing_ok=True)
    argv = plan.argv()
    deadline_s = plan.duration_s + STOP_TIMEOUT_S + (overrun_grace_s(plan.duration_s) if grace_s is None else grace_s)
    log_path = plan.log
    started = time.monotonic()
    # Locust's CPU, workers included, is what the children we waited for used meanwhile.
    children_before = _children_cpu_seconds()
    interrupted_at: float | None = None
    killed = False
    with log_path.open("w") as log:
        # A session of its own: a terminal's Ctrl-C reaches stackprobe only, which then stops Locust once
        # (a second SIGINT could cut Locust's shutdown short), and a signal reaches its --processes workers.
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=plan.env(), start_new_session=True)
        try:
            while process.poll() is None:
                elapsed = time.monotonic() - started
                if on_tick is not None:
                    on_tick(elapsed)
                if interrupted_at is None and elapsed > deadline_s:
                    _signal_group(process, signal.SIGINT)
                    interrupted_at = elapsed
                elif interrupted_at is not None and not killed and elapsed > interrupted_at + kill_after_s:
                    _signal_group(process, signal.SIGKILL)
                    killed = True
                time.sleep(tick_s)
        except BaseException:
            # SIGINT lets Locust stop its users and still write its files; then make sure it is gone.
            _signal_group(process, signal.SIGINT)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                _signal_group(process, signal.SIGKILL)
                process.wait()
            raise
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
        overran = (
            f"Locust ran {wall - plan.duration_s:.1f} s past --duration {plan.duration_s:g}s (a shape that "
            f"never returns None, or a task that blocks); {how}"
        )
    if not _complete_json(plan.json_file):
        reason = f" ({overran})" if overran else ""
        raise LoadError(f"Locust exited with code {process.returncode} and left no results{reason}:\n{tail}")
    summary = _listener_summary(plan.errors)
    arrivals = summary.get("arrivals") if isinstance(summary.get("arrivals"), dict) else {}
    achieved = arrivals.get("achieved_rate")
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
    )


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
