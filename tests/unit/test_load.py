"""Locust run by stackprobe in a subprocess: its command line, its files, its end, and the locustfile check."""

from __future__ import annotations

import json
import math
import os
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from stackprobe.load import (
    ERRORS_ENV,
    LISTENER,
    RATE_ENV,
    STOP_TIMEOUT_S,
    WINDOWS_ENV,
    LoadError,
    LoadPlan,
    check_locustfile,
    default_pool_size,
    locustfile_option,
    overrun_grace_s,
    run_load,
)
from stackprobe.locuststats import read_arrivals, read_errors, read_windows

LOADTESTS = Path(__file__).resolve().parents[2] / "loadtests"

# Makes no request: these tests are about the files around a run and how it ends, not traffic.
IDLE_LOCUSTFILE = """
from locust import User, constant, task


class Idle(User):
    wait_time = constant(0.2)

    @task
    def nothing(self):
        pass
"""

# Locust's documented CI idiom: decide the exit code when quitting. The run's results are complete.
EXIT_CODE_LOCUSTFILE = (
    IDLE_LOCUSTFILE
    + """
from locust import events


@events.quitting.add_listener
def _exit_code(environment, **_kwargs):
    environment.process_exit_code = 3
"""
)

# A shape whose tick raises: Locust logs an unhandled greenlet exception, ends the test, exits with 2.
CRASHING_SHAPE_LOCUSTFILE = (
    IDLE_LOCUSTFILE
    + """
from locust import LoadTestShape


class Crashing(LoadTestShape):
    def tick(self):
        if self.get_run_time() > 1:
            raise RuntimeError("a bug in the shape")
        return (1, 1)
"""
)

# A shape that never returns None: with a shape, Locust's --run-time only starts once the shape is done.
ENDLESS_SHAPE_LOCUSTFILE = (
    IDLE_LOCUSTFILE
    + """
from locust import LoadTestShape


class Endless(LoadTestShape):
    def tick(self):
        return (1, 1)
"""
)

# A task that blocks Locust's event loop (an unpatched, blocking call) after 1.5 s: nothing in Locust
# runs any more, neither the run-time timer nor the stop timeout. SIGINT still interrupts the call.
BLOCKING_LOCUSTFILE = """
import time

from gevent.monkey import get_original
from locust import User, constant, task

blocking_sleep = get_original("time", "sleep")


class Blocker(User):
    wait_time = constant(0.1)

    def on_start(self):
        self.started = time.time()

    @task
    def block(self):
        if time.time() - self.started > 1.5:
            blocking_sleep(3600)
"""

# The same, deaf to SIGINT: only SIGKILL ends it, before Locust writes its results.
DEAF_LOCUSTFILE = """
from gevent.monkey import get_original
from locust import User, constant, task

blocking_sleep = get_original("time", "sleep")


class Deaf(User):
    wait_time = constant(0.1)

    @task
    def block(self):
        while True:
            try:
                blocking_sleep(3600)
            except KeyboardInterrupt:
                pass
"""

PLAIN_HTTP_LOCUSTFILE = """
from locust import HttpUser, task


class Reader(HttpUser):
    @task
    def page(self):
        self.client.get("/")
"""


def _plan(tmp_path: Path, source: str = IDLE_LOCUSTFILE, duration_s: float = 1) -> LoadPlan:
    locustfile = tmp_path / "scenario.py"
    locustfile.write_text(source)
    return LoadPlan(
        locustfile=locustfile,
        host="http://127.0.0.1:9",
        users=1,
        spawn_rate=1,
        duration_s=duration_s,
        shape="steady",
        slo="",
        out=tmp_path / "out",
    )


def test_argv_loads_the_users_locustfile_then_the_listener(tmp_path: Path) -> None:
    plan = _plan(tmp_path)
    argv = plan.argv()
    assert argv[:3] == [sys.executable, "-m", "locust"]
    assert argv[argv.index("--locustfile") + 1] == f"{plan.locustfile},{LISTENER}"
    assert argv[argv.index("--json-file") + 1] == str(plan.csv_prefix)
    assert argv[argv.index("--exit-code-on-error") + 1] == "0"
    assert argv[argv.index("--stop-timeout") + 1] == str(STOP_TIMEOUT_S)
    assert "--csv-full-history" not in argv
    assert LISTENER.is_file()


def test_env_names_the_listeners_files_in_the_output_folder(tmp_path: Path) -> None:
    plan = _plan(tmp_path)
    env = plan.env()
    assert env[WINDOWS_ENV] == str(plan.out / "locust_windows.jsonl") == str(plan.windows)
    assert env[ERRORS_ENV] == str(plan.out / "locust_errors.json") == str(plan.errors)
    assert env["LOCUST_SHAPE"] == "steady"
    assert {plan.windows, plan.errors, plan.json_file} <= set(plan.outputs())


