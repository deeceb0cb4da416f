"""The fault schedule: its grammar, its TOML file, and the checks made before anything starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from stackprobe.cli import EXIT_USAGE, build_parser, main, spec_from_args
from stackprobe.faults import Fault, FaultSchedule, parse_schedule
from stackprobe.report.model import Event, Report
from stackprobe.spec import UsageError

ROOT = Path(__file__).resolve().parents[2]
SERVICES = {"app": {}, "db": {}}


def test_the_issues_schedule_parses_into_one_fault_per_term_in_time_order() -> None:
    schedule = parse_schedule(
        ["kill app@20s; restart db@40s; pause db@50s for 5s; stop app@70s for 10s; disconnect db@90s for 5s"]
    )
    assert [(f.action, f.service, f.at_s, f.for_s) for f in schedule.faults] == [
        ("kill", "app", 20, None),
        ("restart", "db", 40, None),
        ("pause", "db", 50, 5),
        ("stop", "app", 70, 10),
        ("disconnect", "db", 90, 5),
    ]
    assert schedule.signal == "SIGKILL"
    assert schedule.recovery_s == 10


def test_a_squeeze_takes_its_size_in_docker_units() -> None:
    (fault,) = parse_schedule(["squeeze app@30s to 64m"]).faults
    assert (fault.action, fault.size_bytes, fault.for_s) == ("squeeze", 64 * 2**20, None)


def test_repeated_flags_and_a_trailing_semicolon_add_up() -> None:
    schedule = parse_schedule(["kill app@20s;", "restart db@1m30s"])
    assert [(f.action, f.at_s) for f in schedule.faults] == [("kill", 20), ("restart", 90)]


def test_a_closing_term_gives_its_open_fault_a_duration() -> None:
    schedule = parse_schedule(["pause db@10s; squeeze app@12s to 64m; unpause db@14.5s; release app@20s"])
    assert [(f.action, f.at_s, f.for_s) for f in schedule.faults] == [("pause", 10, 4.5), ("squeeze", 12, 8)]


def test_a_lasting_fault_without_an_end_lasts_to_the_load_end() -> None:
    (fault,) = parse_schedule(["stop app@10s"]).faults
    assert fault.end_s(60) == 60


def test_signal_and_recovery_are_read_and_named_as_the_engine_takes_them() -> None:
    schedule = parse_schedule(["kill app@5s"], signal="term", recovery="30s")
    assert (schedule.signal, schedule.recovery_s) == ("SIGTERM", 30)
    assert parse_schedule(["kill app@5s"], signal="9").signal == "SIGKILL"


@pytest.mark.parametrize(
    ("terms", "message"),
    [
        (["kil app@20s"], "unknown action 'kil'"),
        (["kill app"], "expected ACTION SERVICE@TIME"),
        (["kill app@soon"], "the time is not a duration"),
        (["pause db@10s for ever"], "the 'for' is not a duration"),
        (["pause db@10s for 0s"], "'for' must be above 0 s"),
        (["kill app@10s for 5s"], "kill takes no 'for'"),
        (["restart db@10s for 5s"], "restart takes no 'for'"),
        (["squeeze app@10s"], "squeeze needs 'to SIZE'"),
        (["squeeze app@10s to lots"], "not a size"),
        (["squeeze app@10s to 1m"], "minimum of 6 MiB"),
        (["pause db@10s to 64m"], "only squeeze takes 'to SIZE'"),
        (["pause db@10s for 2s for 3s"], "at most one 'for'"),
        (["pause db@10s for"], "needs a value"),
        (["kill app@10s;; kill db@20s"], "an empty term"),
        (["unpause db@10s"], "db has no open pause"),
        (["pause db@10s; start db@12s"], "db has no open stop"),
    ],
)
def test_a_bad_term_is_a_usage_error_naming_it(terms: list[str], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_schedule(terms)


def test_signal_is_refused_without_a_kill_and_when_not_a_signal() -> None:
    with pytest.raises(UsageError, match="no kill"):
        parse_schedule(["pause db@1s for 1s"], signal="SIGTERM")
    with pytest.raises(UsageError, match="not a signal"):
        parse_schedule(["kill app@1s"], signal="SIGNOPE")


def test_a_recovery_allowance_of_zero_is_refused() -> None:
    with pytest.raises(UsageError, match="above 0 s"):
        parse_schedule(["kill app@1s"], recovery="0s")


def test_a_recovery_allowance_that_is_no_duration_names_the_flag() -> None:
    with pytest.raises(UsageError, match=r"^--recovery: not a duration: 'abc'"):
        parse_schedule(["kill app@1s"], recovery="abc")


@pytest.mark.parametrize(
    ("terms", "message"),
    [
        (["kill app@60s"], "starts at 60 s, when the load .60 s. has ended"),
        (["pause db@55s for 10s"], "ends at 65 s, after the load"),
        (["pause db@10s for 10s; restart db@15s"], "overlap on service 'db'"),
        (["kill app@20s; kill app@20s"], "overlap on service 'app'"),
        (["stop app@10s; kill app@50s"], "overlap on service 'app'"),
    ],
)
def test_a_schedule_that_does_not_fit_the_load_is_a_usage_error(terms: list[str], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_schedule(terms).check_fits(60)


def test_faults_of_different_services_may_overlap() -> None:
    parse_schedule(["pause db@10s for 10s; kill app@15s"]).check_fits(60)


def test_a_fault_on_a_service_the_compose_file_lacks_names_the_services_it_has() -> None:
    with pytest.raises(UsageError, match="no service 'web' in the compose file; it has: app, db"):
        parse_schedule(["kill web@10s"]).check_services(SERVICES, {"app": 128 * 2**20, "db": None})


def test_a_squeeze_needs_a_limit_to_restore_and_a_size_below_it() -> None:
    with pytest.raises(UsageError, match=r"db has no memory limit.*--memory db=SIZE"):
        parse_schedule(["squeeze db@10s to 64m"]).check_services(SERVICES, {"app": None, "db": None})
    with pytest.raises(UsageError, match="not below app's limit"):
        parse_schedule(["squeeze app@10s to 128m"]).check_services(SERVICES, {"app": 128 * 2**20})
    parse_schedule(["squeeze app@10s to 64m"]).check_services(SERVICES, {"app": 128 * 2**20})


def test_a_schedule_file_holds_the_same_faults_as_tables(tmp_path: Path) -> None:
    path = tmp_path / "faults.toml"
    path.write_text(
        '[[fault]]\naction = "kill"\nservice = "app"\nat = 20\n\n'
        '[[fault]]\naction = "pause"\nservice = "db"\nat = "50s"\nfor = "5s"\n\n'
        '[[fault]]\naction = "squeeze"\nservice = "app"\nat = "30s"\nto = "64m"\nfor = 4\n'
    )
    schedule = parse_schedule(["restart db@40s"], [path])
    assert [(f.action, f.service, f.at_s, f.for_s, f.size_bytes) for f in schedule.faults] == [
        ("kill", "app", 20, None, None),
        ("squeeze", "app", 30, 4, 64 * 2**20),
        ("restart", "db", 40, None, None),
        ("pause", "db", 50, 5, None),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[[fault]]\naction = 'kill'\nservice = 'app'\n", "'at' is missing"),
        ("[[fault]]\naction = 'kill'\nservice = 'app'\nat = 5\nwhen = 3\n", "unknown keys \\['when'\\]"),
        ("schedule = 'kill app@5s'\n", "unknown keys \\['schedule'\\]"),
        ("[[fault]\n", "not TOML"),
        ("[[fault]]\naction = 'kill'\nservice = 'app'\nat = true\n", "must be a string or a number"),
    ],
)
def test_a_bad_schedule_file_names_the_file_and_the_problem(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "faults.toml"
    path.write_text(text)
    with pytest.raises(UsageError, match=message):
        parse_schedule([], [path])


def test_a_missing_schedule_file_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="cannot read it"):
        parse_schedule([], [tmp_path / "none.toml"])


def _run_args(*extra: str) -> list[str]:
    return ["run", "--compose-file", str(ROOT / "docker-compose.yml"), "--duration", "30s", *extra]


def test_run_flags_put_the_schedule_in_the_run_spec() -> None:
    args = build_parser().parse_args(_run_args("--fault", "kill app@5s", "--signal", "TERM", "--recovery", "4s"))
    spec = spec_from_args(args)
    assert spec.faults == FaultSchedule(
        faults=(Fault(action="kill", service="app", at_s=5, text="kill app@5s"),), signal="SIGTERM", recovery_s=4
    )


def test_a_run_without_faults_has_no_schedule() -> None:
    assert spec_from_args(build_parser().parse_args(_run_args())).faults is None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (_run_args("--fault", "kill app@30s"), "starts at 30 s, when the load (30 s) has ended"),
        (_run_args("--fault", "explode app@3s"), "unknown action 'explode'"),
        (_run_args("--recovery", "5s"), "--recovery goes with a fault schedule"),
        (_run_args("--signal", "TERM"), "--signal goes with a fault schedule"),
    ],
)
def test_a_bad_schedule_exits_2_before_anything_starts(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(args) == EXIT_USAGE
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


@pytest.mark.parametrize("command", ["sweep", "fit", "grow"])
def test_loops_of_runs_take_the_fault_flags(command: str) -> None:
    first = {"sweep": ["--memory", "64m,128m"], "fit": ["--memory", "64m..128m"], "grow": ["--rows", "1k,2k"]}
    args = build_parser().parse_args([command, *first[command], "--fault", "pause db@2s for 1s", "--recovery", "3s"])
    assert (args.fault, args.recovery) == (["pause db@2s for 1s"], "3s")


def test_a_squeeze_outcome_names_the_oom_kill_under_it() -> None:
    from stackprobe.faults import FaultOutcome, fault_records

    schedule = parse_schedule(["squeeze app@5s to 64m for 5s"])
    outcome = FaultOutcome(fault=schedule.faults[0], started_t=5.0, ended_t=10.0, done=True)
    report = Report(events=[Event(t=7.5, action="oom", container="p-app-1", service="app")])
    (record,) = fault_records([outcome], schedule, report)
    assert (record.kernel, record.done, record.for_) == ("oom_kill", True, 5)
    assert "t=7.5 s" in (record.kernel_detail or "")
    quiet = fault_records([outcome], schedule, Report())[0]
    assert quiet.kernel == "reclaim"
    refused = FaultOutcome(fault=schedule.faults[0], started_t=5.0, ended_t=5.1, error="device busy", refused=True)
    assert fault_records([refused], schedule, Report())[0].kernel == "refused"


def test_every_run_of_a_sweep_gets_the_schedule() -> None:
    from stackprobe.sweep import RunLoop

    args = build_parser().parse_args(
        [
            "sweep",
            "--memory",
            "64m,128m",
            "--compose-file",
            str(ROOT / "docker-compose.yml"),
            "--duration",
            "30s",
            "--fault",
            "pause db@2s for 1s",
            "--recovery",
            "3s",
        ]
    )
    spec = RunLoop.base_spec(args)
    assert spec.faults is not None
    assert [(f.action, f.service, f.for_s) for f in spec.faults.faults] == [("pause", "db", 1.0)]
    assert spec.faults.recovery_s == 3
