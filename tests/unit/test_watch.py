"""Watch accounting from recorded stats samples, engine events and cgroup readings (Engine 20.10), no Docker.

The cgroup readings and event times of the crash-loop tests follow one recorded on this project's machine
(cgroup v1, a python growing 8 MiB every 50 ms under a strict 64 MiB limit, restart policy on-failure:2):
the kernel counted each kill (oom_kill 1, max_usage_in_bytes at the limit) about 4 ms before the engine
stamped its oom event; the cgroup was empty 1 ms after that event, gone 10 ms later, and the die event came
10 ms after that; the restarted container's new cgroup existed some 170 ms before its start event.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from stackprobe.cgroup import MemoryCounters
from stackprobe.watch import (
    CgroupLog,
    ContainerEvent,
    EventAccounting,
    FinalState,
    SeenEvent,
    ServiceSummary,
    StatsSeries,
    WatchResult,
    _CgroupWatch,
    _Tracked,
    account_incarnations,
    aggregate_series,
    summarise_container,
    summarise_service,
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
    """Give the events to the accounting one second apart (by their engine stamps too)."""
    for index, item in enumerate(events):
        stamped = {**item, "timeNano": item["timeNano"] + index * 10**9}
        accounting.add(stamped, float(index))


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

    # The engine's oom events: counted beside the kernel's kills, not as kills.
    assert accounting.oom_events == {"web": 3}
    assert accounting.restarts == {"web": 2}
    dies = [e for _, e in accounting.events if e.action == "die"]
    assert [d.exit_code for d in dies] == [137, 137, 137]
    assert {e.container for _, e in accounting.events} == {"spx-web-1"}


def test_a_worker_oom_counts_an_oom_event_without_a_death_or_restart() -> None:
    accounting = EventAccounting()
    # A child process killed by the OOM killer while PID 1 (like a server's main process) lives on.
    feed(accounting, event("oom", nano=1), event("oom", nano=2))

    assert accounting.oom_events == {"web": 2}
    assert accounting.restarts == {}


def test_a_kill_on_removal_is_a_death_but_not_an_oom() -> None:
    accounting = EventAccounting()
    feed(accounting, event("kill", signal="9"), event("die", exitCode="137"), event("destroy"))

    assert accounting.oom_events == {}
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

    assert accounting.oom_events == {"web": 1}
    assert [e.service for _, e in accounting.events] == ["web"]


def test_events_keep_the_time_they_were_given() -> None:
    accounting = EventAccounting()
    record = accounting.add(event("oom"), at=123.5)

    assert record is not None
    assert accounting.events == [(123.5, record)]


def test_an_event_delivered_twice_is_kept_once() -> None:
    accounting = EventAccounting()
    # The live stream and the bounded one read at stop can both deliver the same event.
    first = accounting.add(event("oom"), at=1.0, arrived=1.001)
    again = accounting.add(event("oom"), at=1.0, arrived=1.2)

    assert first is not None
    assert again is None
    assert accounting.oom_events == {"web": 1}
    assert [seen.arrived for seen in accounting.by_container[WEB_ID]] == [1.001]


# --- cgroup readings -------------------------------------------------------------------------------------

LIMIT = 64 * MIB


def counters(
    peak: int, kills: int = 0, *, populated: bool | None = True, frozen: bool = False, limit: int | None = LIMIT
) -> MemoryCounters:
    """Return one cgroup v1 reading."""
    return MemoryCounters(
        version=1,
        peak_bytes=peak,
        limit_bytes=limit,
        oom_kill=kills,
        under_oom=frozen,
        oom_kill_disable=frozen,
        populated=populated,
    )


def readings(*items: tuple[float, MemoryCounters]) -> CgroupLog:
    """Return a log of readings that began at the given monotonic times."""
    log = CgroupLog()
    for at, value in items:
        log.add(value, at)
    return log


def seen(action: str, at: float, arrived: float | None = None, exit_code: int | None = None) -> SeenEvent:
    """Return an event of the web container stamped at `at`, arrived at `arrived` (1 ms later by default)."""
    record = ContainerEvent(
        t=0.0, action=action, container="spx-web-1", service="web", exit_code=exit_code, container_id=WEB_ID
    )
    return SeenEvent(at=at, arrived=at + 0.001 if arrived is None else arrived, event=record)


def crash_loop_events() -> list[SeenEvent]:
    """Three PID-1 OOM kills of a container with restart policy on-failure:2, started after the watch."""
    return [
        seen("start", 100.227),
        seen("oom", 100.592),
        seen("die", 100.614, exit_code=137),
        seen("start", 100.944),
        seen("oom", 101.310),
        seen("die", 101.338, exit_code=137),
        seen("start", 101.767),
        seen("oom", 102.144),
        seen("die", 102.173, exit_code=137),
    ]


STOPPED_OOM = FinalState(running=False, exit_code=137, oom_killed=True, restart_count=2)


def test_pid_1_kills_no_read_could_show_are_recovered_from_die_events_at_the_limit() -> None:
    # Every reading came before the kill: the cgroup went away before the next one.
    log = readings(
        (100.229, counters(4 * MIB)),
        (100.500, counters(40 * MIB)),
        (100.770, counters(300_000)),  # the restarted container's new cgroup, before its start event
        (101.270, counters(60 * MIB)),
        (101.770, counters(2 * MIB)),
        (102.100, counters(50 * MIB)),
    )

    incarnations = account_incarnations(log, crash_loop_events(), t0=100.0, final=STOPPED_OOM)

    assert [i.oom_kills for i in incarnations] == [1, 1, 1]
    assert [i.oom_kills_recovered for i in incarnations] == [1, 1, 1]
    assert all(i.pid1_oom_killed for i in incarnations)
    # The kernel kills at the limit: the peak is the limit, never the last reading before the kill.
    assert [i.peak_kernel_bytes for i in incarnations] == [LIMIT, LIMIT, LIMIT]
    assert [i.ended_t for i in incarnations] == pytest.approx([0.614, 1.338, 2.173])
    assert incarnations[0].started_t == pytest.approx(0.227)
    assert [i.cgroup_reads for i in incarnations] == [2, 2, 2]


def test_a_kill_a_reading_already_showed_is_not_counted_again() -> None:
    log = readings(
        (100.229, counters(4 * MIB)),
        # Read after the oom event arrived (100.593): the counter already holds the kill.
        (100.594, counters(LIMIT, 1, populated=True)),
        (101.2, counters(50 * MIB)),
        # The cgroup found empty: its counters are final, whenever the oom event arrives.
        (101.3135, counters(LIMIT, 1, populated=False)),
    )

    incarnations = account_incarnations(log, crash_loop_events()[:6], t0=100.0)

    assert [(i.oom_kills, i.oom_kills_recovered) for i in incarnations] == [(1, 0), (1, 0)]


def test_a_reading_before_the_oom_event_arrived_does_not_prove_the_kill_was_counted() -> None:
    # The kernel counts the kill about 4 ms before the engine stamps its event: a reading in between can
    # show it, one before cannot. Without an empty cgroup, only a reading after the event's arrival counts.
    log = readings((100.229, counters(4 * MIB)), (100.590, counters(63 * MIB, 0)))

    (incarnation,) = account_incarnations(log, crash_loop_events()[:3], t0=100.0)

    assert incarnation.oom_kills == 1
    assert incarnation.oom_kills_recovered == 1


def test_worker_kills_come_from_the_counter_not_from_the_engines_oom_events() -> None:
    # containerd sent five oom events for two kills; the container lives on.
    log = readings((10.0, counters(20 * MIB)), (10.5, counters(LIMIT, 1)), (11.0, counters(LIMIT, 2)))
    events = [seen("oom", 10.4), seen("oom", 10.41), seen("oom", 10.42), seen("oom", 10.9), seen("oom", 10.91)]

    (incarnation,) = account_incarnations(
        log, events, t0=9.0, final=FinalState(running=True, exit_code=0, oom_killed=True, restart_count=0)
    )

    assert incarnation.oom_kills == 2
    assert incarnation.oom_events == 5
    assert incarnation.ended_t is None
    assert not incarnation.pid1_oom_killed


def test_a_container_killed_with_sigkill_but_not_by_the_oom_killer_recovers_nothing() -> None:
    log = readings((10.0, counters(20 * MIB)))

    (incarnation,) = account_incarnations(log, [seen("die", 12.0, exit_code=137)], t0=9.0)

    assert incarnation.oom_kills == 0
    assert incarnation.peak_kernel_bytes == 20 * MIB


def test_a_start_up_oom_kill_that_containerd_missed_is_taken_from_the_kernels_log() -> None:
    # Killed at its limit before any reading, no oom event, and inspect's OOMKilled false (it comes from the
    # same containerd event): only the kernel's oom-kill line, charged to its cgroup, says it was the OOM killer.
    not_oom = FinalState(running=False, exit_code=137, oom_killed=False, restart_count=0)
    events = [seen("start", 10.0), seen("die", 10.4, exit_code=137)]

    (blind,) = account_incarnations(CgroupLog(), events, t0=9.0, final=not_oom, limit_bytes=LIMIT)
    (logged,) = account_incarnations(
        CgroupLog(), events, t0=9.0, final=not_oom, limit_bytes=LIMIT, kernel_oom_kills=[10.39]
    )

    assert (blind.oom_kills, blind.pid1_oom_killed) == (0, False)
    assert (logged.oom_kills, logged.pid1_oom_killed, logged.peak_kernel_bytes) == (1, True, LIMIT)


def test_kernel_logged_kills_count_in_the_incarnation_they_fell_in() -> None:
    # Two incarnations, neither read; the kernel logged a worker kill in the second only.
    events = [seen("start", 10.0), seen("die", 11.0, exit_code=1), seen("start", 11.5)]

    first, second = account_incarnations(CgroupLog(), events, t0=9.0, kernel_oom_kills=[12.0])

    assert (first.oom_kills, second.oom_kills) == (0, 1)


def test_a_last_death_whose_events_were_missed_is_recovered_from_inspect() -> None:
    log = readings((10.0, counters(20 * MIB)))

    (incarnation,) = account_incarnations(log, [], t0=9.0, final=STOPPED_OOM)

    assert incarnation.exit_code == 137
    assert incarnation.oom_kills == 1
    assert incarnation.peak_kernel_bytes == LIMIT


def test_frozen_at_the_limit_is_no_kill() -> None:
    log = readings(
        (10.0, counters(30 * MIB)), (10.5, counters(LIMIT, frozen=True)), (11.0, counters(LIMIT, frozen=True))
    )

    (incarnation,) = account_incarnations(log, [seen("oom", 10.3)], t0=10.0)

    assert incarnation.frozen_at == pytest.approx(0.5)
    assert incarnation.oom_kills == 0
    assert incarnation.oom_events == 1


def test_kills_before_the_watch_are_not_counted() -> None:
    # Three kills before the watch began; one during it.
    log = readings((10.0, counters(LIMIT, 3)), (10.5, counters(LIMIT, 4)))

    (incarnation,) = account_incarnations(log, [], t0=10.0, ran_before_watch=True)

    assert incarnation.oom_kills == 1


def test_the_reset_high_water_mark_leaves_out_the_idle_peak() -> None:
    log = readings((10.0, counters(90 * MIB)), (10.5, counters(90 * MIB)))
    log.cut(10.6)  # reset at the load's start
    log.add(counters(12 * MIB), 10.7)
    log.add(counters(30 * MIB), 11.2)

    (incarnation,) = account_incarnations(log, [], t0=10.6, reset_at=10.6, ran_before_watch=True)

    assert incarnation.peak_kernel_bytes == 30 * MIB
    assert incarnation.peak_since_load


def test_without_a_reset_the_peak_covers_the_containers_life() -> None:
    log = readings((10.0, counters(90 * MIB)), (11.2, counters(90 * MIB)))

    (incarnation,) = account_incarnations(log, [], t0=10.6, ran_before_watch=True)

    assert incarnation.peak_kernel_bytes == 90 * MIB
    assert not incarnation.peak_since_load


def test_an_incarnation_that_ended_before_the_load_is_outside_its_window() -> None:
    log = readings((10.0, counters(60 * MIB)), (11.5, counters(5 * MIB)))
    events = [seen("die", 10.9, exit_code=1), seen("start", 11.4)]

    before, during = account_incarnations(log, events, t0=11.0)

    assert not before.in_load_window
    assert during.in_load_window
    assert during.peak_since_load
    assert during.peak_kernel_bytes == 5 * MIB


def test_equal_readings_merge_into_one_run_but_never_across_a_cut() -> None:
    log = readings((1.0, counters(MIB)), (1.5, counters(MIB)), (2.0, counters(MIB)))
    log.cut(2.2)
    log.add(counters(MIB), 2.5)

    assert [(run.first_at, run.last_at, run.reads) for run in log.runs] == [(1.0, 2.0, 3), (2.5, 2.5, 1)]


# --- containers and services ------------------------------------------------------------------------------


def series_with(service: str, name: str, memories_at: list[tuple[float, int]], limit: int | None) -> StatsSeries:
    """Return a container series fed with samples of the given memory at the given monotonic times."""
    series = StatsSeries(name, name, service, limit)
    previous = BUSY_FIRST
    series.add(previous, at=memories_at[0][0] - 1)
    for at, memory in memories_at:
        previous = sample_after(previous, cpu_ns=400_000_000, usage=memory)
        series.add(previous, at=at)
    return series


def tracked(
    series: StatsSeries,
    log: CgroupLog | None = None,
    *,
    reset_at: float | None = None,
    final: FinalState | None = None,
    restarts: tuple[int, int | None] = (0, None),
) -> _Tracked:
    """Return a watched container with its samples and, when given, cgroup readings from the host."""
    watch = _CgroupWatch(log=log or CgroupLog(), version=1, reset_at=reset_at)
    if log is not None:
        watch.host = object()  # type: ignore[assignment]  # read from the host's tree
    return _Tracked(
        series,
        restart_count_at_attach=restarts[0],
        restart_count_at_stop=restarts[1],
        cgroup=watch,
        final=final,
        ran_before_watch=True,
    )


def summary_of(
    service: str,
    items: list[_Tracked],
    t0: float,
    events: dict[str, list[SeenEvent]] | None = None,
    problems: list[str] | None = None,
    event_restarts: int = 0,
) -> ServiceSummary:
    """Summarise containers and their service as the watcher does at stop."""
    found = [] if problems is None else problems
    containers = [
        summarise_container(
            item, (events or {}).get(item.series.container_id, []), t0=t0, load_marked=True, problems=found
        )
        for item in items
    ]
    return summarise_service(service, containers, t0, event_restarts=event_restarts, problems=found)


def test_idle_memory_is_measured_before_the_load_and_the_sampled_peak_during_it() -> None:
    series = series_with(
        "web", "spx-web-1", [(98.0, 40 * MIB), (99.0, 62 * MIB), (100.0, 60 * MIB), (101.0, 50 * MIB)], 64 * MIB
    )

    summary = summary_of("web", [tracked(series)], t0=100.0)

    assert summary.t == (-2.0, -1.0, 0.0, 1.0)
    assert summary.idle_memory_bytes == 51 * MIB
    assert summary.peak_memory_bytes == summary.peak_sampled_bytes == 60 * MIB
    assert summary.peak_ratio == pytest.approx(60 / 64)
    # 0.4 s of CPU in 2 s of two cores' time
    assert summary.avg_cpu_percent == pytest.approx(40.0)


def test_without_samples_before_the_load_idle_memory_is_the_first_sample() -> None:
    series = series_with("web", "spx-web-1", [(100.5, 30 * MIB), (101.5, 35 * MIB)], 64 * MIB)

    summary = summary_of("web", [tracked(series)], t0=100.0)

    assert summary.idle_memory_bytes == 30 * MIB


def test_the_kernels_peak_is_reported_over_the_sampled_one_with_both_kept() -> None:
    # A spike between two samples: docker stats saw 12 MiB, the high-water mark 110 MiB.
    series = series_with("web", "spx-web-1", [(100.0, 10 * MIB), (101.0, 12 * MIB)], 256 * MIB)
    log = readings((99.0, counters(40 * MIB, limit=256 * MIB)))
    log.cut(99.5)
    log.add(counters(11 * MIB, limit=256 * MIB), 99.6)
    log.add(counters(110 * MIB, limit=256 * MIB), 101.5)

    summary = summary_of("web", [tracked(series, log, reset_at=99.5)], t0=99.5)

    assert summary.peak_memory_bytes == summary.peak_kernel_bytes == 110 * MIB
    assert summary.peak_sampled_bytes == 12 * MIB
    assert summary.peak_source.startswith("cgroup v1 memory.max_usage_in_bytes")
    assert summary.peak_source.endswith("since the load started")
    assert summary.containers[0].peak_reset
    assert summary.cgroup_read


def test_a_service_whose_cgroup_was_never_read_falls_back_to_events_and_says_so() -> None:
    series = series_with("web", "spx-web-1", [(100.0, 30 * MIB)], 64 * MIB)
    log = CgroupLog()
    log.fail("the memory cgroup could not be read")
    problems: list[str] = []
    events = {series.container_id: [seen("oom", 100.2), seen("oom", 100.3)]}

    summary = summary_of("web", [tracked(series, log)], t0=100.0, events=events, problems=problems)

    assert summary.oom_kills == summary.oom_events == 2
    assert summary.oom_kills_source.startswith("the engine's oom events (the cgroup could not be read")
    assert summary.peak_source.startswith("docker stats samples")
    assert not summary.cgroup_read
    assert any("could not be read" in p for p in problems)


def test_a_container_never_sampled_is_a_problem() -> None:
    series = StatsSeries(WEB_ID, "spx-web-1", "web", 64 * MIB)
    problems: list[str] = []

    summary = summary_of("web", [tracked(series, readings((100.0, counters(MIB))))], t0=100.0, problems=problems)

    assert not summary.sampled
    assert summary.peak_memory_bytes == MIB  # the kernel's figure stands
    assert summary.problems == (
        "no docker stats sample of spx-web-1 (service web): its CPU and its sampled memory are missing",
    )
    assert list(summary.problems) == problems


def test_the_crash_loop_counts_three_kernel_kills_and_two_restarts() -> None:
    series = StatsSeries(WEB_ID, "spx-web-1", "web", LIMIT)
    log = readings((100.229, counters(4 * MIB)), (100.500, counters(40 * MIB)), (101.770, counters(2 * MIB)))

    summary = summary_of(
        "web",
        [tracked(series, log, final=STOPPED_OOM, restarts=(0, 2))],
        t0=100.0,
        events={WEB_ID: crash_loop_events()},
    )

    assert (summary.oom_kills, summary.oom_events, summary.restarts) == (3, 3, 2)
    assert summary.peak_kernel_bytes == LIMIT
    assert "3 PID-1 kills recovered from die events" in summary.oom_kills_source
    assert summary.oom_kills_source.startswith("the kernel's oom_kill counter (cgroup v1 memory.oom_control")


def test_replicas_keep_their_own_series_and_the_service_takes_the_largest_peak_and_summed_cpu() -> None:
    one = series_with("web", "spx-web-1", [(100.0, 30 * MIB), (101.0, 31 * MIB)], 64 * MIB)
    two = series_with("web", "spx-web-2", [(100.4, 50 * MIB), (101.4, 20 * MIB)], 64 * MIB)

    summary = summary_of("web", [tracked(two), tracked(one)], t0=100.0)

    assert summary.container_names == ("spx-web-1", "spx-web-2")
    assert summary.peak_memory_bytes == 50 * MIB
    assert summary.t == pytest.approx((0.0, 0.4, 1.0, 1.4))
    # Memory: the largest replica at each instant; CPU: both replicas' 40 % once both have been sampled.
    assert summary.memory_bytes == (30 * MIB, 50 * MIB, 50 * MIB, 31 * MIB)
    assert summary.cpu_percent == pytest.approx((40.0, 80.0, 80.0, 80.0))
    assert summary.limit_bytes == 64 * MIB


def test_aggregating_one_container_changes_nothing_and_stale_samples_drop_out() -> None:
    assert aggregate_series([[(0.0, 5, 1.0), (1.0, 6, 2.0)]]) == [(0.0, 5, 1.0), (1.0, 6, 2.0)]
    assert aggregate_series([[(0.0, 5, 1.0)], [(3.0, 2, 2.0)]]) == [(0.0, 5, 1.0), (3.0, 2, 2.0)]
    assert aggregate_series([]) == []


def test_restarts_trust_restart_count_when_events_missed_some() -> None:
    series = series_with("web", "spx-web-1", [(100.0, 30 * MIB)], 64 * MIB)

    summary = summary_of("web", [tracked(series, restarts=(1, 4))], t0=100.0, event_restarts=2)

    assert summary.restarts == 3


def test_an_unlimited_service_has_no_peak_ratio() -> None:
    series = series_with("db", "spx-db-1", [(100.0, 30 * MIB)], None)

    summary = summary_of("db", [tracked(series)], t0=100.0)

    assert summary.limit_bytes is None
    assert summary.peak_ratio is None


def report_schema() -> dict[str, Any]:
    """Return report.json's JSON schema (stackprobe/report/schema.json)."""
    path = Path(__file__).resolve().parents[2] / "stackprobe" / "report" / "schema.json"
    return json.loads(path.read_text())


