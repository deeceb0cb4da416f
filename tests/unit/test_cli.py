"""Usage errors end with a message and exit code 2, before anything starts."""

from __future__ import annotations

import pytest

from stackprobe.cli import EXIT_USAGE, main


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
