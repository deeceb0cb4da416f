"""Figures from Docker stats API samples and plain number lists; pure functions, no Docker."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

Sample = Mapping[str, Any]

# Page-cache counters `docker stats` leaves out of "MEM USAGE", in the order the docker CLI tries them:
# cgroup v1 (hierarchical total), cgroup v2, then engines older than 19.03 that only reported "cache".
_CACHE_KEYS = ("total_inactive_file", "inactive_file", "cache")


@dataclass(frozen=True)
class Throttling:
    """CFS throttling counters of a container since it started."""

    periods: int
    throttled_periods: int
    throttled_seconds: float


def memory_usage_bytes(sample: Sample) -> int | None:
    """Return memory in use as `docker stats` shows it (usage less inactive page cache); None if absent."""
    memory = sample.get("memory_stats") or {}
    usage = memory.get("usage")
    if usage is None:
        # A stopped container's sample has an empty memory_stats.
        return None
    counters = memory.get("stats") or {}
    for key in _CACHE_KEYS:
        cache = counters.get(key)
        if cache is not None:
            # Like the docker CLI: subtract only when the cache figure is below usage, so never negative.
            return int(usage - cache) if cache < usage else int(usage)
    return int(usage)


def memory_limit_bytes(sample: Sample) -> int | None:
    """Return the memory limit the sample reports (the host's memory when the container has none)."""
    limit = (sample.get("memory_stats") or {}).get("limit")
    return int(limit) if limit is not None else None


def cgroup_version(sample: Sample) -> int | None:
    """Return 1 or 2 from the memory counters' names, or None when the sample has none."""
    counters = (sample.get("memory_stats") or {}).get("stats") or {}
    if "total_inactive_file" in counters or "hierarchical_memory_limit" in counters:
        return 1
    if "inactive_file" in counters or "anon" in counters:
        return 2
    return None


def cpu_percent(sample: Sample, previous: Sample | None = None) -> float | None:
    """Return CPU use in percent of one core since `previous` (or the sample's own precpu_stats).

    The docker CLI formula: cpu_delta / system_delta * online_cpus * 100. None when there is no
    earlier reading to compare with (a one-shot sample's precpu_stats is empty).
    """
    now = sample.get("cpu_stats") or {}
    before = (previous.get("cpu_stats") if previous is not None else sample.get("precpu_stats")) or {}
    cpu_now = (now.get("cpu_usage") or {}).get("total_usage")
    cpu_before = (before.get("cpu_usage") or {}).get("total_usage")
    system_now = now.get("system_cpu_usage")
    system_before = before.get("system_cpu_usage")
    # A zero system counter is an empty reading (engines fill precpu_stats with zeros), not a baseline.
    if cpu_now is None or cpu_before is None or not system_now or not system_before:
        return None
    cpus = now.get("online_cpus") or len((now.get("cpu_usage") or {}).get("percpu_usage") or ()) or 1
    cpu_delta = cpu_now - cpu_before
    system_delta = system_now - system_before
    if cpu_delta <= 0 or system_delta <= 0:
        # A restarted container resets its counters; that interval says nothing, so report idle.
        return 0.0
    return cpu_delta / system_delta * cpus * 100.0


def throttling(sample: Sample) -> Throttling | None:
    """Return the sample's CFS throttling counters, throttled time in seconds; None if absent."""
    data = (sample.get("cpu_stats") or {}).get("throttling_data")
    if not data:
        return None
    return Throttling(
        periods=int(data.get("periods", 0)),
        throttled_periods=int(data.get("throttled_periods", 0)),
        throttled_seconds=int(data.get("throttled_time", 0)) / 1e9,
    )


def percentile(values: Sequence[float], q: float) -> float | None:
    """Return the q-th percentile (0..100) by linear interpolation between closest ranks; None if empty.

    Linear interpolation (numpy's default method) so that p50 of two values is their mean; Locust's
    own percentiles are rounded buckets, so figures from here and from Locust differ in small ways.
    """
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be within 0..100, got {q}")
    ordered = sorted(values)
    if not ordered:
        return None
    position = (len(ordered) - 1) * q / 100
    lower = math.floor(position)
    upper = min(lower + 1, len(ordered) - 1)
    fraction = position - lower
    return ordered[lower] + (ordered[upper] - ordered[lower]) * fraction


def mean(values: Sequence[float]) -> float | None:
    """Return the arithmetic mean, or None when there are no values."""
    return math.fsum(values) / len(values) if values else None


def per_second(count: float, seconds: float) -> float:
    """Return count / seconds, or 0.0 when no time passed."""
    return count / seconds if seconds > 0 else 0.0


def rates_from_totals(t: Sequence[float], totals: Sequence[float]) -> list[float]:
    """Turn a running total sampled at times t into a rate per second for each interval.

    The first point has no interval before it and gets 0.0. A total that went down (counters were
    reset) counts as 0 for that interval rather than as a negative rate.
    """
    if len(t) != len(totals):
        raise ValueError(f"t has {len(t)} points but totals has {len(totals)}")
    rates = [0.0] * len(t)
    for i in range(1, len(t)):
        rates[i] = per_second(max(totals[i] - totals[i - 1], 0), t[i] - t[i - 1])
    return rates