def test_result_sections_have_the_report_schemas_keys() -> None:
    series = series_with("web", "spx-web-1", [(99.0, 40 * MIB), (100.0, 60 * MIB)], 64 * MIB)
    log = readings((99.5, counters(62 * MIB, frozen=True)))
    summary = summary_of("web", [tracked(series, log)], t0=100.0)
    oom = ContainerEvent(
        t=0.25, action="oom", container="spx-web-1", service="web", exit_code=None, container_id=WEB_ID
    )
    result = WatchResult(
        services={"web": summary}, events=(oom,), oom_kills=0, restarts=0, sample_count=2, duration_s=3.0
    )
    schema = report_schema()["properties"]

    memory = result.memory_section("web")
    assert set(memory) == set(schema["memory"]["required"])
    # The memory trend is fitted from the report's series (stackprobe.trend), not by the watch.
    assert memory["trend"] is None
    assert memory["peak_bytes"] == memory["peak_kernel_bytes"] == 62 * MIB
    assert memory["peak_sampled_bytes"] == 60 * MIB
    assert memory["idle_bytes"] == 40 * MIB
    assert memory["frozen_at"] == -0.5
    assert set(result.cpu_section("web")) == set(schema["cpu"]["required"])
    assert result.cpu_section("missing") == dict.fromkeys(result.cpu_section("web"))
    assert set(result.memory_section("missing")) == set(memory)
    assert result.events_section() == [
        {"t": 0.25, "action": "oom", "container": "spx-web-1", "service": "web", "exit_code": None}
    ]
    containers = result.containers_series()
    entry_schema = schema["series"]["properties"]["containers"]["additionalProperties"]
    assert list(containers) == ["spx-web-1"]
    assert set(containers["spx-web-1"]) == set(entry_schema["required"])
    assert containers["spx-web-1"]["service"] == "web"
    assert containers["spx-web-1"]["t"] == [-1.0, 0.0]
    assert containers["spx-web-1"]["memory_bytes"] == [40 * MIB, 60 * MIB]
    assert containers["spx-web-1"]["limit_bytes"] == 64 * MIB
    assert len(containers["spx-web-1"]["cpu_percent"]) == 2


