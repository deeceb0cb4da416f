"""Recovery figures from 1-s windows, the SLO judged outside faults, and what faults explain."""

from __future__ import annotations

from collections import Counter

import pytest

from stackprobe.locuststats import WindowStats
from stackprobe.recovery import (
    exclusion_spans,
    explain_effects,
    measure_recovery,
    request_rules,
    restart_die_times,
    slo_outside_faults,
    span_figures,
)
from stackprobe.report.model import Event, FaultRecord, MemoryTrend, Report, Target

RULES = request_rules("p95<200ms,errors<1%")


def window(start: float, ok: int = 100, failed: int = 0, ms: int = 20) -> WindowStats:
    """A 1-s window of `ok` successes and `failed` failures, every one answered in `ms` ms."""
    requests = ok + failed
    return WindowStats(
        start,
        requests,
        failed,
        requests,
        Counter({ms: requests}) if requests else Counter(),
        float(ms * requests),
        float(ms) if requests else None,
    )


def load(seconds: int, offset: float = 0.3, broken: tuple[float, float] = (0.0, 0.0), **bad: int) -> list[WindowStats]:
    """Windows starting at offset, offset+1, ...; those starting inside `broken` get `bad`'s counts."""
    low, high = broken
    return [window(offset + i, **(bad if low <= offset + i < high else {})) for i in range(seconds)]


def test_a_kill_is_timed_from_its_start_and_recovers_at_the_first_span_that_holds() -> None:
    # Killed at 20.0; every request fails in the windows starting 20.3..22.3, then all is well.
    windows = load(60, broken=(20.0, 23.0), ok=0, failed=50)
    fault = FaultRecord(action="kill", service="app", at=20, started=20.0, ended=20.05, done=True)
    recovery = measure_recovery(windows, fault, allowance_s=10, rules=RULES)
    assert recovery.reference == "start"
    assert recovery.from_t == 20.0
    # The straddling window [19.3, 20.3) is left out: the first success is in [23.3, 24.3).
    assert recovery.first_success_s == pytest.approx(3.3)
    assert recovery.recovered_s == pytest.approx(3.3)
    assert recovery.status == "recovered"
    assert recovery.summary == "recovered in 3.3 s"
    # During: the window the kill fell in; to recovery: the three broken windows.
    assert (recovery.requests, recovery.errors) == (100, 0)
    assert (recovery.requests_to_recovery, recovery.errors_to_recovery) == (150, 150)


def test_a_lasting_fault_is_timed_from_its_end_and_counts_what_happened_during_it() -> None:
    windows = load(70, broken=(50.0, 56.0), ok=10, failed=40)
    fault = FaultRecord(action="pause", service="db", at=50, for_=5, started=50.0, ended=55.02, done=True)
    recovery = measure_recovery(windows, fault, allowance_s=10, rules=RULES)
    assert (recovery.reference, recovery.from_t) == ("end", 55.02)
    # Windows overlapping 50.0..55.02: those starting 49.3 (fine) and 50.3..54.3 (broken).
    assert (recovery.requests, recovery.errors) == (100 + 5 * 50, 5 * 40)
    # [55.3, 56.3) still fails 80 %: the first span that holds starts at 56.3.
    assert recovery.recovered_s == pytest.approx(1.28)


def test_a_span_with_latency_over_the_slo_does_not_count_as_recovered() -> None:
    windows = load(60, broken=(30.0, 40.0), ms=900)
    fault = FaultRecord(action="disconnect", service="db", at=25, for_=5, started=25.0, ended=30.0, done=True)
    recovery = measure_recovery(windows, fault, allowance_s=15, rules=RULES)
    # Answers came at once (first success), but the SLO held only from 40.3.
    assert recovery.first_success_s == pytest.approx(0.3)
    assert recovery.recovered_s == pytest.approx(10.3)


def test_a_service_that_never_recovers_within_the_allowance_is_named() -> None:
    windows = load(60, broken=(20.0, 60.0), ok=0, failed=10)
    fault = FaultRecord(action="kill", service="app", at=20, started=20.0, ended=20.0, done=True)
    recovery = measure_recovery(windows, fault, allowance_s=10, rules=RULES)
    assert (recovery.status, recovery.summary) == ("not_recovered", "did not recover within 10 s")
    assert recovery.recovered_s is None
    assert recovery.first_success_s is None


def test_a_recovery_after_the_allowance_is_late_and_still_measured() -> None:
    windows = load(60, broken=(20.0, 35.0), ok=0, failed=10)
    fault = FaultRecord(action="kill", service="app", at=20, started=20.0, ended=20.0, done=True)
    recovery = measure_recovery(windows, fault, allowance_s=10, rules=RULES)
    assert recovery.status == "not_recovered"
    assert recovery.summary == "recovered in 15.3 s, past its 10 s allowance"


