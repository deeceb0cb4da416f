"""Locust's distributed mode as stackprobe drives it: command lines, flags, the per-worker merge and verdict."""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import jsonschema
import pytest
from rich.console import Console

from stackprobe import cli
from stackprobe.load import (
    LISTENER,
    LOCAL_WORKERS_WAIT_S,
    REMOTE_WORKERS_WAIT_S,
    LoadPlan,
    LoadResult,
    WorkerCpu,
    busiest_stretch_percent,
    distributed_section,
    locustfile_option,
)
from stackprobe.report import Report, judge
from stackprobe.report.console import render_console
from stackprobe.report.model import Cost, Distributed, Limits, Load, LoadWorker, Requests, Writes
from stackprobe.report.page import html_page
from stackprobe.spec import UsageError, parse_master_bind

HERE = socket.gethostname()
SCHEMA = json.loads((Path(__file__).parents[2] / "stackprobe" / "report" / "schema.json").read_text())


def _plan(tmp_path: Path, **changes: object) -> LoadPlan:
    locustfile = tmp_path / "scenario.py"
    locustfile.write_text("")
    plan = LoadPlan(
        locustfile=locustfile,
        host="http://127.0.0.1:9",
        users=10,
        spawn_rate=10,
        duration_s=15,
        shape="",
        slo="",
        out=tmp_path / "out",
    )
    return replace(plan, **changes)


