"""Locust, run headless in a subprocess: it monkey-patches with gevent on import, so never in here."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CSV_NAME = "locust"
WRITE_LOG_NAME = "writes.jsonl"


@dataclass(frozen=True)
class LoadPlan:
    """One Locust run: where it goes, how much load, in which shape, and where its files land."""

    locustfile: Path
    host: str
    users: int
    spawn_rate: float
    duration_s: float
    shape: str
    slo: str
    out: Path

    @property
    def csv_prefix(self) -> Path:
        """Return the prefix Locust writes its CSV files under."""
        return self.out / CSV_NAME

    @property
    def write_log(self) -> Path:
        """Return the file the locustfile appends acknowledged writes to."""
        return self.out / WRITE_LOG_NAME

    def argv(self) -> list[str]:
        """Return the Locust command line."""
        return [
            sys.executable, "-m", "locust",
            "--locustfile", str(self.locustfile),
            "--headless",
            "--host", self.host,
            "--users", str(self.users),
            "--spawn-rate", str(self.spawn_rate),
            "--run-time", f"{max(1, round(self.duration_s))}s",
            "--stop-timeout", "5",
            "--csv", str(self.csv_prefix),
            # The exact final totals: the CSV summary is rewritten each second but not at shutdown.
            "--json-file", str(self.csv_prefix),
            "--only-summary",
            # The verdict is stackprobe's to give, from the SLO; Locust's own exit code is not it.
            "--exit-code-on-error", "0",
        ]  # fmt: skip

    @property
    def log(self) -> Path:
        """Return the file Locust's output goes to."""
        return self.out / "locust.log"

    def outputs(self) -> list[Path]:
        """Return the files a run writes, which must not survive from an earlier run in the same folder."""
        prefix = self.csv_prefix
        suffixes = ("_stats.csv", "_stats_history.csv", "_failures.csv", "_exceptions.csv", ".json")
        return [self.write_log, self.log, *(Path(f"{prefix}{suffix}") for suffix in suffixes)]

    def env(self) -> dict[str, str]:
        """Return the environment for Locust: the write log, the shape and the SLO for the step shape."""
        return {
            **os.environ,
            "STACKPROBE_WRITE_LOG": str(self.write_log),
            "LOCUST_SHAPE": self.shape,
            "LOCUST_SLO": self.slo,
        }


@dataclass(frozen=True)
class LoadResult:
    """How the Locust process ended and what it cost."""

    exit_code: int
    wall_s: float
    cpu_seconds: float
    output_tail: str

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
    """Locust could not run (a broken locustfile, a bad option): the message holds what it printed."""


def run_load(plan: LoadPlan, on_tick: Callable[[float], None] | None = None, tick_s: float = 0.5) -> LoadResult:
    """Run Locust to its end; call on_tick(elapsed seconds) meanwhile; stop it cleanly on Ctrl-C."""
    plan.out.mkdir(parents=True, exist_ok=True)
    # The locustfile appends to the write log: an earlier run's lines would be audited against this run's
    # database, and an earlier run's JSON would pass for this one's if Locust wrote none.
    for path in plan.outputs():
        path.unlink(missing_ok=True)
    log_path = plan.log
    started = time.monotonic()
    # Locust's CPU, workers included, is what the children we waited for used meanwhile.
    children_before = _children_cpu_seconds()
    with log_path.open("w") as log:
        process = subprocess.Popen(plan.argv(), stdout=log, stderr=subprocess.STDOUT, env=plan.env())
        try:
            while process.poll() is None:
                if on_tick is not None:
                    on_tick(time.monotonic() - started)
                time.sleep(tick_s)
        except BaseException:
            # SIGINT lets Locust stop its users and still write its CSV files; then make sure it is gone.
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            raise
    wall = time.monotonic() - started
    cpu_seconds = _children_cpu_seconds() - children_before
    output = log_path.read_text(errors="replace")
    tail = "\n".join(output.splitlines()[-25:])
    if process.returncode != 0 or not Path(f"{plan.csv_prefix}.json").exists():
        raise LoadError(f"Locust exited with code {process.returncode}:\n{tail}")
    return LoadResult(exit_code=process.returncode, wall_s=wall, cpu_seconds=cpu_seconds, output_tail=tail)


def _children_cpu_seconds() -> float:
    """Return the user+system CPU seconds of every child process this process has waited for."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime
