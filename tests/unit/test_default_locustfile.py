"""Which locustfile `stackprobe run` loads without --locustfile: ./locustfile.py as Locust picks it, else loadtests/."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from stackprobe import probe
from stackprobe.cli import EXIT_PASS, EXIT_USAGE, build_parser, main, spec_from_args
from stackprobe.spec import RunSpec

COMPOSE = "services:\n  app:\n    image: example\n"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A user's project folder, made the current folder: a compose file and a loadtests/ folder."""
    (tmp_path / "compose.yaml").write_text(COMPOSE)
    (tmp_path / "loadtests").mkdir()
    (tmp_path / "loadtests" / "scenario.py").write_text("")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _spec(*args: str) -> RunSpec:
    return spec_from_args(build_parser().parse_args(["run", *args]))


def test_a_locustfile_py_in_the_current_folder_is_used_as_locust_uses_it(project: Path) -> None:
    (project / "locustfile.py").write_text("")
    assert _spec().locustfile == project / "locustfile.py"


def test_without_a_locustfile_py_here_the_loadtests_folder_beside_the_compose_file_is_used(project: Path) -> None:
    assert _spec().locustfile == project / "loadtests"


def test_the_locustfile_flag_wins_over_a_locustfile_py_in_the_current_folder(project: Path) -> None:
    (project / "locustfile.py").write_text("")
    chosen = project / "loadtests" / "scenario.py"
    assert _spec("--locustfile", str(chosen)).locustfile == chosen


def test_a_compose_file_elsewhere_does_not_hide_the_current_folders_locustfile(
    project: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    elsewhere = tmp_path_factory.mktemp("stack") / "docker-compose.yml"
    elsewhere.write_text(COMPOSE)
    (project / "locustfile.py").write_text("")
    assert _spec("--compose-file", str(elsewhere)).locustfile == project / "locustfile.py"


def test_with_neither_default_locustfile_the_message_names_both_places(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "loadtests" / "scenario.py").unlink()
    (project / "loadtests").rmdir()
    assert main(["run"]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "locustfile.py" in err
    assert str(project / "loadtests") in err
    assert "--locustfile" in err


@pytest.mark.parametrize(
    ("flags", "said"),
    [
        ((), "locustfile.py in the current folder, as locust picks it"),
        (("--locustfile", "loadtests"), "(--locustfile)"),
    ],
)
def test_run_says_which_locustfile_it_loads_and_why(
    project: Path,
    flags: tuple[str, ...],
    said: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (project / "locustfile.py").write_text("")
    runs: list[RunSpec] = []

    def record(spec: RunSpec, console: object, teardowns: object) -> SimpleNamespace:
        # The probe itself is not under test: only what the command says before it starts.
        runs.append(spec)
        return SimpleNamespace(verdict="pass")

    monkeypatch.setattr(probe, "run_probe", record)
    assert main(["run", *flags]) == EXIT_PASS
    out = capsys.readouterr().out
    assert f"Locustfile: {runs[0].locustfile} " in out
    assert said in out
