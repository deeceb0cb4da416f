"""The CI examples users copy (examples/ci/): valid YAML, and every stackprobe command in them parses."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from stackprobe import cli

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "ci"
GITHUB = EXAMPLES / "github-actions.yml"
GITLAB = EXAMPLES / "gitlab-ci.yml"


def _scripts(path: Path) -> list[str]:
    """Return every shell script of a workflow: GitHub steps' `run`, GitLab jobs' `script` lines."""
    data = yaml.safe_load(path.read_text())
    scripts: list[str] = []
    if path == GITHUB:
        for job in data["jobs"].values():
            scripts.extend(step["run"] for step in job["steps"] if "run" in step)
    else:
        for job in data.values():
            if isinstance(job, dict) and "script" in job:
                scripts.extend(job["script"])
    return scripts


def _stackprobe_commands(path: Path) -> list[list[str]]:
    """Return each stackprobe command line of a workflow, split as the shell would (variables left as named)."""
    commands = []
    for script in _scripts(path):
        for line in script.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            if words and words[0].endswith("stackprobe"):
                commands.append(words)
    return commands


@pytest.mark.parametrize("path", [GITHUB, GITLAB], ids=["github", "gitlab"])
def test_the_example_is_valid_yaml_with_a_job(path: Path) -> None:
    data: dict[Any, Any] = yaml.safe_load(path.read_text())
    jobs = data["jobs"] if path == GITHUB else {k: v for k, v in data.items() if isinstance(v, dict)}
    assert jobs


@pytest.mark.parametrize("path", [GITHUB, GITLAB], ids=["github", "gitlab"])
def test_the_examples_stackprobe_commands_parse_with_the_real_parser(path: Path) -> None:
    commands = _stackprobe_commands(path)
    # With a base run and without (the first run has none yet).
    assert len(commands) == 2
    gated = [cli.build_parser().parse_args(words[1:]) for words in commands]
    assert [args.command for args in gated] == ["run", "run"]
    with_base, first = gated
    assert with_base.baseline == Path("baseline/report.json")
    assert with_base.max_regression == "p95:10%,peak_memory:5%,rps:-10%"
    assert first.baseline is None
    for args in gated:
        assert args.slo == "p95<200ms,errors<1%"
        assert args.junit == Path("$OUT/junit.xml")
        # Both runs are made alike, or the gate would refuse the base as made differently.
        assert (args.memory, args.users, args.duration) == (gated[0].memory, gated[0].users, gated[0].duration)


@pytest.mark.parametrize("path", [GITHUB, GITLAB], ids=["github", "gitlab"])
def test_the_example_sets_up_the_engine_with_this_repositorys_own_commands(path: Path) -> None:
    lines = [line.strip() for script in _scripts(path) for line in script.splitlines()]
    assert "bash provision/provision.sh" in lines
    assert "make venv" in lines
    assert (ROOT / "provision" / "provision.sh").is_file()
    assert re.search(r"^venv:", (ROOT / "Makefile").read_text(), re.MULTILINE)


def test_the_github_example_uploads_the_page_and_the_junit_file() -> None:
    steps = yaml.safe_load(GITHUB.read_text())["jobs"]["probe"]["steps"]
    (upload,) = [s for s in steps if s.get("uses", "").startswith("actions/upload-artifact@")]
    assert upload["if"] == "always()"
    paths = upload["with"]["path"].splitlines()
    assert paths == ["${{ env.OUT }}/report.html", "${{ env.OUT }}/report.json", "${{ env.OUT }}/junit.xml"]


def test_the_gitlab_example_hands_the_junit_file_to_gitlab_and_keeps_the_page() -> None:
    job = yaml.safe_load(GITLAB.read_text())["stackprobe"]
    artifacts = job["artifacts"]
    assert artifacts["when"] == "always"
    assert artifacts["reports"]["junit"] == f"{job['variables']['OUT']}/junit.xml"
    assert f"{job['variables']['OUT']}/report.html" in artifacts["paths"]
