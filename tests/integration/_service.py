"""The users service as it runs in production (`python -m users.server`: Granian), in a subprocess on 127.0.0.1."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import psutil
import requests

from stackprobe.stack import free_ports
from tests.http_session import Session

ROOT = Path(__file__).resolve().parents[2]
SERVICE_DIR = ROOT / "services" / "users"
# users.server's default worker count, for waiting until all of them run.
DEFAULT_WORKERS = 1
# Settings the service reads: a caller's own environment must not leak into the service under test.
_SERVICE_VARIABLES = ("DATABASE_URL", "POSTGRES_", "DB_", "GRANIAN_", "MAX_CONTENT_LENGTH")


@dataclass
class LiveService:
    """A running users service (Granian's main process and its workers), and where its output goes."""

    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        """The main process's id (Granian's, which spawns the workers)."""
        return self.process.pid

    def output(self, max_chars: int = 20_000) -> str:
        """Return the end of what the service has printed so far."""
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return text[-max_chars:]

    def worker_pids(self) -> set[int]:
        """Return the pids of the workers running now."""
        return {child.pid for child in psutil.Process(self.pid).children()}

    def wait_workers(self, count: int, timeout_s: float = 30.0) -> None:
        """Wait until `count` workers run, so that later checks see every one of them."""
        deadline = time.monotonic() + timeout_s
        while len(self.worker_pids()) < count:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"users service: {count} workers not running in time:\n{self.output()}")
            time.sleep(0.05)

    def wait_ready(self, timeout_s: float = 30.0, path: str = "/readyz") -> None:
        """Poll `path` until it answers 200; fail with the service's output at the deadline or if it exits."""
        deadline = time.monotonic() + timeout_s
        last = "no answer yet"
        with Session(self.url, timeout_s=2.0) as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(
                        f"users service exited with {self.process.returncode} before {path} answered 200:\n"
                        f"{self.output()}"
                    )
                try:
                    response = client.get(path)
                except requests.RequestException as exc:
                    last = f"{type(exc).__name__}: {exc}"
                else:
                    if response.status_code == 200:
                        return
                    last = f"{response.status_code} {response.text[:200]}"
                time.sleep(0.1)
        raise TimeoutError(
            f"users service at {self.url}: {path} not 200 after {timeout_s} s ({last}):\n{self.output()}"
        )


@contextmanager
def running_service(
    database_url: str,
    log_path: Path,
    *,
    env: Mapping[str, str] | None = None,
    wait_path: str | None = "/readyz",
) -> Iterator[LiveService]:
    """Run the service as its image does on a free 127.0.0.1 port; stop it (and its workers) after."""
    (port,) = free_ports(1)
    service_env = {key: value for key, value in os.environ.items() if not key.startswith(_SERVICE_VARIABLES)}
    service_env.update({"DATABASE_URL": database_url, "PYTHONUNBUFFERED": "1", **(env or {})})
    service_env.update({"GRANIAN_HOST": "127.0.0.1", "GRANIAN_PORT": str(port)})
    command = [sys.executable, "-m", "users.server"]
    with log_path.open("ab") as log:
        # Its own session, so the whole group can be stopped by the master's id whatever happens.
        process = subprocess.Popen(
            command, cwd=SERVICE_DIR, env=service_env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    service = LiveService(url=f"http://127.0.0.1:{port}", process=process, log_path=log_path)
    try:
        if wait_path is not None:
            service.wait_ready(path=wait_path)
        service.wait_workers(int(service_env.get("GRANIAN_WORKERS", DEFAULT_WORKERS)))
        yield service
    finally:
        _stop(process)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()  # SIGTERM: Granian stops its workers gracefully, then itself
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
    # Workers outlive a killed master only briefly; make sure none is left behind.
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
