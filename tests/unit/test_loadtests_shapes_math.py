"""The load shapes' arithmetic: users over time, the SLO grammar and the step search (no Locust involved)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from loadtests._shapes_math import (
    Load,
    StepSearch,
    Tick,
    Totals,
    Window,
    evaluate,
    parse_duration,
    parse_slo,
    percentile,
    ramp,
    requested_shape,
    soak,
    spike,
    steady,
    window_between,
)

REPO = Path(__file__).resolve().parents[2]


def _window(requests: int = 0, failures: int = 0, hist: dict[int, int] | None = None, seconds: float = 1.0) -> Window:
    hist = hist or {}
    return Window(requests, failures, float(sum(ms * n for ms, n in hist.items())), hist, seconds)


def test_pure_modules_import_without_locust_or_gevent() -> None:
    code = (
        "import sys; import loadtests._shapes_math, loadtests._users_api; "
        "bad = [m for m in ('locust', 'gevent') if m in sys.modules]; sys.exit(f'imported {bad}' if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


# --- choosing a shape --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "environ", "expected"),
    [
        ([], {}, ""),
        ([], {"LOCUST_SHAPE": "ramp"}, "ramp"),
        (["-f", "loadtests", "--shape", "spike"], {"LOCUST_SHAPE": "ramp"}, "spike"),
        (["--shape=step", "--headless"], {}, "step"),
        (["--shape", "ramp", "--shape", "soak"], {}, "soak"),
        (["--shape"], {"LOCUST_SHAPE": " steady "}, "steady"),
    ],
)
def test_command_line_shape_wins_over_the_environment(argv: list[str], environ: dict[str, str], expected: str) -> None:
    assert requested_shape(argv, environ) == expected


@pytest.mark.parametrize(
    ("text", "seconds"), [("10", 10.0), ("10s", 10.0), ("2m", 120.0), ("1h30m", 5400.0), ("0.5s", 0.5)]
)
def test_durations_read_like_locust_run_times(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "0", "0s", "-5", "ten", "5x", "inf"])
def test_durations_that_are_not_positive_spans_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(text)


# --- users over time ---------------------------------------------------------------------------------------


def test_steady_holds_users_until_run_time_then_stops() -> None:
    load = Load(users=20, spawn_rate=5, run_time=60)
    assert [steady(t, load) for t in (0, 30, 59.9)] == [Tick(20, 5)] * 3
    assert steady(60, load) is None


def test_steady_without_run_time_never_stops() -> None:
    assert steady(10**6, Load(3, 1)) == Tick(3, 1)


def test_soak_lasts_an_hour_when_no_run_time_is_given() -> None:
    assert soak(3599, Load(10, 2)) == Tick(10, 2)
    assert soak(3600, Load(10, 2)) is None
    assert soak(30, Load(10, 2, run_time=30)) is None


def test_ramp_climbs_linearly_from_one_user_to_all() -> None:
    load = Load(users=100, spawn_rate=1, run_time=100)
    users = [ramp(t, load).users for t in (0, 10, 50, 99.5)]  # type: ignore[union-attr]
    assert users == [1, 10, 50, 100]
    assert ramp(100, load) is None


def test_ramp_spawns_at_least_as_fast_as_its_slope() -> None:
    tick = ramp(1, Load(users=600, spawn_rate=1, run_time=60))
    assert tick is not None
    assert tick.spawn_rate == 10


def test_spike_jumps_from_a_baseline_to_all_users_and_back() -> None:
    load = Load(users=50, spawn_rate=2, run_time=100)
    assert spike(0, load) == Tick(5, 2)
    assert spike(39.9, load) == Tick(5, 2)
    assert spike(40, load) == Tick(50, 45)
    assert spike(59.9, load) == Tick(50, 45)
    assert spike(60, load) == Tick(5, 45)
    assert spike(100, load) is None


def test_spike_baseline_is_at_least_one_user() -> None:
    assert spike(0, Load(users=3, spawn_rate=1, run_time=10)) == Tick(1, 1)


# --- SLO grammar -------------------------------------------------------------------------------------------


def test_slo_terms_are_normalised_to_ms_ratios_and_rps() -> None:
    checks = parse_slo(" p95<200ms, p99.9 <= 1.5s ,errors<1%, avg<50, rps>=20/s, max<2s, errors<0.05 ")
    assert [(c.metric, c.op, c.threshold) for c in checks] == [
        ("p95", "<", 200.0),
        ("p99.9", "<=", 1500.0),
        ("errors", "<", 0.01),
        ("avg", "<", 50.0),
        ("rps", ">=", 20.0),
        ("max", "<", 2000.0),
        ("errors", "<", 0.05),
    ]


def test_empty_slo_has_no_checks() -> None:
    assert parse_slo("") == []
    assert parse_slo(" , ") == []


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ("p95<<200ms", "expected <metric><op><number>"),
        ("latency<200ms", "expected <metric><op><number>"),
        ("p95<200kb", "expected <metric><op><number>"),
        ("p95<200%", "latency is in ms or s"),
        ("errors<5", "did you mean 5%"),
        ("errors<1ms", "errors are a percentage"),
        ("rps>5%", "rps is requests per second"),
        ("p100<5", "between p0 and p100"),
        ("p95<200ms,errors", "'errors'"),
    ],
)
def test_malformed_slo_terms_are_refused_by_name(spec: str, problem: str) -> None:
    with pytest.raises(ValueError, match="invalid SLO term") as error:
        parse_slo(spec)
    assert problem in str(error.value)


def test_percentile_matches_locusts_histogram_rule() -> None:
    # locust.stats.calculate_response_time_percentile gives 10, 250, 1000, 1000 for this histogram.
    hist = {10: 90, 250: 5, 1000: 5}
    assert [percentile(hist, p) for p in (0.50, 0.90, 0.95, 0.99)] == [10, 250, 1000, 1000]
    assert percentile({}, 0.95) is None


def test_checks_are_judged_on_the_window() -> None:
    window = _window(requests=100, failures=2, hist={10: 90, 250: 10}, seconds=4)
    verdicts = evaluate(parse_slo("p95<200ms,errors<1%,rps>20,avg<50ms,max<=250"), window)
    assert [(v.check.metric, v.actual, v.passed) for v in verdicts] == [
        ("p95", 250.0, False),
        ("errors", 0.02, False),
        ("rps", 25.0, True),
        ("avg", 34.0, True),
        ("max", 250.0, True),
    ]


def test_a_window_without_requests_fails_latency_and_error_checks() -> None:
    verdicts = evaluate(parse_slo("p95<200ms,errors<1%"), _window())
    assert [v.passed for v in verdicts] == [False, False]
    assert verdicts[0].describe() == "p95=n/a (p95<200ms: fail)"


def test_window_between_subtracts_cumulative_totals() -> None:
    start = Totals(requests=10, failures=1, total_response_time_ms=100, response_times={5: 8, 20: 2})
    end = Totals(requests=25, failures=1, total_response_time_ms=400, response_times={5: 18, 20: 2, 40: 5})
    window = window_between(start, end, seconds=3)
    assert window == Window(15, 0, 300, {5: 10, 40: 5}, 3)


# --- step search -------------------------------------------------------------------------------------------


def _run_search(search: StepSearch, p95_at: dict[int, int], seconds: int = 200) -> list[int | None]:
    """Tick once a second, each second adding 100 requests at the latency the current users get."""
    totals = Totals()
    users: int | None = search.tick(0, totals)
    seen = [users]
    for t in range(1, seconds):
        if users is None:
            break
        latency = p95_at[users]
        hist = dict(totals.response_times)
        hist[latency] = hist.get(latency, 0) + 100
        totals = Totals(totals.requests + 100, 0, totals.total_response_time_ms + 100 * latency, hist)
        users = search.tick(t, totals)
        seen.append(users)
    return seen


def test_step_search_raises_users_until_the_slo_breaks() -> None:
    search = StepSearch(parse_slo("p95<200ms"), step_users=10, step_time=5, max_users=100, spawn_rate=10)
    seen = _run_search(search, {10: 50, 20: 100, 30: 150, 40: 300})
    assert seen == [10] * 5 + [20] * 5 + [30] * 5 + [40] * 5 + [None]
    assert search.last_passing_users == 30
    assert search.first_failing_users == 40
    assert search.stop_reason == "SLO broken"


def test_step_search_judges_each_step_after_its_users_started() -> None:
    search = StepSearch(parse_slo("p95<200ms"), step_users=10, step_time=6, max_users=20, spawn_rate=5)
    _run_search(search, {10: 50, 20: 50})
    # 10 new users at 5/s need 2 s, so each 6-s step is judged on its last 4 s.
    assert [step.window.seconds for step in search.steps] == [4, 4]
    assert [step.window.requests for step in search.steps] == [400, 400]


def test_step_search_stops_at_max_users_when_the_slo_always_holds() -> None:
    search = StepSearch(parse_slo("p95<200ms"), step_users=5, step_time=3, max_users=12, spawn_rate=100)
    seen = _run_search(search, {5: 10, 10: 10, 12: 10})
    assert [u for u in seen if u is not None] == [5] * 3 + [10] * 3 + [12] * 3
    assert search.last_passing_users == 12
    assert search.first_failing_users is None
    assert search.stop_reason == "max users reached"


def test_step_search_ends_at_run_time_with_the_last_passing_step() -> None:
    search = StepSearch(parse_slo("errors<1%"), step_users=1, step_time=4, max_users=50, spawn_rate=1, run_time=10)
    _run_search(search, dict.fromkeys(range(1, 51), 5))
    assert search.stop_reason == "run time reached"
    assert search.last_passing_users == 2


def test_step_search_restarts_its_window_when_stats_are_reset() -> None:
    search = StepSearch(parse_slo("errors<1%"), step_users=1, step_time=4, max_users=1, spawn_rate=10)
    search.tick(0, Totals())
    search.tick(1, Totals(requests=500, failures=100))
    # The stats were reset (e.g. from the web UI): judge only what came after.
    search.tick(2, Totals(requests=10))
    assert search.tick(4, Totals(requests=60)) is None
    assert search.steps[0].window.requests == 50
    assert search.steps[0].passed


def test_step_search_summary_is_plain_data() -> None:
    search = StepSearch(parse_slo("p95<200ms"), step_users=10, step_time=2, max_users=20, spawn_rate=100)
    _run_search(search, {10: 20, 20: 400})
    summary = search.summary()
    assert summary["last_passing_users"] == 10
    assert summary["first_failing_users"] == 20
    assert summary["steps"] == [
        {"users": 10, "requests": 100, "seconds": 1, "passed": True, "checks": {"p95<200ms": 20.0}},
        {"users": 20, "requests": 100, "seconds": 1, "passed": False, "checks": {"p95<200ms": 400.0}},
    ]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"step_users": 0, "step_time": 5, "max_users": 10, "spawn_rate": 1},
        {"step_users": 1, "step_time": 0, "max_users": 10, "spawn_rate": 1},
        {"step_users": 1, "step_time": 5, "max_users": 0, "spawn_rate": 1},
    ],
)
def test_step_search_refuses_non_positive_settings(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must be positive"):
        StepSearch([], **kwargs)  # type: ignore[arg-type]
