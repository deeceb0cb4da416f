"""The bundled stack's `loadgen` profile: Locust's master and workers in containers, as Locust's docs run them."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import ROOT
from tests.http_session import Session
from tests.stack.conftest import BundledStack

pytestmark = pytest.mark.stack


def _services(*profiles: str) -> dict[str, Any]:
    """Return the bundled file's services as Compose reads them with these profiles (no engine needed)."""
    argv = ["docker", "compose", "--project-directory", str(ROOT), "-f", str(ROOT / "docker-compose.yml")]
    for profile in profiles:
        argv += ["--profile", profile]
    # Compose refuses the file without a password: a clone without .env still has its services.
    env = {"POSTGRES_PASSWORD": "unused", **os.environ}
    done = subprocess.run([*argv, "config", "--format", "json"], capture_output=True, text=True, check=True, env=env)
    return json.loads(done.stdout)["services"]


def test_the_default_services_are_unchanged_by_the_loadgen_profile() -> None:
    assert set(_services()) == {"db", "app"}
    loadgen = _services("loadgen")
    assert set(loadgen) == {"db", "app", "master", "worker"}
    # The master's web UI is published on loopback only; workers publish nothing.
    assert [(p["host_ip"], p["target"]) for p in loadgen["master"]["ports"]] == [("127.0.0.1", 8089)]
    assert "ports" not in loadgen["worker"]
    assert loadgen["worker"]["command"][-2:] == ["--master-host", "master"]


def _poll(http: Session, until: Callable[[dict[str, Any]], bool], timeout_s: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        stats = http.get("/stats/requests").json()
        if until(stats) or time.monotonic() > deadline:
            return stats
        time.sleep(0.5)


def test_scaled_workers_join_the_master_and_load_the_app_on_its_network(bundled_stack: BundledStack) -> None:
    # `docker compose --profile loadgen up --scale worker=2`, as the README says.
    bundled_stack.stack.run("up", "--detach", "--no-deps", "--scale", "worker=2", "worker", action="scale")
    http = Session(bundled_stack.locust_url, timeout_s=10)
    ready = _poll(http, lambda s: s.get("worker_count") == 2, timeout_s=60)
    assert ready["worker_count"] == 2, ready
    started = http.post("/swarm", data={"user_count": 4, "spawn_rate": 4, "host": "http://app:5000"}).json()
    assert started["success"], started
    try:
        stats = _poll(
            http,
            lambda s: s["stats"][-1]["num_requests"] >= 40 and all(w["user_count"] == 2 for w in s["workers"]),
            timeout_s=30,
        )
    finally:
        http.post("/stop")
        http.close()
    total = stats["stats"][-1]
    assert total["name"] == "Aggregated"
    assert total["num_requests"] >= 40, stats
    assert total["num_failures"] == 0, stats["errors"]
    assert sorted(w["user_count"] for w in stats["workers"]) == [2, 2]
