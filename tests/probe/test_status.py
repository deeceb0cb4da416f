"""`stackprobe status` finds a stack `stackprobe run --keep-up` left, under the project name run gives it.

A real `run --keep-up` costs about 30 s (Locust's start, idle samples, the audit); the stack here is brought
up the way run brings its own up (stack.Stack under a `stackprobe-<pid>-<hex>` project, the limit in an
override file), with the id of a process that has ended: what a finished `run --keep-up` leaves.
"""

from __future__ import annotations

import os
import secrets
import subprocess
from collections.abc import Callable

import pytest

from stackprobe.stack import ServiceOverride, Stack
from tests.conftest import read_env_file
from tests.probe.conftest import STACKS, ProbeRun

pytestmark = pytest.mark.probe

KINDS_COMPOSE = STACKS / "kinds" / "compose.yaml"
MIB = 1024 * 1024


def _ended_pid() -> int:
    """Return the id of a process that has ended and been reaped, as a finished `stackprobe run` has."""
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def test_status_shows_a_stack_left_by_run_keep_up_with_its_url_and_the_limit_run_asked(
    run_stackprobe: Callable[..., ProbeRun],
) -> None:
    images = {k: v for k, v in read_env_file().items() if k.endswith("_IMAGE")}
    project = f"stackprobe-{_ended_pid()}-{secrets.token_hex(3)}"
    stack = Stack(
        [KINDS_COMPOSE],
        project=project,
        overrides={"app": ServiceOverride(memory_bytes=64 * MIB)},
        env={**images, **{k: v for k, v in os.environ.items() if k.endswith("_IMAGE")}},
    )
    try:
        stack.up(build=False, wait_timeout=60)
        url = f"http://127.0.0.1:{stack.port('app', 8000)}"
        status = run_stackprobe("status", "--compose-file", str(KINDS_COMPOSE), timeout=120)
    finally:
        teardown = stack.down()
    explain = f"exit {status.exit_code}\n{status.stdout}\n{status.stderr}"
    assert status.exit_code == 0, explain
    assert f"Compose project {project} (left running by stackprobe run --keep-up)" in status.stdout, explain
    assert f"\napp: {url}\n" in status.stdout, explain
    # The limit run asked for (its override), applied and in force: 64 MiB, not the file's own (none).
    (app_row,) = [line for line in status.stdout.splitlines() if line.startswith("app ")]
    assert app_row.split()[-7:] == ["64.0", "MiB", "64.0", "MiB", "64.0", "MiB", "yes"], explain
    assert teardown.ok, teardown.message
