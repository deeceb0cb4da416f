"""The memory trend of a run: the slope of the target's memory after a warm-up, and when it would hit the limit.

The fit is Theil-Sen (scipy.stats.theilslopes): the median of the slopes between every pair of samples, with
its confidence interval from Kendall's tau. A garbage collector's saw-tooth (memory climbing, then dropping
back) gives as many falling pairs as rising ones, so it reads as flat, where a least-squares line would tilt
with wherever the window happens to cut the last tooth; a few outlying samples do not move it either.

Which series: `docker stats` samples of the target service's containers (about one a second), from the
warm-up to the load's end. With replicas, each container is fitted on its own (each has its own limit) and
the trend reported is the one that reaches its limit soonest, else the steepest. A container that died or
was restarted during the load is fitted from its last start on, after a warm-up of its own.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from scipy.stats import theilslopes

from stackprobe.report.model import MemoryTrend, Report

MIB = 1024 * 1024
# Fewer samples than this after the warm-up give no trend: the interval would say nothing.
MIN_POINTS = 10
# At most this many samples are fitted: Theil-Sen takes every pair (n^2 memory and time), and an hour's
# soak holds thousands of samples. Longer series are thinned evenly (every k-th sample), which leaves the
# slope unbiased and widens its interval a little.
MAX_POINTS = 1500
# The warm-up when none is given: this share of the load's duration.
DEFAULT_WARMUP_SHARE = 0.2
# Events after which a container's memory starts again from its process's start.
_RESTARTING = ("die", "start", "restart")


def default_warmup(load_duration_s: float) -> float:
    """Return the warm-up used when none is given: the first 20 % of the load."""
    return DEFAULT_WARMUP_SHARE * max(load_duration_s, 0.0)


def fit_trend(
    t: Sequence[float],
    memory_bytes: Sequence[int],
    *,
    warmup_s: float | None = None,
    load_duration_s: float,
    limit_bytes: int | None,
    confidence: float = 0.95,
    series: str = "docker stats samples",
    warmup_note: str | None = None,
) -> MemoryTrend | None:
    """Fit memory against time after the warm-up, by Theil-Sen; None when fewer than 10 samples remain.

    t: seconds on the run's axis (0 = the load's start; earlier samples are idle and left out, and so are
    samples after load_duration_s). warmup_s: seconds from the load's start left out (default: 20 % of the
    load). The slope and its interval are in MiB/min; time_to_limit_s is the time after the load's end at
    which the fitted line reaches limit_bytes, None when the interval includes 0 (no growth shown), the
    slope falls, or there is no limit. `series` names the samples in the trend's source, and `warmup_note`
    what was left out before them (default: "after a 12 s warm-up").
    """
    if not 0.5 < confidence < 1:
        raise ValueError(f"confidence must be between 0.5 and 1, got {confidence}")
    if len(t) != len(memory_bytes):
        raise ValueError(f"{len(t)} times for {len(memory_bytes)} memory samples")
    warmup = default_warmup(load_duration_s) if warmup_s is None else max(float(warmup_s), 0.0)
    kept = [(x, float(y)) for x, y in zip(t, memory_bytes, strict=True) if warmup <= x <= load_duration_s]
    if len(kept) < MIN_POINTS or len({x for x, _ in kept}) < 2:
        return None
    sampled = len(kept)
    if sampled > MAX_POINTS:
        kept = kept[:: math.ceil(sampled / MAX_POINTS)]
    xs, ys = zip(*kept, strict=True)
    slope, intercept, low, high = (float(v) for v in theilslopes(ys, xs, confidence))
    if not all(math.isfinite(v) for v in (slope, intercept, low, high)):
        return None
    per_min = 60 / MIB  # bytes per second -> MiB per minute
    percent = f"{confidence * 100:g}"
    return MemoryTrend(
        slope_mib_per_min=round(slope * per_min, 4),
        slope_low=round(low * per_min, 4),
        slope_high=round(high * per_min, 4),
        confidence=confidence,
        intercept_bytes=round(intercept, 1),
        warmup_s=round(warmup, 3),
        points=len(kept),
        time_to_limit_s=_time_to_limit(slope, low, intercept, load_duration_s, limit_bytes),
        source=(
            f"Theil-Sen slope (scipy.stats.theilslopes, {percent} % CI) of {_count(len(kept), sampled)} {series} "
            f"from t={_seconds(min(xs))} s to t={_seconds(max(xs))} s, "
            f"{warmup_note or f'after a {_seconds(warmup)} s warm-up'}"
        ),
    )


def _count(fitted: int, sampled: int) -> str:
    """Return how many samples were fitted: "97", or "1440 (one in 5) of 7200"."""
    if fitted == sampled:
        return str(fitted)
    return f"{fitted} (one in {math.ceil(sampled / MAX_POINTS)}) of {sampled}"


def _seconds(value: float) -> str:
    """Return seconds to a tenth, without a trailing ".0": "12", "54.5"."""
    return f"{value:.1f}".removesuffix(".0")


def _time_to_limit(
    slope: float, low: float, intercept: float, load_end_s: float, limit_bytes: int | None
) -> float | None:
    """Return seconds after the load's end until the fitted line reaches the limit (0: it already has)."""
    if limit_bytes is None or limit_bytes <= 0 or low <= 0 or slope <= 0:
        return None
    at_end = intercept + slope * load_end_s
    return round(max(0.0, (limit_bytes - at_end) / slope), 1)


