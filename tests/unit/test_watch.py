"""Watch accounting from recorded stats samples and engine events (Engine 20.10, cgroup v1), no Docker."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from stackprobe.watch import (
    ContainerEvent,
    EventAccounting,
    StatsSeries,
    WatchResult,
    _summarise_service,
    _Tracked,
)

MIB = 1024 * 1024
WEB_ID = "52cbfffa36d35f24ee62abbf972a30d22c9c4f237e578d6e294f669e0492ae30"
DB_ID = "33f6265190d904128d4cfa60d9a9252cfcd519f1af911cc3afa7165bb0434093"

# Two consecutive samples of a busy container limited to 0.2 CPUs and 64 MiB, as the stream sent them.
BUSY_FIRST: dict[str, Any] = {
    "read": "2026-11-27T18:58:53.603991253Z",
    "preread": "0001-01-01T00:00:00Z",
    "cpu_stats": {
        "cpu_usage": {"total_usage": 337186615, "percpu_usage": [28845604, 308341011]},
        "system_cpu_usage": 7652420000000,
        "online_cpus": 2,
        "throttling_data": {"periods": 17, "throttled_periods": 15, "throttled_time": 1142241438},
    },
    "precpu_stats": {
        "cpu_usage": {"total_usage": 0},
        "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0},
    },
    "memory_stats": {
        "usage": 12828672,
        "max_usage": 12828672,
        "stats": {
            "cache": 9646080,
            "inactive_file": 8404992,
            "rss": 2670592,
            "total_cache": 9646080,
            "total_inactive_file": 8404992,
            "total_rss": 2670592,
        },
        "limit": 67108864,
    },
}
BUSY_SECOND: dict[str, Any] = {
    "read": "2026-11-27T18:58:54.609809046Z",
    "preread": "2026-11-27T18:58:53.603991253Z",
    "cpu_stats": {
        "cpu_usage": {"total_usage": 537142738, "percpu_usage": [28845604, 508297134]},
        "system_cpu_usage": 7654430000000,
        "online_cpus": 2,
        "throttling_data": {"periods": 27, "throttled_periods": 25, "throttled_time": 1941168016},
    },
    "precpu_stats": BUSY_FIRST["cpu_stats"],
    "memory_stats": BUSY_FIRST["memory_stats"],
}
# What the stream sends every second while the container is stopped (between an OOM kill and its restart).
STOPPED: dict[str, Any] = {
    "read": "0001-01-01T00:00:00Z",
    "preread": "0001-01-01T00:00:00Z",
    "cpu_stats": {
        "cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
        "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0},
    },
    "precpu_stats": {
        "cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
        "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0},
    },
    "memory_stats": {},
}


def sample_after(
    previous: dict[str, Any],
    *,
    cpu_ns: int,
    usage: int,
    inactive_file: int = 0,
    throttled: tuple[int, int] = (0, 0),
    restarted: bool = False,
) -> dict[str, Any]:
    """Return the sample one second after `previous` (a fresh cgroup's counters when restarted)."""
    sample = copy.deepcopy(previous)
    before = previous["cpu_stats"]
    total = cpu_ns if restarted else before["cpu_usage"]["total_usage"] + cpu_ns
    sample["read"] = "2026-11-27T18:59:00.000000000Z"
    sample["cpu_stats"]["cpu_usage"]["total_usage"] = total
    sample["cpu_stats"]["system_cpu_usage"] = before.get("system_cpu_usage", 7652420000000) + 2_000_000_000
    periods, throttled_ns = throttled
    sample["cpu_stats"]["throttling_data"] = {
        "periods": periods,
        "throttled_periods": periods,
        "throttled_time": throttled_ns,
    }
    sample["memory_stats"]["usage"] = usage
    sample["memory_stats"]["stats"]["total_inactive_file"] = inactive_file
    return sample


def event(action: str, container_id: str = WEB_ID, service: str = "web", nano: int = 0, **extra: str) -> dict[str, Any]:
    """Return an engine event as Engine 20.10 sends it for a Compose container."""
    name = {"web": "spx-web-1", "db": "spx-db-1"}[service]
    attributes = {
        "com.docker.compose.project": "spx",
        "com.docker.compose.service": service,
        "image": "stackprobe-offline/python:3.11",
        "name": name,
        **extra,
    }
    return {
        "status": action,
        "id": container_id,
        "from": "stackprobe-offline/python:3.11",
        "Type": "container",
        "Action": action,
        "Actor": {"ID": container_id, "Attributes": attributes},
        "scope": "local",
        "time": 1795805628 + nano // 10**9,
        "timeNano": 1795805628_000000000 + nano,
    }


def feed(accounting: EventAccounting, *events: dict[str, Any]) -> None:
    """Give the events to the accounting one second apart."""
    for index, item in enumerate(events):
        accounting.add(item, float(index))


def test_a_streams_first_sample_only_anchors_the_cpu_counters() -> None:
    series = StatsSeries(WEB_ID, "spx-web-1", "web", 64 * MIB)

    assert series.add(BUSY_FIRST, at=10.0) is None
    point = series.add(BUSY_SECOND, at=11.0)

    assert point is not None
    assert point.at == 11.0
    # usage less total_inactive_file, as `docker stats` shows it
    assert point.memory_bytes == 12828672 - 8404992
    # 199956123 ns of CPU over 2.01 s of two cores' time: 0.2 CPUs, the container's quota
    assert point.cpu_percent == pytest.approx(19.896, abs=0.001)
    assert series.points == [point]


def test_samples_of_a_stopped_container_are_skipped() -> None:
    series = StatsSeries(WEB_ID, "spx-web-1", "web", 64 * MIB)
    series.add(BUSY_FIRST, at=0.0)

    assert series.add(STOPPED, at=1.0) is None
    assert series.add(BUSY_SECOND, at=2.0) is not None
    assert len(series.points) == 1


def test_throttling_counts_only_growth_since_the_watch_began_across_a_restart() -> None:
    series = StatsSeries(WEB_ID, "spx-web-1", "web", 64 * MIB)
    series.add(BUSY_FIRST, at=0.0)  # 15 periods, 1.142 s throttled before the watch: not counted
    series.add(BUSY_SECOND, at=1.0)  # +10 periods, +0.799 s
    series.add(STOPPED, at=2.0)
    restarted = sample_after(BUSY_SECOND, cpu_ns=50_000_000, usage=5 * MIB, throttled=(4, 300_000_000), restarted=True)
    point = series.add(restarted, at=3.0)

    assert series.throttled_periods.total == 10 + 4
    assert series.throttled_ns.total == (1941168016 - 1142241438) + 300_000_000
    # The fresh cgroup's CPU counter went back: that interval's CPU is not computable from the two samples.
    assert point is not None
    assert point.cpu_percent == 0.0
    assert point.memory_bytes == 5 * MIB


def test_pid_1_oom_kills_with_a_restart_policy_count_each_oom_and_each_restart() -> None:
    accounting = EventAccounting()
    # Recorded from a 64 MiB container with restart policy on-failure:2 growing a bytearray.
    feed(
        accounting,
        event("start"),
        event("oom"),
        event("die", exitCode="137"),
        event("start"),
        event("oom"),
        event("die", exitCode="137"),
        event("start"),
        event("oom"),
        event("die", exitCode="137"),
    )

    assert accounting.oom_kills == {"web": 3}
    assert accounting.restarts == {"web": 2}
    dies = [e for _, e in accounting.events if e.action == "die"]
    assert [d.exit_code for d in dies] == [137, 137, 137]
    assert {e.container for _, e in accounting.events} == {"spx-web-1"}


def test_a_worker_oom_counts_an_oom_without_a_death_or_restart() -> None:
    accounting = EventAccounting()
    # A child process killed by the OOM killer while PID 1 (like a server's main process) lives on.
    feed(accounting, event("oom"), event("oom"))

    assert accounting.oom_kills == {"web": 2}
    assert accounting.restarts == {}


def test_a_kill_on_removal_is_a_death_but_not_an_oom() -> None:
    accounting = EventAccounting()
    feed(accounting, event("kill", signal="9"), event("die", exitCode="137"), event("destroy"))

    assert accounting.oom_kills == {}
    assert accounting.restarts == {}
    assert [e.action for _, e in accounting.events] == ["die"]


def test_docker_restart_counts_once_although_it_sends_start_and_restart() -> None:
    accounting = EventAccounting()
    feed(accounting, event("kill", signal="15"), event("die", exitCode="0"), event("start"), event("restart"))

    assert accounting.restarts == {"web": 1}


def test_a_restart_event_before_the_start_counts_once() -> None:
    accounting = EventAccounting()
    feed(accounting, event("die", exitCode="137"), event("restart"), event("start"))

    assert accounting.restarts == {"web": 1}


def test_a_new_container_starting_is_not_a_restart() -> None:
    accounting = EventAccounting()
    # Compose recreating a service: the old container dies, a new one (another id) starts.
    feed(accounting, event("die", exitCode="0"), event("start", container_id=DB_ID))

    assert accounting.restarts == {}


def test_services_outside_the_watch_are_ignored() -> None:
    accounting = EventAccounting(frozenset({"web"}))
    feed(accounting, event("oom", container_id=DB_ID, service="db"), event("oom"))

    assert accounting.oom_kills == {"web": 1}
    assert [e.service for _, e in accounting.events] == ["web"]


def test_events_keep_the_time_they_were_given() -> None:
    accounting = EventAccounting()
    record = accounting.add(event("oom"), at=123.5)

    assert record is not None
    assert accounting.events == [(123.5, record)]


def series_with(service: str, name: str, memories_at: list[tuple[float, int]], limit: int | None) -> StatsSeries:
    """Return a container series fed with samples of the given memory at the given monotonic times."""
    series = StatsSeries(name, name, service, limit)
    previous = BUSY_FIRST
    series.add(previous, at=memories_at[0][0] - 1)
    for at, memory in memories_at:
        previous = sample_after(previous, cpu_ns=400_000_000, usage=memory)
        series.add(previous, at=at)
    return series


def test_idle_memory_is_measured_before_the_load_and_peak_over_the_whole_watch() -> None:
    series = series_with(
        "web", "spx-web-1", [(98.0, 40 * MIB), (99.0, 42 * MIB), (100.0, 60 * MIB), (101.0, 50 * MIB)], 64 * MIB
    )

    summary = _summarise_service("web", [_Tracked(series, 0)], t0=100.0, oom_kills=0, event_restarts=0)

    assert summary.t == (-2.0, -1.0, 0.0, 1.0)
    assert summary.idle_memory_bytes == 41 * MIB
    assert summary.peak_memory_bytes == 60 * MIB
    assert summary.peak_ratio == pytest.approx(60 / 64)
    # 0.4 s of CPU in 2 s of two cores' time
    assert summary.avg_cpu_percent == pytest.approx(40.0)


def test_without_samples_before_the_load_idle_memory_is_the_first_sample() -> None:
    series = series_with("web", "spx-web-1", [(100.5, 30 * MIB), (101.5, 35 * MIB)], 64 * MIB)

    summary = _summarise_service("web", [_Tracked(series, 0)], t0=100.0, oom_kills=0, event_restarts=0)

    assert summary.idle_memory_bytes == 30 * MIB


def test_restarts_trust_restart_count_when_events_missed_some() -> None:
    series = series_with("web", "spx-web-1", [(100.0, 30 * MIB)], 64 * MIB)
    tracked = _Tracked(series, restart_count_at_attach=1, restart_count_at_stop=4)

    summary = _summarise_service("web", [tracked], t0=100.0, oom_kills=3, event_restarts=2)

    assert summary.restarts == 3
    assert summary.oom_kills == 3


def test_a_service_merges_its_containers_in_time_order_and_keeps_a_shared_limit() -> None:
    old = series_with("web", "spx-web-1", [(100.0, 30 * MIB), (101.0, 31 * MIB)], 64 * MIB)
    new = series_with("web", "spx-web-2", [(103.0, 20 * MIB)], 64 * MIB)

    summary = _summarise_service("web", [_Tracked(new, 0), _Tracked(old, 0)], t0=100.0, oom_kills=0, event_restarts=0)

    assert summary.containers == ("spx-web-1", "spx-web-2")
    assert summary.t == (0.0, 1.0, 3.0)
    assert summary.limit_bytes == 64 * MIB


def test_an_unlimited_service_has_no_peak_ratio() -> None:
    series = series_with("db", "spx-db-1", [(100.0, 30 * MIB)], None)

    summary = _summarise_service("db", [_Tracked(series, 0)], t0=100.0, oom_kills=0, event_restarts=0)

    assert summary.limit_bytes is None
    assert summary.peak_ratio is None


def test_result_sections_have_the_report_keys() -> None:
    series = series_with("web", "spx-web-1", [(99.0, 40 * MIB), (100.0, 60 * MIB)], 64 * MIB)
    summary = _summarise_service("web", [_Tracked(series, 0)], t0=100.0, oom_kills=1, event_restarts=1)
    oom = ContainerEvent(
        t=0.25, action="oom", container="spx-web-1", service="web", exit_code=None, container_id=WEB_ID
    )
    result = WatchResult(
        services={"web": summary}, events=(oom,), oom_kills=1, restarts=1, sample_count=2, duration_s=3.0
    )

    assert result.memory_section("web") == {
        "peak_bytes": 60 * MIB,
        "limit_bytes": 64 * MIB,
        "peak_ratio": pytest.approx(60 / 64),
        "idle_bytes": 40 * MIB,
    }
    assert set(result.cpu_section("web")) == {"peak_percent", "avg_percent", "throttled_periods", "throttled_seconds"}
    assert result.cpu_section("missing") == dict.fromkeys(result.cpu_section("web"))
    assert result.memory_section("missing") == dict.fromkeys(result.memory_section("web"))
    assert result.events_section() == [
        {"t": 0.25, "action": "oom", "container": "spx-web-1", "service": "web", "exit_code": None}
    ]
    containers = result.containers_series()
    assert list(containers) == ["web"]
    assert containers["web"]["t"] == [-1.0, 0.0]
    assert containers["web"]["memory_bytes"] == [40 * MIB, 60 * MIB]
    assert containers["web"]["limit_bytes"] == 64 * MIB
    assert len(containers["web"]["cpu_percent"]) == 2