def _option(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


# Command lines


def test_a_plan_with_workers_runs_a_headless_master_that_waits_for_them(tmp_path: Path) -> None:
    plan = _plan(tmp_path, workers=2, master_bind=("127.0.0.1", 47001))
    argv = plan.argv()
    assert "--master" in argv
    assert "--headless" in argv
    assert _option(argv, "--master-bind-host") == "127.0.0.1"
    assert _option(argv, "--master-bind-port") == "47001"
    assert _option(argv, "--expect-workers") == "2"
    assert _option(argv, "--expect-workers-max-wait") == str(LOCAL_WORKERS_WAIT_S)
    # The load is the master's to hand out: users, rate and run time stay on its command line.
    assert _option(argv, "--users") == "10"
    assert _option(argv, "--run-time") == "15s"


def test_a_worker_loads_the_same_files_and_connects_to_the_master(tmp_path: Path) -> None:
    plan = _plan(tmp_path, workers=2, master_bind=("127.0.0.1", 47001))
    worker = plan.worker_argv()
    assert worker[:3] == [sys.executable, "-m", "locust"]
    assert _option(worker, "--locustfile") == _option(plan.argv(), "--locustfile")
    assert _option(worker, "--locustfile").endswith(str(LISTENER))
    assert "--worker" in worker
    assert _option(worker, "--master-host") == "127.0.0.1"
    assert _option(worker, "--master-port") == "47001"
    # Host, users and run time come from the master.
    assert not {"--host", "--users", "--run-time", "--headless"} & set(worker)


@pytest.mark.parametrize("bind_host", ["0.0.0.0", "*", "::"])
def test_workers_started_here_reach_a_master_bound_to_every_interface_on_loopback(
    tmp_path: Path, bind_host: str
) -> None:
    plan = _plan(tmp_path, workers=1, master_bind=(bind_host, 5557), expect_workers=3)
    assert _option(plan.worker_argv(), "--master-host") == "127.0.0.1"
    assert _option(plan.argv(), "--master-bind-host") == bind_host
    assert _option(plan.argv(), "--expect-workers") == "3"
    assert _option(plan.argv(), "--expect-workers-max-wait") == str(REMOTE_WORKERS_WAIT_S)
    assert plan.remote_workers == 2


def test_the_masters_port_is_chosen_free_when_the_run_starts_and_kept_when_given(tmp_path: Path) -> None:
    unset = _plan(tmp_path, workers=2)
    with pytest.raises(ValueError, match="with_master_port"):
        unset.argv()
    chosen = unset.with_master_port()
    assert chosen.master_bind is not None
    host, port = chosen.master_bind
    assert host == "127.0.0.1"
    assert port is not None
    assert chosen.master_address() == f"127.0.0.1:{port}"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", port))  # nothing holds it
    given = _plan(tmp_path, workers=2, master_bind=("10.0.0.5", 6000))
    assert given.with_master_port() == given


def test_a_single_process_plan_has_no_master_options_and_no_worker(tmp_path: Path) -> None:
    plan = _plan(tmp_path)
    assert not plan.distributed
    assert plan.with_master_port() == plan
    assert "--master" not in plan.argv()
    assert plan.master_address() is None
    with pytest.raises(ValueError, match="distributed"):
        plan.worker_argv()


def test_each_worker_started_here_has_its_own_log_among_the_outputs(tmp_path: Path) -> None:
    plan = _plan(tmp_path, workers=3)
    assert plan.worker_log(1) != plan.worker_log(3)
    assert {plan.worker_log(n) for n in (1, 2, 3)} <= set(plan.outputs())


def test_the_command_a_remote_worker_runs_names_the_files_and_the_master(tmp_path: Path) -> None:
    plan = _plan(tmp_path, master_bind=("10.0.0.5", 5557), expect_workers=2)
    assert plan.remote_worker_command("/opt/stackprobe/locust_listener.py") == (
        f"locust -f {locustfile_option([plan.locustfile, Path('/opt/stackprobe/locust_listener.py')])} "
        "--worker --master-host 10.0.0.5 --master-port 5557"
    )
    anywhere = _plan(tmp_path, master_bind=("0.0.0.0", 5557), expect_workers=2)
    assert "--master-host <this machine's address>" in anywhere.remote_worker_command()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"workers": -1}, "0 or more"),
        ({"workers": 2, "expect_workers": 1}, "under the 2 workers"),
        ({"expect_workers": 2}, "master_bind"),
        ({"master_bind": ("0.0.0.0", 5557)}, "needs workers"),
    ],
)
def test_a_plan_refuses_workers_that_cannot_add_up(tmp_path: Path, changes: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _plan(tmp_path, **changes)


# Flags


def test_master_bind_is_parsed_as_host_and_port() -> None:
    assert parse_master_bind("0.0.0.0:5557") == ("0.0.0.0", 5557)
    assert parse_master_bind("loadgen.example:6000") == ("loadgen.example", 6000)
    assert parse_master_bind("[::]:5557") == ("::", 5557)


@pytest.mark.parametrize("text", ["5557", "host:", ":5557", "host:0", "host:70000", "a b:1"])
def test_a_master_bind_that_is_not_host_port_is_a_usage_error(text: str) -> None:
    with pytest.raises(UsageError, match="HOST:PORT"):
        parse_master_bind(text)


def _args(tmp_path: Path, *flags: str) -> list[str]:
    compose = tmp_path / "compose.yaml"
    compose.write_text("services: {}\n")
    (tmp_path / "loadtests").mkdir(exist_ok=True)
    return ["run", "--compose-file", str(compose), *flags]


def test_worker_flags_reach_the_run_spec(tmp_path: Path) -> None:
    parser = cli.build_parser()
    args = parser.parse_args(
        _args(tmp_path, "--workers", "2", "--master-bind", "0.0.0.0:5557", "--expect-workers", "4")
    )
    spec = cli.spec_from_args(args)
    assert (spec.workers, spec.master_bind, spec.expect_workers) == (2, ("0.0.0.0", 5557), 4)
    default = cli.spec_from_args(parser.parse_args(_args(tmp_path)))
    assert (default.workers, default.master_bind, default.expect_workers) == (0, None, None)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--workers", "-1"], "--workers must be 0 or more"),
        (["--expect-workers", "2"], "--expect-workers needs --master-bind"),
        (["--master-bind", "0.0.0.0:5557"], "--master-bind needs --expect-workers"),
        (["--workers", "3", "--master-bind", "0.0.0.0:5557", "--expect-workers", "2"], "at least --workers 3"),
    ],
)
def test_worker_flags_that_do_not_add_up_exit_2_with_a_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str], message: str
) -> None:
    assert cli.main(_args(tmp_path, *flags)) == cli.EXIT_USAGE
    assert message in capsys.readouterr().err


# The busiest stretch of a worker's CPU


def test_the_busiest_stretch_is_the_highest_share_over_ten_seconds() -> None:
    # 1 s samples: idle for 5 s, then a full core for 12 s, then half a core for 5 s.
    samples, cpu = [], 0.0
    for second in range(23):
        samples.append((float(second), cpu))
        cpu += 0.0 if second < 5 else 1.0 if second < 17 else 0.5
    assert busiest_stretch_percent(samples) == pytest.approx(100.0)
    assert busiest_stretch_percent(samples[:8]) == pytest.approx(100.0 * 2 / 7)  # shorter than 10 s: its life
    assert busiest_stretch_percent(samples[:1]) == 0.0


def test_the_busiest_stretch_is_not_diluted_by_a_long_idle_life() -> None:
    samples = [(float(t), 0.0) for t in range(60)] + [(60.0 + t, 0.95 * t) for t in range(11)]
    assert busiest_stretch_percent(samples) == pytest.approx(95.0)
    assert 100.0 * samples[-1][1] / samples[-1][0] < 15  # the mean over its life would hide it


