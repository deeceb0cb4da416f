"""The package builds without a deprecation warning, and what a build and a run leave behind is git-ignored."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from email.parser import Parser
from pathlib import Path

import pytest

from tests.conftest import ROOT

# What pip and `python -m build` ask the backend first; every warning made an error.
PREPARE_METADATA = """
import sys
from setuptools import build_meta
print(build_meta.prepare_metadata_for_build_wheel(sys.argv[1]))
"""


def _source_copy(into: Path) -> Path:
    """Copy what a build of the package reads (pyproject.toml, README, licences, the package) into a folder."""
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, into / name)
    shutil.copytree(ROOT / "stackprobe", into / "stackprobe", ignore=shutil.ignore_patterns("__pycache__"))
    return into


def test_the_build_backend_reads_pyproject_without_a_deprecation_warning(tmp_path: Path) -> None:
    source = _source_copy(tmp_path)
    out = tmp_path / "metadata"
    out.mkdir()
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", PREPARE_METADATA, str(out)],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Warning" not in done.stderr, done.stderr[-3000:]
    metadata = Parser().parsestr((out / done.stdout.split()[-1] / "METADATA").read_text())
    assert metadata["License-Expression"] == "MIT"
    assert "LICENSE" in metadata.get_all("License-File")


def test_the_build_backend_pyproject_names_takes_an_spdx_license() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    (setuptools,) = [r for r in project["build-system"]["requires"] if r.startswith("setuptools")]
    # setuptools 77 is the first to take project.license as an SPDX string with license-files (PEP 639).
    assert setuptools == "setuptools>=77"
    assert isinstance(project["project"]["license"], str)
    for pattern in project["project"]["license-files"]:
        assert list(ROOT.glob(pattern)), f"license-files {pattern!r} matches no file"


LEFT_BEHIND = [
    "reports/latest/report.json",  # make probe's --out
    "stackprobe-report/report.html",  # stackprobe run's default --out
    "build/lib/stackprobe/cli.py",  # pip wheel ., python -m build
    "dist/stackprobe-0.1.0-py3-none-any.whl",
    "stackprobe.egg-info/PKG-INFO",
    ".ruff_cache/CACHEDIR.TAG",
    ".pytest_cache/README.md",
    ".venv/bin/stackprobe",
    "stackprobe/__pycache__/cli.cpython-311.pyc",
    ".env",
]
KEPT = ["stackprobe/cli.py", "tests/unit/test_packaging.py", ".env.example", "LICENSE", "README.md"]


@pytest.fixture(scope="module")
def check_ignore(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """Return which of LEFT_BEHIND and KEPT the project's .gitignore ignores, as git itself reads it."""
    if shutil.which("git") is None:
        pytest.fail("git is not installed")
    repo = tmp_path_factory.mktemp("ignore")
    subprocess.run(["git", "init", "--quiet", str(repo)], check=True, timeout=30)
    shutil.copy(ROOT / ".gitignore", repo / ".gitignore")
    done = subprocess.run(
        ["git", "-C", str(repo), "check-ignore", "--no-index", *LEFT_BEHIND, *KEPT],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode in (0, 1), done.stderr
    return done.stdout.split()


@pytest.mark.parametrize("path", LEFT_BEHIND)
def test_reports_and_build_leftovers_are_git_ignored(check_ignore: list[str], path: str) -> None:
    assert path in check_ignore


@pytest.mark.parametrize("path", KEPT)
def test_the_projects_own_files_are_not_git_ignored(check_ignore: list[str], path: str) -> None:
    assert path not in check_ignore
