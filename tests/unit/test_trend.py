"""The memory trend: Theil-Sen on synthetic series (a GC saw-tooth, a leak, a warm-up) and on a report."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import numpy as np
import pytest

from stackprobe.report import load_report, load_schema
from stackprobe.report.model import ContainerSeries, Event, Load, Report, Series, Target
from stackprobe.trend import MAX_POINTS, MIN_POINTS, default_warmup, fit_trend, target_trend

DATA = Path(__file__).parent / "data"
MIB = 1024 * 1024
LIMIT = 256 * MIB
# A 5-minute run sampled about once a second, with 5 idle samples before the load.
DURATION = 300.0
T = np.arange(-5.0, DURATION + 1, 1.0)


def _noise(seed: int, size: int, mib: float) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.0, mib * MIB, size)


def _sawtooth(t: np.ndarray, seed: int = 1) -> list[int]:
    """A collector's saw-tooth over a flat base: 80 MiB climbing to 100 MiB every 13 s, then collected."""
    return list((80 * MIB + 20 * MIB * ((t % 13.0) / 13.0) + _noise(seed, t.size, 0.5)).astype(int))


def _leak(t: np.ndarray, mib_per_min: float = 2.0, seed: int = 2) -> list[int]:
    """A steady leak from 100 MiB with 1 MiB of noise, under a small saw-tooth."""
    tooth = 4 * MIB * ((t % 7.0) / 7.0)
    return list((100 * MIB + mib_per_min * MIB / 60 * t + tooth + _noise(seed, t.size, 1.0)).astype(int))


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_a_flat_sawtooth_is_not_a_leak(seed: int) -> None:
    trend = fit_trend(list(T), _sawtooth(T, seed), load_duration_s=DURATION, limit_bytes=LIMIT)
    assert trend is not None
    assert trend.slope_low is not None
    assert trend.slope_high is not None
    assert trend.slope_low <= 0 <= trend.slope_high
    assert abs(trend.slope_mib_per_min or 0) < 1
    assert trend.time_to_limit_s is None


def test_a_steady_leak_is_found_within_its_interval_and_its_time_to_limit_is_right() -> None:
    trend = fit_trend(list(T), _leak(T), load_duration_s=DURATION, limit_bytes=LIMIT)
    assert trend is not None
    assert trend.slope_mib_per_min is not None
    assert trend.slope_low is not None
    assert trend.slope_high is not None
    assert trend.intercept_bytes is not None
    assert 0 < trend.slope_low <= 2.0 <= trend.slope_high
    assert trend.slope_low <= trend.slope_mib_per_min <= trend.slope_high
    assert abs(trend.slope_mib_per_min - 2.0) < 0.2
    # The fitted line, carried on from the load's end until it meets the limit.
    per_s = trend.slope_mib_per_min * MIB / 60
    at_end = trend.intercept_bytes + per_s * DURATION
    assert trend.time_to_limit_s == pytest.approx((LIMIT - at_end) / per_s, abs=0.5)
    # And against the truth: 100 MiB + 2 MiB (the tooth's middle) + 10 MiB by the end, 144 MiB to go at
    # 2 MiB/min: 72 minutes.
    assert trend.time_to_limit_s == pytest.approx(72 * 60, rel=0.1)
    assert trend.confidence == 0.95
    assert trend.source.startswith("Theil-Sen slope (scipy.stats.theilslopes, 95 % CI) of 241 docker stats samples")
    assert trend.source.endswith("from t=60 s to t=300 s, after a 60 s warm-up")


def test_a_wider_confidence_gives_a_wider_interval() -> None:
    narrow = fit_trend(list(T), _leak(T), load_duration_s=DURATION, limit_bytes=LIMIT, confidence=0.8)
    wide = fit_trend(list(T), _leak(T), load_duration_s=DURATION, limit_bytes=LIMIT, confidence=0.99)
    assert narrow is not None
    assert wide is not None
    assert (wide.slope_low or 0) < (narrow.slope_low or 0) <= (narrow.slope_high or 0) < (wide.slope_high or 0)
    assert "99 % CI" in wide.source