# Merging what the master heard with what was measured here


def _result(**changes: object) -> LoadResult:
    result = LoadResult(
        exit_code=0,
        wall_s=20.0,
        cpu_seconds=30.0,
        output_tail="",
        master="127.0.0.1:47001",
        workers=(
            WorkerCpu(pid=101, cpu_seconds=12.0, wall_s=20.0, busiest_percent=70.0, exit_code=0),
            WorkerCpu(pid=102, cpu_seconds=16.0, wall_s=20.0, busiest_percent=95.0, exit_code=0),
        ),
        worker_reports=(
            _report("a", HERE, 101, 500),
            _report("b", HERE, 102, 700, cpu_usage_max=88.0),
            _report("c", "elsewhere", 101, 300, cpu_usage_max=40.0),
        ),
    )
    return replace(result, **changes)


def _report(ident: str, host: str | None, pid: int | None, requests: int, **changes: object) -> dict[str, object]:
    report = {
        "id": ident,
        "host": host,
        "pid": pid,
        "requests": requests,
        "failures": 1,
        "listener": host is not None,
        "cpu_usage_max": None,
        "cpu_warning": False,
    }
    return {**report, **changes}


def test_workers_started_here_get_their_measured_cpu_and_others_only_locusts(tmp_path: Path) -> None:
    plan = _plan(tmp_path, workers=2, master_bind=("0.0.0.0", 47001), expect_workers=3)
    section = distributed_section(plan, _result())
    assert section is not None
    by_id = {worker["id"]: worker for worker in section["workers"]}
    assert by_id["a"]["local"] is True
    assert by_id["a"]["cpu_percent"] == 60.0
    assert by_id["a"]["cpu_busiest_percent"] == 70.0
    assert by_id["a"]["saturated"] is False
    # Same pid on another host: not one of ours.
    assert by_id["c"]["local"] is False
    assert by_id["c"]["cpu_percent"] is None
    assert by_id["c"]["locust_cpu_percent_max"] == 40.0
    # Saturated by stackprobe's measure, though Locust's heartbeats said 88 %.
    assert by_id["b"]["saturated"] is True
    assert section["generator_bound"] is True
    assert section["master_cpu_percent"] == 10.0  # (30 - 12 - 16) s over 20 s
    assert (section["workers_started"], section["workers_expected"], section["master"]) == (2, 3, "127.0.0.1:47001")
    assert sum(worker["requests"] for worker in section["workers"]) == 1500
    # It is report.json's load.distributed, as the model and the schema have it.
    data = Report().to_dict()
    data["load"]["distributed"] = section
    jsonschema.validate(Report.from_dict(data).to_dict(), SCHEMA)


def test_a_worker_is_saturated_by_locusts_own_warning_or_heartbeats_too(tmp_path: Path) -> None:
    plan = _plan(tmp_path, master_bind=("0.0.0.0", 47001), expect_workers=2)
    reports = (_report("x", "far", 7, 10, cpu_warning=True), _report("y", "far", 8, 10, cpu_usage_max=93.5))
    section = distributed_section(plan, _result(workers=(), worker_reports=reports, cpu_seconds=1.0))
    assert section is not None
    assert [worker["saturated"] for worker in section["workers"]] == [True, True]


def test_a_single_process_run_has_no_distributed_section(tmp_path: Path) -> None:
    assert distributed_section(_plan(tmp_path), _result(workers=(), worker_reports=())) is None


# The verdict


def _distributed_report(*workers: LoadWorker, master_cpu: float = 5.0) -> Report:
    return Report(
        limits=Limits(memory_requested_bytes=256 << 20, memory_applied_bytes=256 << 20, applied_matches=True),
        requests=Requests(total=1000, failures=0, rps=50.0),
        writes=Writes(applicable=True, acknowledged=300, verified=300, lost=0, unverified=0),
        # Two busy workers add up to more than one core: that alone is not saturation.
        cost=Cost(load_generator_cpu_percent=150.0),
        load=Load(
            distributed=Distributed(
                master="127.0.0.1:47001",
                workers_started=len(workers),
                workers_expected=len(workers),
                master_cpu_percent=master_cpu,
                workers=list(workers),
            )
        ),
    )


def _worker(ident: str, **changes: object) -> LoadWorker:
    worker = LoadWorker(id=ident, host=HERE, pid=1, local=True, requests=500, listener=True, cpu_percent=70.0)
    return replace(worker, **changes)