def test_a_load_that_ends_before_a_span_can_show_recovery_leaves_it_unobserved() -> None:
    windows = load(24, broken=(20.0, 22.0), ok=0, failed=10)
    fault = FaultRecord(action="kill", service="app", at=20, started=20.0, ended=20.0, done=True)
    assert measure_recovery(windows, fault, allowance_s=10, rules=RULES).status == "not_observed"


def test_a_span_may_not_overlap_another_fault() -> None:
    windows = load(60, broken=(20.0, 22.0), ok=0, failed=10)
    fault = FaultRecord(action="kill", service="app", at=20, started=20.0, ended=20.0, done=True)
    # A pause of db at 24..27: spans starting 22.3..26.3 would overlap it; 27.3 is the first clear one.
    recovery = measure_recovery(windows, fault, allowance_s=10, rules=RULES, others=[(24.0, 27.0)])
    assert recovery.recovered_s == pytest.approx(7.3)
    assert recovery.status == "recovered"
    assert recovery.summary == "recovered in 7.3 s (the first 5-s span clear of another fault)"
    blocked = measure_recovery(windows, fault, allowance_s=10, rules=RULES, others=[(24.0, 40.0)])
    assert blocked.status == "not_observed"


def test_a_fault_not_done_or_lasting_to_the_end_has_no_recovery_figure() -> None:
    windows = load(60)
    refused = FaultRecord(action="squeeze", service="app", at=5, started=5.0, ended=5.0, kernel="refused")
    assert measure_recovery(windows, refused, allowance_s=10, rules=RULES).status == "not_applicable"
    skipped = FaultRecord(action="kill", service="app", at=5)
    assert measure_recovery(windows, skipped, allowance_s=10, rules=RULES).status == "not_applicable"
    to_end = FaultRecord(action="stop", service="app", at=50, started=50.0, ended=60.5, undone_by="load end", done=True)
    assert measure_recovery(windows, to_end, allowance_s=10, rules=RULES).status == "not_applicable"


def test_span_figures_merge_histograms_by_locusts_rule() -> None:
    windows = [window(0.0, ok=95, ms=10), window(1.0, ok=5, failed=0, ms=500)]
    requests, latency = span_figures(windows)
    assert (requests.total, requests.rps) == (100, 50.0)
    # Locust's rule: the slowest 5 of 100 are int(100 * 0.95) = 95 from the bottom, so p95 is 500 ms.
    assert (latency.p50, latency.p95, latency.p99, latency.max) == (10.0, 500.0, 500.0, 500.0)
    assert latency.avg == pytest.approx((95 * 10 + 5 * 500) / 100)


def _fault_report(**changes: object) -> Report:
    faults = [
        FaultRecord(action="kill", service="app", at=20, started=20.0, ended=20.05, done=True),
        FaultRecord(action="pause", service="db", at=40, for_=5, started=40.0, ended=45.0, done=True),
        FaultRecord(action="squeeze", service="app", at=5, started=5.0, ended=5.01, kernel="refused"),
    ]
    return Report(target=Target(service="app"), faults=faults, **changes)  # type: ignore[arg-type]


def test_each_done_fault_is_excluded_with_its_allowance() -> None:
    assert exclusion_spans(_fault_report().faults, 10) == [[20.0, 30.0], [40.0, 55.0]]


def test_the_slo_is_judged_on_the_windows_outside_the_faults() -> None:
    # Every request fails from 20 to 25 and from 40 to 48: inside the excluded spans, so the SLO holds.
    windows = [
        window(0.3 + i, **({"ok": 0, "failed": 50} if 20 <= 0.3 + i < 25 or 40 <= 0.3 + i < 48 else {}))
        for i in range(60)
    ]
    report = _fault_report()
    slo = slo_outside_faults("p95<200ms,errors<1%", report, windows, 10)
    assert slo.passed
    assert slo.excluded == [[20.0, 30.0], [40.0, 55.0]]
    # 60 windows less those overlapping [20, 30] (19.3..29.3: 11) and [40, 55] (39.3..54.3: 16).
    assert "33 of 60 1-s windows" in slo.scope
    failing_late = [window(0.3 + i, **({"ok": 0, "failed": 50} if 0.3 + i >= 56 else {})) for i in range(60)]
    assert not slo_outside_faults("errors<1%", report, failing_late, 10).passed


