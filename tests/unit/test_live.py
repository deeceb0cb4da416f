"""The live container panel's choices and figures, without Docker (an engine that is not there is real)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import docker
import pytest

from stackprobe.live import (
    TABLE_COLUMNS,
    ContainerPanel,
    choose_project,
    compose_default_project,
    container_figures,
    containers_figures,
    table_row,
    usage_bar,
)
from stackprobe.stack import free_ports
from stackprobe.watch import ContainerEvent, ContainerSummary, ServiceSummary, Watcher, WatchResult

MIB = 1024 * 1024


def _summary(**changes: object) -> ContainerSummary:
    base = ContainerSummary(
        name="shop-app-1",
        service="app",
        container_id="a" * 64,
        t=(-2.0, -1.0, 0.0, 1.0),
        memory_bytes=(60 * MIB, 61 * MIB, 62 * MIB, 64 * MIB),
        cpu_percent=(1.0, 2.0, 3.0, 12.5),
        limit_bytes=128 * MIB,
        sampled=True,
        peak_memory_bytes=70 * MIB,
        peak_source="cgroup v1 memory.max_usage_in_bytes, the kernel's high-water mark",
        peak_kernel_bytes=70 * MIB,
        peak_sampled_bytes=64 * MIB,
        peak_reset=False,
        idle_memory_bytes=61 * MIB,
        cgroup_version=1,
        cgroup_source="host",
        cgroup_read=True,
        oom_kills=2,
        oom_kills_source="the kernel's oom_kill counter",
        oom_events=2,
        frozen_at=None,
        restarts=1,
        throttled_periods=0,
        throttled_seconds=0.0,
        running_at_stop=None,
        incarnations=(),
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def _event(action: str, exit_code: int | None = None) -> ContainerEvent:
    return ContainerEvent(
        t=0.5, action=action, container="shop-app-1", service="app", exit_code=exit_code, container_id="a" * 64
    )


@pytest.mark.parametrize(
    ("folder", "environ", "expected"),
    [
        ("/srv/My Shop.v2", {}, "myshopv2"),
        ("/srv/_shop", {}, "shop"),
        ("/srv/shop", {"COMPOSE_PROJECT_NAME": "prod"}, "prod"),
    ],
)
def test_the_default_project_is_composes_name_for_the_folder(folder: str, environ: dict, expected: str) -> None:
    assert compose_default_project(Path(folder), environ) == expected


def test_the_option_names_the_project_before_the_environment_and_the_folder(tmp_path: Path) -> None:
    running = {"other": str(tmp_path)}
    assert choose_project(running, tmp_path, {"STACKPROBE_PROJECT": "env"}, "opt").name == "opt"
    chosen = choose_project(running, tmp_path, {"STACKPROBE_PROJECT": "env"})
    assert (chosen.name, chosen.reason) == ("env", "named by STACKPROBE_PROJECT")


def test_the_one_project_running_from_the_folder_is_watched(tmp_path: Path) -> None:
    running = {"elsewhere": "/srv/other", "mine": str(tmp_path)}
    assert choose_project(running, tmp_path, {}).name == "mine"


def test_of_several_projects_in_the_folder_composes_default_is_watched(tmp_path: Path) -> None:
    folder = tmp_path / "shop"
    folder.mkdir()
    running = {"shop": str(folder), "stackprobe-12-abc": str(folder)}
    assert choose_project(running, folder, {}).name == "shop"


def test_several_projects_in_the_folder_and_none_default_are_named_not_guessed(tmp_path: Path) -> None:
    running = {"a-run": str(tmp_path), "b-run": str(tmp_path)}
    chosen = choose_project(running, tmp_path, {})
    assert chosen.name is None
    assert "a-run, b-run" in chosen.reason
    assert "--stackprobe-project" in chosen.reason


def test_no_project_in_the_folder_says_how_to_start_or_name_one(tmp_path: Path) -> None:
    chosen = choose_project({"other": "/srv/other"}, tmp_path, {})
    assert chosen.name is None
    assert chosen.reason.startswith(f"no Compose project runs from {tmp_path.resolve()}")


@pytest.mark.parametrize(
    ("ratio", "bar"),
    [(0.48, "█████░░░░░ 48 %"), (0.0, "░░░░░░░░░░ 0 %"), (1.3, "██████████ 130 %"), (None, "")],
)
def test_the_usage_bar_draws_memory_over_the_limit_in_tenths(ratio: float | None, bar: str) -> None:
    assert usage_bar(ratio) == bar


def test_a_containers_row_gives_its_latest_sample_against_its_limit() -> None:
    figures = container_figures(_summary(), now_t=1.5)
    assert figures["memory_bytes"] == 64 * MIB
    assert figures["memory_ratio"] == 0.5
    assert figures["cpu_percent"] == 12.5
    assert table_row(figures) == {
        "name": "shop-app-1",
        "service": "app",
        "state": "running",
        "memory": "64.0 MiB",
        "limit": "128.0 MiB",
        "use": "█████░░░░░ 50 %",
        "peak": "70.0 MiB",
        "cpu": "12.5 %",
        "oom_kills": "2",
        "restarts": "1",
    }
    assert set(table_row(figures)) == {key for key, _ in TABLE_COLUMNS}


def test_a_container_without_a_limit_shows_none_and_no_bar() -> None:
    row = table_row(container_figures(_summary(limit_bytes=None), now_t=1.5))
    assert (row["limit"], row["use"]) == ("none", "no limit")


@pytest.mark.parametrize(
    ("summary", "now_t", "event", "state"),
    [
        (_summary(), 9.6, None, "no stats sample for 9 s"),
        (_summary(), 9.6, _event("die", 137), "exited (137)"),
        (_summary(), 1.5, _event("start"), "running"),
        (_summary(t=(), memory_bytes=(), cpu_percent=()), 1.5, None, "no stats sample yet"),
    ],
)
def test_a_containers_state_follows_its_samples_and_last_event(
    summary: ContainerSummary, now_t: float, event: ContainerEvent | None, state: str
) -> None:
    assert container_figures(summary, now_t, event)["state"] == state


def test_the_rows_follow_service_then_name_and_each_containers_last_event() -> None:
    db = _summary(name="shop-db-1", service="db", container_id="d" * 64)
    app = _summary()
    result = WatchResult(
        services={
            "db": ServiceSummary("db", (db,), (), (), (), None, None, None, None, None, None, None, 0, 0),
            "app": ServiceSummary("app", (app,), (), (), (), None, None, None, None, None, None, None, 0, 0),
        },
        events=(_event("die", 137), _event("start")),
        oom_kills=0,
        restarts=0,
        sample_count=8,
        duration_s=3.0,
    )
    figures = containers_figures(result, now_t=1.5)
    assert [(f["name"], f["state"]) for f in figures] == [("shop-app-1", "running"), ("shop-db-1", "running")]


def _no_engine() -> docker.DockerClient:
    """A client of an engine address where nothing listens (TCP: docker's Unix-socket transport leaks the
    socket of a failed connect)."""
    return docker.DockerClient(base_url=f"tcp://127.0.0.1:{free_ports(1)[0]}", version="1.41", timeout=2)


def test_an_unreachable_engine_is_one_message_row_and_is_retried_only_after_a_pause(tmp_path: Path) -> None:
    tries: list[int] = []

    def connect() -> docker.DockerClient:
        tries.append(1)
        return _no_engine()

    panel = ContainerPanel(tmp_path, connect=connect, retry_s=3600)
    doc = panel.document()
    rows = panel.rows()
    panel.close()
    assert doc["engine"] == "unreachable"
    assert doc["message"].startswith("Docker engine unreachable: ")
    assert doc["containers"] == []
    assert len(rows) == 1
    assert rows[0]["name"] == doc["message"]
    assert len(tries) == 1


def test_the_watch_so_far_needs_a_started_watcher() -> None:
    with pytest.raises(RuntimeError, match="has not started"):
        Watcher(_no_engine(), "shop").so_far()