def test_workers_each_under_a_core_pass_whatever_their_sum() -> None:
    assert judge(_distributed_report(_worker("a"), _worker("b"))) == ("pass", [])


def test_a_saturated_worker_makes_the_run_inconclusive_and_says_which() -> None:
    report = _distributed_report(_worker("a"), _worker("b", cpu_busiest_percent=97.0, saturated=True))
    verdict, reasons = judge(report)
    assert verdict == "inconclusive"
    assert reasons == [
        "inconclusive: Locust worker b was saturated (97 % of a core over its busiest 10 s (measured)): the "
        "generator, not the service, may have set the pace; add workers"
    ]


def test_a_busy_master_a_missing_listener_a_missing_worker_and_remote_writes_are_each_a_blind_spot() -> None:
    report = _distributed_report(_worker("a", listener=False, host=None), _worker("b", local=False), master_cpu=96.0)
    report.load.distributed.workers_expected = 3  # type: ignore[union-attr]
    verdict, reasons = judge(report)
    assert verdict == "inconclusive"
    starts = [
        "inconclusive: Locust worker a ran without stackprobe's listener: its 500 requests",
        "inconclusive: Locust's master used 96 % of a core",
        "inconclusive: only 2 of the 3 Locust workers expected reported to the master",
        "inconclusive: 1 Locust worker ran elsewhere: acknowledged writes made there",
    ]
    assert len(reasons) == len(starts)
    for reason, start in zip(reasons, starts, strict=True):
        assert reason.startswith(start), reason


def test_a_worker_lost_during_the_run_makes_it_inconclusive() -> None:
    for lost in (_worker("b", missing=True), _worker("b", exit_code=-9)):
        verdict, reasons = judge(_distributed_report(_worker("a", exit_code=0), lost))
        assert verdict == "inconclusive"
        assert len(reasons) == 1
        assert reasons[0].startswith("inconclusive: Locust worker b was lost during the run (")


# What a person reads


def test_the_console_and_the_page_show_each_worker_and_whether_the_generator_was_the_limit() -> None:
    report = _distributed_report(_worker("a"), _worker("b", cpu_busiest_percent=97.0, saturated=True))
    report.load.distributed.generator_bound = True  # type: ignore[union-attr]
    buffer = io.StringIO()
    render_console(report, Console(file=buffer, width=200, color_system=None))
    text = buffer.getvalue()
    assert "worker a" in text
    assert "worker b" in text
    assert "the generator was the bottleneck" in text
    page = html_page(report)
    assert 'id="generator"' in page
    assert page.count("<td>this machine</td>") == 2
    assert "stats_total" in page  # the requests' source is named


# The listener's merge on the master, in Locust's own process


_MERGE_SCRIPT = """
import importlib.util, json, sys, types
spec = importlib.util.spec_from_file_location("listener", sys.argv[1])
listener = importlib.util.module_from_spec(spec)
spec.loader.exec_module(listener)
recorder = listener.Recorder(types.SimpleNamespace(runner=None), None, None)
for worker, (requests, failures, times) in {"w1": (3, 1, [4, 9, 4]), "w2": (2, 0, [120, 4])}.items():
    window = listener.Window()
    for index, ms in enumerate(times):
        window.log(ms, index < failures)
    report = {"pid": 10, "host": "h", "windows": {"100": window.serialize()}, "failures": {}, "exceptions": {}}
    data = {"stats_total": {"num_requests": requests, "num_failures": failures}, "stackprobe_listener": report}
    recorder.on_worker_report(worker, data)
recorder.on_worker_report("w3", {"stats_total": {"num_requests": 4, "num_failures": 0}})
line = recorder.windows[100].line(100, 5)
print(json.dumps({"line": line, "workers": recorder.worker_figures}))
"""


def test_the_master_adds_up_each_workers_windows_and_counts_each_workers_reports() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STACKPROBE_")}
    done = subprocess.run(
        [sys.executable, "-c", _MERGE_SCRIPT, str(LISTENER)], capture_output=True, text=True, env=env, check=True
    )
    merged = json.loads(done.stdout.splitlines()[-1])
    line, workers = merged["line"], merged["workers"]
    assert (line["num_requests"], line["num_failures"], line["max_response_time"]) == (5, 1, 120)
    assert line["response_times"] == {"4": 3, "9": 1, "120": 1}
    assert line["total_response_time"] == 141
    assert line["p50"] == 4
    assert {k: (v["requests"], v["failures"], v["listener"]) for k, v in workers.items()} == {
        "w1": (3, 1, True),
        "w2": (2, 0, True),
        "w3": (4, 0, False),
    }
