"""`stackprobe status` without an engine: which projects it shows, and URLs printed whole at any width."""

from __future__ import annotations

import io
import re
import subprocess
from pathlib import Path

import pytest
from rich.console import Console

from stackprobe.stack import PROJECT_LABEL, removal_command, unique_project_name
from stackprobe.status import (
    CONFIG_FILES_LABEL,
    RUN_PROJECT,
    ProjectStatus,
    ServiceStatus,
    projects_of,
    published_urls,
    render_status,
    run_of,
)

MIB = 1024 * 1024


def _render(projects: list[ProjectStatus], width: int) -> str:
    """Render as a CI log does: not a terminal, at a fixed width."""
    out = io.StringIO()
    render_status(projects, Console(file=out, width=width, force_terminal=False, color_system=None))
    return out.getvalue()


def _service(service: str, urls: tuple[str, ...] = (), in_force: str = "yes") -> ServiceStatus:
    return ServiceStatus(
        name=f"p-{service}-1",
        service=service,
        state="running (healthy)",
        urls=urls,
        declared_bytes=128 * MIB,
        applied_bytes=128 * MIB,
        swap_bytes=128 * MIB,
        in_force=in_force,
    )


def _dead_pid() -> int:
    """Return the id of a process that has ended (and been reaped)."""
    done = subprocess.Popen(["true"])
    done.wait()
    return done.pid


@pytest.mark.parametrize("width", [80, 60, 40])
def test_urls_are_printed_whole_on_lines_of_their_own_at_any_width(width: int) -> None:
    urls = ("http://127.0.0.1:5000", "http://[fd00:dead:beef::1]:49153")
    text = _render([ProjectStatus("wt-newcomer", (), (_service("app", urls), _service("db")))], width)
    for url in urls:
        assert f"app: {url}\n" in text
    assert "…" not in text


def test_no_table_cell_is_cut_short_in_80_columns() -> None:
    problem = "NO: memory limit 64.0 MiB applied, 128.0 MiB asked; swap not held equal to memory"
    text = _render([ProjectStatus("p", (), (_service("app", in_force=problem),))], 80)
    assert "…" not in text
    # Folded over lines, every word of the cell is still there.
    assert re.sub(r"\s+", " ", text).count("swap not held equal to memory") == 1


def test_a_stack_left_by_keep_up_is_named_so_with_its_removal_command_on_one_line() -> None:
    project = f"stackprobe-{_dead_pid()}-a1b2c3"
    text = _render([ProjectStatus(project, (), (_service("app"),), run=run_of(project))], 80)
    assert f"Compose project {project} (left running by stackprobe run --keep-up)" in text
    assert f"Remove it with: {removal_command(project)}\n" in text


def test_a_run_in_progress_is_not_called_left_over_and_gets_no_removal_command() -> None:
    project = unique_project_name()  # this process's id: alive
    text = _render([ProjectStatus(project, (), (_service("app"),), run=run_of(project))], 80)
    assert "a stackprobe run in progress" in text
    assert "Remove it with" not in text


def test_status_recognises_the_project_names_run_gives_its_stacks() -> None:
    assert RUN_PROJECT.fullmatch(unique_project_name())
    assert run_of(unique_project_name(), pid_alive=lambda pid: False) == "kept"
    assert run_of(unique_project_name(), pid_alive=lambda pid: True) == "running"
    assert run_of("stackprobe-test-12-a1b2c3") is None
    assert run_of("wt-newcomer") is None


def test_projects_running_the_compose_file_are_found_by_their_config_files_label() -> None:
    compose = Path("/srv/app/docker-compose.yml")
    override = Path("/tmp/stackprobe-12-a1b2c3-xyz/stackprobe.override.yml")
    labels = [
        {PROJECT_LABEL: "app", CONFIG_FILES_LABEL: str(compose)},
        {PROJECT_LABEL: "stackprobe-12-a1b2c3", CONFIG_FILES_LABEL: f"{compose},{override}"},
        {PROJECT_LABEL: "stackprobe-12-a1b2c3", CONFIG_FILES_LABEL: f"{compose},{override}"},
        {PROJECT_LABEL: "stackprobe-13-d4e5f6", CONFIG_FILES_LABEL: "/elsewhere/compose.yaml"},
        {PROJECT_LABEL: "other", CONFIG_FILES_LABEL: "/elsewhere/compose.yaml"},
    ]
    assert projects_of(labels, [compose]) == {
        "app": (compose,),
        "stackprobe-12-a1b2c3": (compose, override),
    }


def test_without_a_compose_file_every_stack_a_run_started_is_found() -> None:
    labels = [
        {PROJECT_LABEL: "stackprobe-13-d4e5f6", CONFIG_FILES_LABEL: "/elsewhere/compose.yaml"},
        {PROJECT_LABEL: "other", CONFIG_FILES_LABEL: "/elsewhere/compose.yaml"},
    ]
    assert list(projects_of(labels, [], runs_anywhere=True)) == ["stackprobe-13-d4e5f6"]


def test_ports_published_on_every_interface_are_given_once_at_127_0_0_1() -> None:
    ports = {
        "5000/tcp": [{"HostIp": "0.0.0.0", "HostPort": "5000"}, {"HostIp": "::", "HostPort": "5000"}],
        "8000/tcp": [{"HostIp": "127.0.0.1", "HostPort": "41000"}],
        "9000/tcp": None,
    }
    assert published_urls(ports) == ("http://127.0.0.1:5000", "http://127.0.0.1:41000")