def target_trend(
    report: Report,
    *,
    warmup_s: float | None = None,
    load_duration_s: float | None = None,
    confidence: float = 0.95,
) -> MemoryTrend | None:
    """Return the memory trend of the report's target service (report.memory.trend), None when not fitted.

    Reads report.series.containers (the target's entries), report.events (a container restarted during the
    load is fitted from its last start) and the limits. load_duration_s: where the load ended on the run's
    axis (default: the load's asked duration). With replicas, the container that reaches its limit soonest
    is reported, else the steepest; the source names it.
    """
    end = report.load.duration_s if load_duration_s is None else load_duration_s
    warmup = default_warmup(end) if warmup_s is None else warmup_s
    service = report.target.service
    members = {name: c for name, c in report.series.containers.items() if c.service == service}
    fits: list[tuple[str, MemoryTrend]] = []
    for name, container in sorted(members.items()):
        restarted = [e.t for e in report.events if e.container == name and e.action in _RESTARTING and 0 < e.t < end]
        start = max(warmup, max(restarted) + warmup) if restarted else warmup
        limit = container.limit_bytes if container.limit_bytes is not None else report.memory.limit_bytes
        note = f"after a {_seconds(warmup)} s warm-up"
        if restarted:
            note = f"{_seconds(warmup)} s after its restart at t={_seconds(max(restarted))} s"
        trend = fit_trend(
            container.t,
            container.memory_bytes,
            warmup_s=start,
            load_duration_s=end,
            limit_bytes=limit,
            confidence=confidence,
            series=f"docker stats samples of {name}",
            warmup_note=note,
        )
        if trend is not None:
            fits.append((name, trend))
    if not fits:
        return None
    _, chosen = min(fits, key=_urgency)
    if len(members) > 1:
        rule = "the first to reach its limit" if chosen.time_to_limit_s is not None else "the steepest"
        chosen.source += f"; {rule} of the {len(members)} containers of {service}"
    return chosen


def _urgency(fit: tuple[str, MemoryTrend]) -> tuple[bool, float, float]:
    """Order fits by how soon they reach their limit, then by how steeply they grow."""
    trend = fit[1]
    ttl = trend.time_to_limit_s
    return (ttl is None, ttl if ttl is not None else 0.0, -(trend.slope_mib_per_min or 0.0))