def test_a_rate_reaches_the_listener_and_leaves_locusts_options_alone(tmp_path: Path) -> None:
    plan = replace(_plan(tmp_path), rate=12.5, users=default_pool_size(12.5))
    assert plan.env()[RATE_ENV] == "12.5"
    # The pool is Locust's --users; the schedule is the listener's.
    argv = plan.argv()
    assert argv[argv.index("--users") + 1] == "20"
    assert argv == replace(plan, rate=None).argv()


def test_a_closed_model_run_is_never_paced_by_a_variable_it_inherits(tmp_path: Path) -> None:
    os.environ[RATE_ENV] = "99"
    assert RATE_ENV not in _plan(tmp_path).env()


@pytest.mark.parametrize("rate", [0.0, -5.0, math.nan, math.inf])
def test_a_rate_must_be_a_number_of_arrivals_above_zero(tmp_path: Path, rate: float) -> None:
    with pytest.raises(ValueError, match="arrival rate must be a number above 0"):
        replace(_plan(tmp_path), rate=rate)
    with pytest.raises(ValueError, match="arrival rate must be a number above 0"):
        default_pool_size(rate)


@pytest.mark.parametrize(("rate", "pool"), [(0.5, 20), (10, 20), (20, 20), (20.2, 21), (50, 50), (400, 400)])
def test_the_default_pool_is_twenty_users_or_twice_the_rate_times_half_a_second(rate: float, pool: int) -> None:
    assert default_pool_size(rate) == pool


def test_a_path_with_a_comma_is_refused_not_split() -> None:
    with pytest.raises(LoadError, match="splits paths at commas"):
        locustfile_option([Path("/tmp/a,b.py"), LISTENER])


def test_the_grace_before_stopping_is_ten_seconds_or_ten_percent() -> None:
    assert overrun_grace_s(5) == 10.0
    assert overrun_grace_s(600) == 60.0


def test_a_run_in_a_used_folder_keeps_nothing_of_the_earlier_run(tmp_path: Path) -> None:
    plan = _plan(tmp_path)
    plan.out.mkdir()
    earlier = {"location": "/users/1", "expect": {"id": 1, "name": "from an earlier run"}}
    plan.write_log.write_text(json.dumps(earlier) + "\n")
    plan.history.write_text(json.dumps(earlier) + "\n")
    plan.json_file.write_text('[{"name": "stale", "num_requests": 99}]')
    plan.windows.write_text('{"t": 1, "stale": true}\n')
    plan.errors.write_text('{"stale": true}')

    result = run_load(plan)

    assert result.exit_code == 0
    assert result.overran is None
    assert not plan.write_log.exists(), "the earlier run's acknowledged writes would be audited again"
    assert not plan.history.exists(), "the earlier run's history would pass for this one's"
    assert "stale" not in plan.json_file.read_text()
    assert "stale" not in plan.windows.read_text()
    assert "stale" not in plan.errors.read_text()


def test_outputs_name_every_file_locust_writes(tmp_path: Path) -> None:
    plan = _plan(tmp_path)
    run_load(plan)
    written = {path.name for path in plan.out.iterdir()}
    assert written <= {path.name for path in plan.outputs()}
    assert {plan.windows.name, plan.errors.name, plan.json_file.name} <= written


def test_a_run_of_a_single_user_file_has_windows_and_errors(tmp_path: Path) -> None:
    # 4 s, so that a busy machine that starts Locust late still leaves two whole windows.
    plan = _plan(tmp_path, duration_s=4)
    result = run_load(plan)
    series = read_windows(plan.windows, start=0.0)
    assert len(series.t) >= 2
    assert max(series.users) == 1
    assert read_errors(plan.errors, start=0.0) == ([], [])
    assert json.loads(plan.errors.read_text())["exit_code"] == result.exit_code == 0
    assert result.cpu_warning is False
    # The closed model: no arrivals, no rates, the windows as they always were.
    assert read_arrivals(plan.errors) is None
    assert result.arrival_rate is None
    assert result.achieved_rate is None
    assert all("arrivals" not in line for line in plan.windows.read_text().splitlines())


def test_locusts_exit_code_is_a_figure_when_its_results_are_complete(tmp_path: Path) -> None:
    plan = _plan(tmp_path, EXIT_CODE_LOCUSTFILE)
    result = run_load(plan)
    assert result.exit_code == 3
    assert result.overran is None
    assert json.loads(plan.json_file.read_text()) == []