def test_the_warm_up_is_left_out() -> None:
    # Memory climbs 60 MiB while the service warms up (the first 60 s: the default 20 %), then holds.
    memory = list((40 * MIB + np.clip(T, 0, 60) * MIB + _noise(3, T.size, 1.0)).astype(int))
    trend = fit_trend(list(T), memory, load_duration_s=DURATION, limit_bytes=LIMIT)
    assert trend is not None
    assert trend.warmup_s == default_warmup(DURATION) == 60.0
    assert trend.points == 241
    assert (trend.slope_low or 0) <= 0 <= (trend.slope_high or 0)
    assert trend.time_to_limit_s is None
    # Whatever memory does in the warm-up changes nothing.
    wild = [m * 3 if x < 60 else m for x, m in zip(T, memory, strict=True)]
    assert fit_trend(list(T), wild, load_duration_s=DURATION, limit_bytes=LIMIT) == trend
    # Without the warm-up the climb reads as growth that would reach the limit.
    unwarmed = fit_trend(list(T), memory, warmup_s=0, load_duration_s=DURATION, limit_bytes=LIMIT)
    assert unwarmed is not None
    assert unwarmed.points == 301
    assert (unwarmed.slope_low or 0) > 0
    assert unwarmed.time_to_limit_s is not None


def test_idle_samples_and_samples_after_the_load_are_left_out() -> None:
    t = np.arange(-30.0, 100.0, 1.0)
    # Wild values before the load and after its end (t > 60) must not tilt a flat series.
    memory = [int(500 * MIB if x < 0 or x > 60 else 50 * MIB) for x in t]
    trend = fit_trend(list(t), memory, warmup_s=0, load_duration_s=60.0, limit_bytes=LIMIT)
    assert trend is not None
    assert trend.points == 61
    assert trend.slope_mib_per_min == 0


def test_too_few_points_give_no_trend() -> None:
    t = [float(x) for x in range(12, 12 + MIN_POINTS)]
    memory = [int(50 * MIB + x * MIB) for x in range(MIN_POINTS)]
    assert fit_trend(t[:-1], memory[:-1], load_duration_s=60.0, limit_bytes=LIMIT) is None
    assert fit_trend(t, memory, load_duration_s=60.0, limit_bytes=LIMIT) is not None
    # Plenty of samples, but all in the warm-up.
    assert fit_trend(list(T), _leak(T), load_duration_s=DURATION, warmup_s=DURATION, limit_bytes=LIMIT) is None
    assert fit_trend([], [], load_duration_s=60.0, limit_bytes=LIMIT) is None


def test_no_limit_or_a_falling_slope_gives_no_time_to_limit() -> None:
    unlimited = fit_trend(list(T), _leak(T), load_duration_s=DURATION, limit_bytes=None)
    assert unlimited is not None
    assert (unlimited.slope_low or 0) > 0
    assert unlimited.time_to_limit_s is None
    falling = fit_trend(list(T), _leak(T, mib_per_min=-2.0), load_duration_s=DURATION, limit_bytes=LIMIT)
    assert falling is not None
    assert (falling.slope_high or 0) < 0
    assert falling.time_to_limit_s is None


def test_a_line_already_at_the_limit_reaches_it_at_once() -> None:
    trend = fit_trend(list(T), _leak(T, mib_per_min=30.0), load_duration_s=DURATION, limit_bytes=200 * MIB)
    assert trend is not None
    assert trend.time_to_limit_s == 0


def test_a_long_soak_is_thinned_and_fitted_alike() -> None:
    t = np.arange(0.0, 3600.0, 0.5)
    trend = fit_trend(list(t), _leak(t, mib_per_min=0.1), load_duration_s=3600.0, limit_bytes=LIMIT)
    assert trend is not None
    assert MAX_POINTS // 2 <= trend.points <= MAX_POINTS
    assert f"{trend.points} (one in 4) of 5760 docker stats samples" in trend.source
    assert (trend.slope_low or 0) <= 0.1 <= (trend.slope_high or 0)


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="confidence"):
        fit_trend([0.0], [1], load_duration_s=1.0, limit_bytes=None, confidence=95)
    with pytest.raises(ValueError, match="2 times for 1 memory samples"):
        fit_trend([0.0, 1.0], [1], load_duration_s=1.0, limit_bytes=None)


