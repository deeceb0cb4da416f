"""Run the `stackprobe` command as users do: a subprocess, with the machine's image choices."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import pytest
from playwright.sync_api import Browser, sync_playwright

from tests.conftest import ROOT, read_env_file

STACKS = Path(__file__).parent / "stacks"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


@pytest.fixture(scope="module")
def client() -> Iterator[docker.DockerClient]:
    """A Docker SDK client (60-s timeout), closed after the module so no socket is left open."""
    engine = docker.from_env(timeout=60)
    try:
        yield engine
    finally:
        engine.close()


@pytest.fixture(scope="module")
def python_image() -> str:
    """The Python image this machine runs: PYTHON_IMAGE from the environment or .env (offline-built where no
    registry answers), else the official one."""
    return os.environ.get("PYTHON_IMAGE") or read_env_file().get("PYTHON_IMAGE") or "python:3.12-slim"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless Chromium from the system package, once per module (fails, never skips, under CI=true)."""
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is not installed (apt-get install chromium)"
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


# The Compose project prefix of every stackprobe process the suite started ("stackprobe-PID-"): tests judge
# only what they made, never another user's or another job's stacks on the same engine.
PROJECT_PREFIXES: list[str] = []


@dataclass
class ProbeRun:
    """One finished `stackprobe` process: its exit code, output and report (when it wrote one)."""

    exit_code: int
    stdout: str
    stderr: str
    out: Path
    project_prefix: str = ""

    @property
    def report(self) -> dict[str, Any]:
        """Return report.json as written."""
        return json.loads((self.out / "report.json").read_text())


@pytest.fixture
def run_stackprobe(tmp_path: Path) -> Callable[..., ProbeRun]:
    """Return a function that runs `python -m stackprobe ARGS` from the project root."""

    def run(*args: str, timeout: float = 600) -> ProbeRun:
        out = tmp_path / "report"
        env = {**os.environ}
        # Stacks outside the project folder do not see its .env: pass the machine's image choices on.
        env.update({k: v for k, v in read_env_file().items() if k.endswith("_IMAGE") or k == "PIP_NO_INDEX"})
        argv = [sys.executable, "-m", "stackprobe", *args]
        if args and args[0] == "run" and "--out" not in args:
            argv += ["--out", str(out)]
        process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        prefix = f"stackprobe-{process.pid}-"
        PROJECT_PREFIXES.append(prefix)
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        return ProbeRun(process.returncode, stdout, stderr, out, prefix)

    return run
