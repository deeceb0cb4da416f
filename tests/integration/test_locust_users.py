"""Real Locust traffic from loadtests/ against the users service, run the way stackprobe runs it.

Locust is always a subprocess: importing it here would monkey-patch this process with gevent.
"""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.http_session import Session

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
LOADTESTS = REPO / "loadtests"
ENDPOINTS = {("POST", "/users"), ("GET", "/users [first page]"), ("GET", "/users [next page]"), ("GET", "/users/<id>")}


@dataclass
class LocustRun:
    """A finished Locust process and the files it left in out_dir."""

    returncode: int
    stdout: str
    stderr: str
    out_dir: Path
    seconds: float

    def stats(self) -> dict[tuple[str, str], dict[str, str]]:
        """Return locust_stats.csv rows keyed by (type, name); the total is ("", "Aggregated")."""
        with (self.out_dir / "locust_stats.csv").open(newline="") as f:
            return {(row["Type"], row["Name"]): row for row in csv.DictReader(f)}

    def summary_count(self, method: str, name: str) -> int:
        """Return a request count from the final console table, which is exact."""
        # locust_stats.csv is rewritten once a second, not at shutdown: it can miss the last second.
        pattern = re.compile(rf"^{re.escape(method)}\s+{re.escape(name)}\s+(\d+)\s+\d+\(", re.MULTILINE)
        counts = pattern.findall(self.stderr)
        assert counts, self.stderr[-3000:]
        return int(counts[-1])

    def history_user_counts(self) -> list[int]:
        """Return the user count of each Aggregated row of locust_stats_history.csv, in time order."""
        with (self.out_dir / "locust_stats_history.csv").open(newline="") as f:
            return [int(row["User Count"]) for row in csv.DictReader(f) if row["Name"] == "Aggregated"]

    def operations(self) -> list[dict[str, Any]]:
        """Return the write log, one parsed JSON object (invoke, ok, fail or info) per line."""
        text = (self.out_dir / "writes.jsonl").read_text(encoding="utf-8")
        assert text == "" or text.endswith("\n"), "the write log ends in a torn line"
        return [json.loads(line) for line in text.splitlines()]

    def listings(self) -> list[dict[str, Any]]:
        """Return the write log's scan lines: where the locustfile says every record is listed."""
        return [line for line in self.operations() if line["type"] == "scan"]

    def writes(self) -> list[dict[str, Any]]:
        """Return the acknowledged writes of the write log (its ok lines)."""
        return [line for line in self.operations() if line["type"] == "ok"]

    def step_result(self) -> dict[str, Any]:
        """Return the JSON the step shape printed on stdout."""
        lines = [line for line in self.stdout.splitlines() if line.startswith("step result: ")]
        assert len(lines) == 1, self.stdout
        return json.loads(lines[0].removeprefix("step result: "))


def run_locust(
    url: str, out_dir: Path, *args: str, run_time: int, env: dict[str, str] | None = None, write_log: bool = True
) -> LocustRun:
    """Run `python -m locust -f loadtests --headless` with stackprobe's flags and wait for it to end."""
    clean_env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("LOCUST_") and key != "STACKPROBE_WRITE_LOG"
    }
    if write_log:
        clean_env["STACKPROBE_WRITE_LOG"] = str(out_dir / "writes.jsonl")
    clean_env.update(env or {})
    command = [
        sys.executable, "-m", "locust", "-f", str(LOADTESTS), "--headless", "--host", url,
        "-t", f"{run_time}s", *args,
        "--csv", str(out_dir / "locust"), "--csv-full-history", "--only-summary", "--exit-code-on-error", "0",
    ]  # fmt: skip
    started = time.monotonic()
    # cwd is the test's own directory so no locust.conf or pyproject.toml [tool.locust] leaks in.
    result = subprocess.run(
        command, cwd=out_dir, env=clean_env, capture_output=True, text=True, timeout=run_time + 90, check=False
    )
    return LocustRun(result.returncode, result.stdout, result.stderr, out_dir, time.monotonic() - started)


def assert_no_failures(run: LocustRun) -> dict[tuple[str, str], dict[str, str]]:
    """Check the run ended cleanly with zero failures and return its stats rows."""
    assert run.returncode == 0, run.stderr[-3000:]
    stats = run.stats()
    total = stats[("", "Aggregated")]
    assert int(total["Failure Count"]) == 0, (run.out_dir / "locust_failures.csv").read_text()
    return stats


@pytest.fixture(scope="module")
def http(live_service_url: str) -> Iterator[Session]:
    """The module's HTTP client, paths resolved against the live service (10 s timeout)."""
    with Session(live_service_url, timeout_s=10) as session:
        yield session


def assert_every_write_stored(http: Session, writes: list[dict[str, Any]]) -> None:
    """GET every acknowledged location back and compare it with what the service acknowledged."""
    for write in writes:
        response = http.get(write["location"])
        assert response.status_code == 200, write
        body = response.json()
        assert {key: body.get(key) for key in write["expect"]} == write["expect"]