def _series(service: str, memory: list[int], limit: int | None = LIMIT) -> ContainerSeries:
    return ContainerSeries(service=service, t=list(T), memory_bytes=memory, limit_bytes=limit, cpu_percent=[])


def _report(**containers: ContainerSeries) -> Report:
    return Report(
        target=Target(service="app"),
        load=Load(duration_s=DURATION, shape="steady"),
        series=Series(containers=containers),
    )


def test_the_target_services_series_is_fitted_and_named() -> None:
    report = _report(**{"p-app-1": _series("app", _leak(T)), "p-db-1": _series("db", _leak(T, 20.0), None)})
    trend = target_trend(report)
    assert trend is not None
    assert abs((trend.slope_mib_per_min or 0) - 2.0) < 0.2
    assert "docker stats samples of p-app-1 from t=60 s" in trend.source
    assert "p-db-1" not in trend.source


def test_with_replicas_the_first_to_reach_its_limit_is_reported() -> None:
    report = _report(
        **{
            "p-app-1": _series("app", _leak(T, 1.0)),
            "p-app-2": _series("app", _leak(T, 3.0)),
            "p-app-3": _series("app", _sawtooth(T)),
        }
    )
    trend = target_trend(report)
    assert trend is not None
    assert abs((trend.slope_mib_per_min or 0) - 3.0) < 0.3
    assert "of p-app-2" in trend.source
    assert trend.source.endswith("; the first to reach its limit of the 3 containers of app")


def test_with_replicas_and_no_limit_the_steepest_is_reported() -> None:
    report = _report(**{"p-app-1": _series("app", _leak(T, 1.0), None), "p-app-2": _series("app", _leak(T, 3.0), None)})
    trend = target_trend(report)
    assert trend is not None
    assert "of p-app-2" in trend.source
    assert trend.source.endswith("; the steepest of the 2 containers of app")


def test_a_restarted_container_is_fitted_from_its_restart_after_a_warm_up_of_its_own() -> None:
    report = load_report(DATA / "report_oom.json")
    trend = target_trend(report)
    assert trend is not None
    # Restarted at t=42.5 s after its OOM kill; the warm-up is 12 s (20 % of 60 s).
    assert trend.warmup_s == 54.5
    assert trend.points == 12
    assert trend.source.endswith("from t=54.5 s to t=60 s, 12 s after its restart at t=42.5 s")
    # Without the restart, the fit would span the kill: the drop hides the growth.
    report.events = [e for e in report.events if e.action not in ("die", "start", "restart")]
    spanning = target_trend(report)
    assert spanning is not None
    assert spanning.warmup_s == 12
    assert (spanning.slope_low or 0) < 0 < (spanning.slope_high or 0)


def test_the_warm_up_and_load_end_can_be_given() -> None:
    report = _report(**{"p-app-1": _series("app", _leak(T))})
    report.events.append(Event(t=-3.0, action="start", container="p-app-1", service="app"))
    trend = target_trend(report, warmup_s=30, load_duration_s=200.0)
    assert trend is not None
    assert trend.warmup_s == 30
    assert trend.points == 171
    assert trend.source.endswith("from t=30 s to t=200 s, after a 30 s warm-up")


def test_no_series_of_the_target_gives_no_trend() -> None:
    assert target_trend(Report()) is None
    assert target_trend(_report(**{"p-db-1": _series("db", _leak(T))})) is None


def test_a_fitted_trend_fits_the_report_schema() -> None:
    report = load_report(DATA / "report_oom.json")
    report.memory.trend = target_trend(report)
    jsonschema.validate(report.to_dict(), load_schema())
    assert Report.from_json(report.to_json()).memory.trend == report.memory.trend