def test_mem_slope_is_judged_as_without_faults() -> None:
    report = _fault_report()
    report.memory.trend = MemoryTrend(slope_mib_per_min=2.0)
    slo = slo_outside_faults("mem_slope<0.5MiB/min", report, load(60), 10)
    assert not slo.passed


def test_restarts_are_counted_once_per_die_as_the_watcher_counts_them() -> None:
    events = [
        Event(t=20.1, action="die", container="p-app-1", service="app", exit_code=137),
        Event(t=20.3, action="start", container="p-app-1", service="app"),
        Event(t=40.0, action="die", container="p-app-1", service="app", exit_code=0),
        Event(t=41.0, action="start", container="p-app-1", service="app"),
        Event(t=41.0, action="restart", container="p-app-1", service="app"),
        Event(t=50.0, action="die", container="p-db-1", service="db", exit_code=0),
    ]
    assert restart_die_times(events, "app") == [20.1, 40.0]


def test_a_kills_restart_is_explained_and_one_outside_any_fault_is_not() -> None:
    events = [
        Event(t=20.1, action="die", container="p-app-1", service="app", exit_code=137),
        Event(t=20.3, action="start", container="p-app-1", service="app"),
        Event(t=50.0, action="die", container="p-app-1", service="app", exit_code=1),
        Event(t=50.2, action="start", container="p-app-1", service="app"),
    ]
    effects = explain_effects(_fault_report(events=events, restarts=2), 10)
    assert (effects.restarts_explained, effects.restarts_unexplained) == (1, 1)
    assert (effects.oom_kills_explained, effects.oom_kills_unexplained) == (0, 0)


def test_a_restart_of_the_target_during_a_fault_on_another_service_is_not_explained() -> None:
    events = [
        Event(t=41.0, action="die", container="p-app-1", service="app", exit_code=1),
        Event(t=41.5, action="start", container="p-app-1", service="app"),
    ]
    effects = explain_effects(_fault_report(events=events, restarts=1), 10)
    assert effects.restarts_unexplained == 1


def test_an_oom_kill_under_a_squeeze_is_explained_and_a_refused_squeeze_explains_nothing() -> None:
    squeezed = FaultRecord(action="squeeze", service="app", at=5, for_=10, started=5.0, ended=15.0, kernel="oom_kill")
    events = [
        Event(t=8.0, action="oom", container="p-app-1", service="app"),
        Event(t=8.0, action="die", container="p-app-1", service="app", exit_code=137),
        Event(t=8.2, action="start", container="p-app-1", service="app"),
    ]
    report = Report(target=Target(service="app"), faults=[squeezed], events=events, oom_kills=1, restarts=1)
    effects = explain_effects(report, 10)
    assert (effects.oom_kills_explained, effects.restarts_explained) == (1, 1)
    report.faults = [FaultRecord(action="squeeze", service="app", at=5, started=5.0, ended=5.0, kernel="refused")]
    effects = explain_effects(report, 10)
    assert (effects.oom_kills_unexplained, effects.restarts_unexplained) == (1, 1)


def test_a_term_that_did_not_hold_before_the_fault_is_not_asked_of_its_recovery() -> None:
    # p95 is 300 ms all along (a busy machine); errors fill the 3 s after the kill.
    windows = [window(0.3 + i, **({"ok": 0, "failed": 50} if 20 <= 0.3 + i < 23 else {}), ms=300) for i in range(60)]
    fault = FaultRecord(action="kill", service="app", at=20, started=20.0, ended=20.05, done=True)
    recovery = measure_recovery(windows, fault, allowance_s=10, rules=RULES)
    assert recovery.judged_on == "errors<1%"
    assert (recovery.status, recovery.recovered_s) == ("recovered", pytest.approx(3.3))
    held = measure_recovery(load(60, broken=(20.0, 23.0), ok=0, failed=50), fault, allowance_s=10, rules=RULES)
    assert held.judged_on == "p95<200ms,errors<1%"


def test_a_span_that_holds_on_average_does_not_count_before_the_first_success() -> None:
    # Just after the kill a second of failures only, then hundreds of successes: the 5-s span from the
    # failing second holds errors<1% on average, yet the service had not answered yet.
    windows = [window(0.3 + i, **({"ok": 0, "failed": 3} if 20 <= 0.3 + i < 21 else {"ok": 300})) for i in range(40)]
    fault = FaultRecord(action="kill", service="app", at=20, started=20.0, ended=20.0, done=True)
    recovery = measure_recovery(windows, fault, allowance_s=10, rules=RULES)
    assert recovery.first_success_s == pytest.approx(1.3)
    assert recovery.recovered_s == pytest.approx(1.3)