def test_a_container_that_died_and_stayed_down_is_listed_as_stopped() -> None:
    series = series_with("web", "spx-web-1", [(100.0, 30 * MIB)], 64 * MIB)
    log = readings((100.0, counters(30 * MIB)))
    final = FinalState(running=False, exit_code=1, oom_killed=False, restart_count=0)
    summary = summary_of("web", [tracked(series, log, final=final)], t0=100.0)
    result = WatchResult(services={"web": summary}, events=(), oom_kills=0, restarts=0, sample_count=1, duration_s=1)

    assert result.stopped_containers("web") == ["spx-web-1"]
    assert result.stopped_containers("db") == []


def test_a_services_problems_leave_out_other_services_blind_spots() -> None:
    web_series = series_with("web", "spx-web-1", [(100.0, MIB)], None)
    web = summary_of("web", [tracked(web_series, readings((100.0, counters(MIB))))], t0=100.0)
    db = summary_of("db", [tracked(StatsSeries(DB_ID, "spx-db-1", "db", None))], t0=100.0, problems=[])
    cut = "event stream ended before the watch stopped; OOM kills and restarts may be missing"
    result = WatchResult(
        services={"web": web, "db": db},
        events=(),
        oom_kills=0,
        restarts=0,
        sample_count=1,
        duration_s=1,
        problems=(cut, *db.problems),
        watch_problems=(cut,),
    )

    assert web.problems == ()
    assert db.problems
    assert result.problems_for("web") == [cut]
    assert result.problems_for("db") == [cut, *db.problems]