def test_users_traffic_runs_without_failures_and_every_acknowledged_write_is_stored(
    live_service_url: str, tmp_path: Path, http: Session
) -> None:
    run = run_locust(live_service_url, tmp_path, "-u", "10", "-r", "10", run_time=8)

    stats = assert_no_failures(run)
    assert int(stats[("", "Aggregated")]["Request Count"]) > 500
    assert {key for key in stats if key[0]} == ENDPOINTS
    for name in ("locust_stats.csv", "locust_failures.csv", "locust_exceptions.csv", "locust_stats_history.csv"):
        assert (tmp_path / name).is_file(), name
    assert max(run.history_user_counts()) == 10

    writes = run.writes()
    assert len(writes) == run.summary_count("POST", "/users")
    assert all(write["location"] == f"/users/{write['expect']['id']}" for write in writes)
    assert_every_write_stored(http, writes)
    # Every create was logged before it was sent, with where to look its name up.
    invokes = {line["op"]: line for line in run.operations() if line["type"] == "invoke"}
    for write in writes[:50]:
        invoke = invokes[write["op"]]
        assert invoke["time"] <= write["time"]
        assert (invoke["name"], write["expect"]["name"]) == (write["name"], write["name"])
        assert http.get(invoke["lookup"]).json()["items"][0]["id"] == write["expect"]["id"]
    # The listing is declared once, before the first write, and pages through every user the load created.
    assert run.operations()[0] == {**run.listings()[0], "type": "scan"}
    assert [(line["url"], line["key"]) for line in run.listings()] == [("/users?limit=500", "id")]
    listed, url = set(), run.listings()[0]["url"]
    while url:
        page = http.get(url).json()
        listed |= {item["id"] for item in page["items"]}
        url = page["next"]
    assert {write["expect"]["id"] for write in writes} <= listed


def test_worker_processes_append_whole_lines_to_one_write_log(
    live_service_url: str, tmp_path: Path, http: Session
) -> None:
    run = run_locust(live_service_url, tmp_path, "-u", "10", "-r", "10", "--processes", "2", run_time=8)

    assert_no_failures(run)
    writes = run.writes()
    ids = [write["expect"]["id"] for write in writes]
    assert len(ids) > 100
    assert len(set(ids)) == len(ids)
    assert len(writes) == run.summary_count("POST", "/users")
    assert_every_write_stored(http, writes)
    # Each process's lines stay in its own order: every create's invoke comes before its completion.
    invoked: set[str] = set()
    # The same listing from each process that opened the log: the master and its two workers.
    assert [(line["url"], line["key"]) for line in run.listings()] == [("/users?limit=500", "id")] * 3
    for line in run.operations():
        if line["type"] == "scan":
            continue
        if line["type"] == "invoke":
            assert line["op"] not in invoked, line
            invoked.add(line["op"])
        else:
            assert line["op"] in invoked, line
    assert len({line["op"].split("-")[0] for line in writes}) == 2


def test_no_write_log_is_kept_when_the_variable_is_unset(live_service_url: str, tmp_path: Path) -> None:
    run = run_locust(live_service_url, tmp_path, "-u", "2", "-r", "2", run_time=3, write_log=False)

    assert_no_failures(run)
    assert not (tmp_path / "writes.jsonl").exists()


def test_step_shape_climbs_to_max_users_while_the_slo_holds(
    live_service_url: str, tmp_path: Path, http: Session
) -> None:
    env = {"LOCUST_SHAPE": "step", "LOCUST_SLO": "errors<1%,p99<5s", "LOCUST_STEP_USERS": "2", "LOCUST_STEP_TIME": "3s"}
    run = run_locust(live_service_url, tmp_path, "-u", "4", "-r", "10", env=env, run_time=60)

    assert_no_failures(run)
    result = run.step_result()
    assert result["stop_reason"] == "max users reached"
    assert [step["users"] for step in result["steps"]] == [2, 4]
    assert all(step["passed"] and step["requests"] > 0 for step in result["steps"])
    assert result["last_passing_users"] == 4
    assert run.seconds < 40
    assert_every_write_stored(http, run.writes())


def test_step_shape_stops_at_the_first_step_that_breaks_the_slo(live_service_url: str, tmp_path: Path) -> None:
    # No single Locust process on a test machine reaches a million requests per second.
    env = {"LOCUST_SHAPE": "step", "LOCUST_SLO": "rps>1000000", "LOCUST_STEP_USERS": "2", "LOCUST_STEP_TIME": "3s"}
    run = run_locust(live_service_url, tmp_path, "-u", "20", "-r", "10", env=env, run_time=60)

    assert_no_failures(run)
    result = run.step_result()
    assert result["stop_reason"] == "SLO broken"
    assert result["last_passing_users"] is None
    assert result["first_failing_users"] == 2
    assert run.seconds < 40


def test_spike_shape_jumps_to_all_users_and_falls_back(live_service_url: str, tmp_path: Path) -> None:
    run = run_locust(live_service_url, tmp_path, "-u", "10", "-r", "5", "--shape", "spike", run_time=15)

    assert_no_failures(run)
    counts = run.history_user_counts()
    peak = counts.index(10)
    assert set(counts[:peak]) <= {0, 1}
    assert 1 in counts[peak:]
