"""What the README's first hour tells a newcomer holds: the commands it names exist where it says."""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

from tests.conftest import ROOT

README = (ROOT / "README.md").read_text()


def test_the_environment_the_tests_run_in_has_stackprobe_and_locust_beside_its_python() -> None:
    # `make test` runs .venv/bin/pytest: the README's .venv/bin/stackprobe and .venv/bin/locust are these.
    bin_dir = Path(sys.executable).parent
    for command in ("stackprobe", "locust"):
        assert (bin_dir / command).is_file(), f"{command} not in {bin_dir}"
        assert f".venv/bin/{command}" in README


def test_the_package_installs_the_stackprobe_command() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["project"]["scripts"] == {"stackprobe": "stackprobe.cli:main"}


def test_the_readme_says_how_to_install_into_ones_own_project() -> None:
    assert re.search(r"^pip install /path/to/stackprobe\b", README, re.MULTILINE)
    assert re.search(r'^pip install "git\+https://\S+"', README, re.MULTILINE)
    assert re.search(r"^pipx install /path/to/stackprobe\b", README, re.MULTILINE)


def test_the_readme_names_the_port_variable_the_compose_file_reads() -> None:
    assert "APP_PORT=5050 make up" in README
    assert "${APP_PORT:-5000}" in (ROOT / "docker-compose.yml").read_text()