def test_a_crashed_shape_is_reported_not_raised(tmp_path: Path) -> None:
    plan = _plan(tmp_path, CRASHING_SHAPE_LOCUSTFILE, duration_s=5)
    result = run_load(plan)
    assert result.exit_code == 2
    assert result.unhandled_exception is True
    assert "a bug in the shape" in plan.log.read_text()


def test_a_locustfile_that_cannot_load_raises_with_its_tracebacks_end(tmp_path: Path) -> None:
    plan = _plan(tmp_path, "from locust import User\ndef broken(:\n")
    with pytest.raises(LoadError, match=r"(?s)left no results.*SyntaxError"):
        run_load(plan)


def test_a_bad_option_raises_with_locusts_words(tmp_path: Path) -> None:
    # loadtests/shapes.py adds --shape (LOCUST_SHAPE) with its choices: Locust's parser refuses others.
    plan = replace(_plan(tmp_path), locustfile=LOADTESTS, shape="zigzag")
    with pytest.raises(LoadError, match=r"(?s)exited with code 2 and left no results.*invalid choice: 'zigzag'"):
        run_load(plan)


def test_a_shape_that_never_ends_is_stopped_after_the_grace_and_keeps_its_results(tmp_path: Path) -> None:
    plan = _plan(tmp_path, ENDLESS_SHAPE_LOCUSTFILE)
    result = run_load(plan, grace_s=1)
    assert result.overran is not None
    assert "past --duration 1s" in result.overran
    assert result.overran.endswith("stopped with SIGINT")
    assert result.wall_s >= plan.duration_s + STOP_TIMEOUT_S + 1
    assert json.loads(plan.json_file.read_text()) == []
    assert json.loads(plan.errors.read_text())["final"] is True


def test_a_task_that_blocks_locust_is_stopped_after_the_grace(tmp_path: Path) -> None:
    plan = _plan(tmp_path, BLOCKING_LOCUSTFILE, duration_s=3)
    result = run_load(plan, grace_s=1)
    assert result.overran is not None
    assert result.overran.endswith("stopped with SIGINT")
    # The event loop was blocked for seconds: their windows still show the user that was running (the
    # last, when SIGINT ended that user's task, may show none).
    users = read_windows(plan.windows, start=0.0).users
    assert len(users) > 5
    assert set(users[:-1]) == {1}


def test_a_run_deaf_to_sigint_is_killed_and_raises_naming_the_overrun(tmp_path: Path) -> None:
    plan = _plan(tmp_path, DEAF_LOCUSTFILE)
    with pytest.raises(LoadError, match=r"killed with SIGKILL\)") as raised:
        run_load(plan, grace_s=1, kill_after_s=2)
    assert "code -9" in str(raised.value)


def test_check_tells_the_shapes_the_loadtests_offer_for_the_shape_asked() -> None:
    # loadtests/shapes.py leaves only the shape named in LOCUST_SHAPE (or --shape) concrete.
    assert check_locustfile(LOADTESTS, "spike").shape_classes == ["SpikeShape"]
    info = check_locustfile(LOADTESTS, "")
    assert info.user_classes == ["Registrar"]
    assert info.shape_classes == []


def test_check_of_a_plain_user_file_finds_no_shape(tmp_path: Path) -> None:
    locustfile = tmp_path / "reader.py"
    locustfile.write_text(PLAIN_HTTP_LOCUSTFILE)
    info = check_locustfile(locustfile, "spike")
    assert info.user_classes == ["Reader"]
    assert info.shape_classes == []


def test_check_finds_a_locustfiles_own_shape(tmp_path: Path) -> None:
    locustfile = tmp_path / "endless.py"
    locustfile.write_text(ENDLESS_SHAPE_LOCUSTFILE)
    assert check_locustfile([locustfile]).shape_classes == ["Endless"]


@pytest.mark.parametrize(
    ("source", "words"),
    [
        ("from locust import User\ndef broken(:\n", "SyntaxError: invalid syntax"),
        ("import no_such_module_anywhere\n", "ModuleNotFoundError: No module named 'no_such_module_anywhere'"),
        ("X = 1\n", "no User class"),
    ],
    ids=["syntax error", "import error", "no user class"],
)
def test_check_of_a_locustfile_that_cannot_load_raises_with_the_reason(tmp_path: Path, source: str, words: str) -> None:
    locustfile = tmp_path / "scenario.py"
    locustfile.write_text(source)
    with pytest.raises(LoadError) as raised:
        check_locustfile(locustfile)
    assert words in str(raised.value)
    assert str(locustfile) in str(raised.value)
