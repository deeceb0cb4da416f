"""Figures from Docker stats samples: a real cgroup v1 sample from this engine and a cgroup v2 one."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from stackprobe.metrics import (
    Throttling,
    cgroup_version,
    cpu_percent,
    mean,
    memory_limit_bytes,
    memory_usage_bytes,
    per_second,
    percentile,
    rates_from_totals,
    throttling,
)

DATA = Path(__file__).parent / "data"


def _samples(name: str) -> list[dict[str, Any]]:
    return json.loads((DATA / name).read_text())


@pytest.fixture
def v1() -> list[dict[str, Any]]:
    """Two samples of one container (64 MiB, 0.5 CPU) taken with the SDK on a cgroup v1 engine."""
    return _samples("docker_stats_cgroup_v1.json")


@pytest.fixture
def v2() -> dict[str, Any]:
    """One sample as a cgroup v2 engine reports it (no total_* counters, no percpu_usage)."""
    return _samples("docker_stats_cgroup_v2.json")[0]


def test_memory_on_cgroup_v1_leaves_out_total_inactive_file(v1: list[dict[str, Any]]) -> None:
    # usage 22478848 - total_inactive_file 20217856: the 20 MB file the container wrote is page cache.
    assert memory_usage_bytes(v1[0]) == 2_260_992


def test_memory_on_cgroup_v2_leaves_out_inactive_file(v2: dict[str, Any]) -> None:
    assert memory_usage_bytes(v2) == 196_263_936 - 40_693_760


def test_memory_on_old_engines_leaves_out_cache() -> None:
    sample = {"memory_stats": {"usage": 50_000_000, "stats": {"cache": 12_000_000, "rss": 38_000_000}}}
    assert memory_usage_bytes(sample) == 38_000_000


def test_memory_is_usage_when_cache_is_not_below_usage() -> None:
    # As the docker CLI does: never a negative or zero figure from inconsistent counters.
    sample = {"memory_stats": {"usage": 4096, "stats": {"inactive_file": 8192}}}
    assert memory_usage_bytes(sample) == 4096


def test_memory_of_a_stopped_container_is_unknown() -> None:
    assert memory_usage_bytes({"memory_stats": {}}) is None
    assert memory_limit_bytes({"memory_stats": {}}) is None


def test_memory_limit_is_read_from_the_sample(v1: list[dict[str, Any]], v2: dict[str, Any]) -> None:
    assert memory_limit_bytes(v1[0]) == 64 * 1024 * 1024
    assert memory_limit_bytes(v2) == 256 * 1024 * 1024


def test_cgroup_version_is_told_from_the_counters(v1: list[dict[str, Any]], v2: dict[str, Any]) -> None:
    assert (cgroup_version(v1[0]), cgroup_version(v2), cgroup_version({})) == (1, 2, None)


def test_cpu_percent_uses_precpu_stats_of_the_same_sample(v1: list[dict[str, Any]]) -> None:
    # The container spins under a 0.5 CPU quota: about 50% of one core.
    assert cpu_percent(v1[0]) == pytest.approx(50.547, abs=1e-3)


def test_cpu_percent_between_two_consecutive_samples(v1: list[dict[str, Any]]) -> None:
    assert cpu_percent(v1[1], previous=v1[0]) == pytest.approx(50.525, abs=1e-3)


def test_cpu_percent_on_cgroup_v2_counts_online_cpus(v2: dict[str, Any]) -> None:
    # 0.4 s of CPU in 4 s of system time over 4 CPUs.
    assert cpu_percent(v2) == pytest.approx(40.0)


def test_cpu_percent_without_an_earlier_reading_is_unknown(v1: list[dict[str, Any]]) -> None:
    one_shot = copy.deepcopy(v1[0])
    # What `stats(stream=False, one_shot=True)` returns: precpu_stats without counters.
    one_shot["precpu_stats"] = {"cpu_usage": {"total_usage": 0}, "throttling_data": {}}
    assert cpu_percent(one_shot) is None


def test_cpu_percent_with_zeroed_precpu_stats_is_unknown(v1: list[dict[str, Any]]) -> None:
    sample = copy.deepcopy(v1[0])
    sample["precpu_stats"] = {"cpu_usage": {"total_usage": 0}, "system_cpu_usage": 0, "online_cpus": 0}
    assert cpu_percent(sample) is None


def test_cpu_percent_falls_back_to_percpu_count_when_online_cpus_is_missing(v1: list[dict[str, Any]]) -> None:
    sample = copy.deepcopy(v1[0])
    del sample["cpu_stats"]["online_cpus"]
    assert cpu_percent(sample) == pytest.approx(50.547, abs=1e-3)


def test_cpu_percent_after_a_counter_reset_is_zero(v1: list[dict[str, Any]]) -> None:
    # A restarted container starts its cpu counter again from zero.
    assert cpu_percent(v1[0], previous=v1[1]) == 0.0


def test_throttling_converts_nanoseconds_to_seconds(v1: list[dict[str, Any]], v2: dict[str, Any]) -> None:
    assert throttling(v1[1]) == Throttling(periods=63, throttled_periods=60, throttled_seconds=2.95077499)
    assert throttling(v2) == Throttling(periods=1204, throttled_periods=311, throttled_seconds=27.53184)


def test_throttling_is_unknown_without_throttling_data() -> None:
    assert throttling({"cpu_stats": {}}) is None


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        ([10.0], 95, 10.0),
        ([1.0, 2.0], 50, 1.5),
        ([1.0, 2.0, 3.0, 4.0, 5.0], 0, 1.0),
        ([1.0, 2.0, 3.0, 4.0, 5.0], 100, 5.0),
        ([5.0, 1.0, 4.0, 2.0, 3.0], 50, 3.0),
        ([1.0, 2.0, 3.0, 4.0], 95, 3.85),
    ],
)
def test_percentile_interpolates_linearly_between_ranks(values: list[float], q: float, expected: float) -> None:
    assert percentile(values, q) == pytest.approx(expected)


def test_percentile_of_nothing_is_unknown() -> None:
    assert percentile([], 95) is None


def test_percentile_out_of_range_is_refused() -> None:
    with pytest.raises(ValueError, match=r"0\.\.100"):
        percentile([1.0], 101)


def test_mean_of_nothing_is_unknown() -> None:
    assert (mean([]), mean([1.0, 2.0, 6.0])) == (None, 3.0)


def test_per_second_with_no_time_is_zero() -> None:
    assert (per_second(10, 2.0), per_second(10, 0.0)) == (5.0, 0.0)


def test_rates_from_totals_are_per_interval() -> None:
    assert rates_from_totals([0, 1, 2, 4], [0, 10, 30, 30]) == [0.0, 10.0, 20.0, 0.0]


def test_rates_from_totals_treat_a_reset_as_zero() -> None:
    assert rates_from_totals([0, 1, 2], [50, 60, 5]) == [0.0, 10.0, 0.0]


def test_rates_from_totals_need_one_total_per_time() -> None:
    with pytest.raises(ValueError, match="3 points"):
        rates_from_totals([0, 1, 2], [1, 2])
