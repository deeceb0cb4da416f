"""Usage errors end with a message and exit code 2, before anything starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from stackprobe.cli import EXIT_USAGE, build_parser, main, spec_from_args


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "--memory", "lots"], "not a size"),
        (["run", "--memory", "1m"], "minimum of 6 MiB"),
        (["run", "--duration", "soon"], "not a duration"),
        (["run", "--compose-file", "/no/such/compose.yml"], "compose file not found"),
        (["run", "--url", "http://192.168.1.10:5000"], "127.0.0.1"),
        (["run", "--users", "0"], "--users"),
    ],
)
def test_usage_error_exits_2_with_a_message(args: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(args) == EXIT_USAGE
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def test_unknown_shape_is_refused_by_the_parser(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--shape", "zigzag"])
    assert exit_info.value.code == EXIT_USAGE
    assert "invalid choice" in capsys.readouterr().err


def test_help_of_run_prints_the_default_slo(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--help"])
    assert exit_info.value.code == 0
    assert "p95<200ms,errors<1%" in capsys.readouterr().out


def test_help_documents_every_exit_code(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    out = capsys.readouterr().out
    for line in ("0    pass", "1    fail", "2    usage", "3    inconclusive", "130  interrupted", "143 terminated"):
        assert line in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "--url", "notaurl"], "is not a URL"),
        (["run", "--rate", "10", "--shape", "spike"], "do not go together"),
        (["run", "--rate", "1e9"], "--rate 1e+09 would take a pool of 1,000,000,000 users"),
        (["run", "--out", "/proc/stackprobe-cannot"], "cannot write reports there"),
    ],
)
def test_more_usage_errors_exit_2_before_anything_starts(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(args) == EXIT_USAGE
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "--rate", "0"], "argument --rate: must be a finite number above 0, not '0'"),
        (["run", "--rate", "nan"], "argument --rate: must be a finite number above 0, not 'nan'"),
        (["run", "--rate", "inf"], "argument --rate: must be a finite number above 0, not 'inf'"),
        (["run", "--spawn-rate", "-1"], "argument --spawn-rate/-r: must be a finite number above 0, not '-1'"),
        (["run", "--cpus", "nan"], "argument --cpus: must be a finite number above 0, not 'nan'"),
        (["sweep", "--memory", "64m,128m", "--rate", "inf"], "argument --rate: must be a finite number above 0"),
        (["run", "--rate", "fast"], "argument --rate: not a number: 'fast'"),
    ],
)
def test_numbers_that_are_not_finite_and_above_0_are_refused_by_the_parser(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code == EXIT_USAGE
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def test_read_each_write_leaves_the_listing_aside_in_the_spec() -> None:
    parse = build_parser().parse_args
    assert not spec_from_args(parse(["run", "--compose-file", "docker-compose.yml"])).read_each_write
    assert spec_from_args(parse(["run", "--compose-file", "docker-compose.yml", "--read-each-write"])).read_each_write


def test_a_compose_file_that_is_a_directory_is_named_as_such(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", "--compose-file", str(tmp_path)]) == EXIT_USAGE
    assert "is a directory, not a compose file" in capsys.readouterr().err


def test_rate_makes_the_users_a_pool_started_at_once() -> None:
    spec = spec_from_args(build_parser().parse_args(["run", "--rate", "150", "--compose-file", "docker-compose.yml"]))
    assert (spec.rate, spec.users, spec.spawn_rate) == (150.0, 150, 150.0)
