"""The README's pytest example, run as a user runs it, against the bundled stack: real engine, real Locust."""

from __future__ import annotations

import json
import os
import pwd
import re
from pathlib import Path

import docker
import jsonschema
import pytest

from tests.conftest import ROOT, project_containers

pytest_plugins = ["pytester"]
pytestmark = pytest.mark.probe

EXAMPLE = ROOT / "examples" / "pytest"
SCHEMA = json.loads((ROOT / "stackprobe" / "report" / "schema.json").read_text())


def _projects_left(prefixes: tuple[str, ...]) -> list[str]:
    """Name the containers, networks and volumes still labelled with a Compose project of these prefixes."""
    client = docker.from_env()
    try:
        # Containers by one list call (project_containers): another xdist worker may remove one meanwhile.
        containers = [name for prefix in prefixes for name in project_containers(client, prefix)]
        kinds = (client.networks.list(), client.volumes.list())
        return containers + [
            str(item.name)
            for items in kinds
            for item in items
            if (item.attrs.get("Labels") or {}).get("com.docker.compose.project", "").startswith(prefixes)
        ]
    finally:
        client.close()


def test_readme_example_passes_on_the_bundled_stack_without_locust_in_pytest_and_leaves_nothing(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, modules_seen: list[str]
) -> None:
    # pytester gives the run a HOME of its own: keep the Docker CLI's config (and CLI plugins) where they are.
    home = pwd.getpwuid(os.getuid()).pw_dir
    monkeypatch.setenv("DOCKER_CONFIG", os.environ.get("DOCKER_CONFIG") or f"{home}/.docker")
    junit = pytester.path / "junit.xml"
    result = pytester.runpytest_subprocess(str(EXAMPLE), "-v", f"--junitxml={junit}", *modules_seen, timeout=400)
    output = result.stdout.str() + result.stderr.str()
    assert result.ret == 0, output
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["module locust: not imported", "module gevent: not imported"])

    (html,) = re.findall(r'name="stackprobe_report" value="([^"]+)"', junit.read_text())
    report = json.loads((Path(html).parent / "report.json").read_text())
    jsonschema.validate(report, SCHEMA)
    assert report["verdict"] == "pass", report["reasons"]
    assert report["limits"]["memory_applied_bytes"] == report["limits"]["memswap_applied_bytes"] == 128 * 1024**2
    assert report["limits"]["applied_matches"] is True
    assert report["requests"]["total"] > 0
    assert report["writes"]["acknowledged"] > 0

    # The run's project is stackprobe-PID-HEX, compose_stack's stackprobe-pytest-PID-HEX: both of that process.
    pid = re.fullmatch(r"stackprobe-(\d+)-[0-9a-f]+", report["target"]["project"]).group(1)
    assert _projects_left((f"stackprobe-{pid}-", f"stackprobe-pytest-{pid}-")) == []