def test_a_die_event_the_watch_got_to_late_still_ends_its_incarnation_at_the_engines_stamp() -> None:
    # The event thread reached the first die 300 ms late; by then the restarted container's new cgroup
    # (created with no process in it yet, its kill counter at 0) had been read. That reading belongs to
    # the second run, not to the first as a final, kill-free reading.
    events = crash_loop_events()
    events[2] = seen("die", 100.614, arrived=100.914, exit_code=137)
    log = readings(
        (100.594, counters(LIMIT, 1)),
        (100.780, counters(0, 0, populated=False)),
        (101.200, counters(50 * MIB)),
        (101.900, counters(30 * MIB)),
    )

    incarnations = account_incarnations(log, events, t0=100.0, final=STOPPED_OOM)

    assert [i.oom_kills for i in incarnations] == [1, 1, 1]
    assert [i.cgroup_reads for i in incarnations] == [1, 2, 1]


def test_a_reading_after_the_oom_stamp_proves_the_kill_even_when_the_event_reached_the_watch_late() -> None:
    events = crash_loop_events()[:3]
    events[1] = seen("oom", 100.592, arrived=100.700)
    log = readings((100.600, counters(LIMIT, 1)))

    (same_host,) = account_incarnations(log, events, t0=100.0)
    (by_exec,) = account_incarnations(log, events, t0=100.0, same_clock=False)

    assert (same_host.oom_kills, same_host.oom_kills_recovered) == (1, 0)
    # Read by exec, perhaps on another host: the engine's stamps are not on this clock, so only the
    # arrival counts, and a reading before it does not prove the kill was in the counter.
    assert (by_exec.oom_kills, by_exec.oom_kills_recovered) == (2, 1)
