"""The verdict: pass only when nothing went wrong and everything was seen; fail before inconclusive."""

from __future__ import annotations

import pytest

from stackprobe.report import Report, judge
from stackprobe.report.model import Cost, Limits, Load, Memory, Requests, Slo, SloCheck, Writes


def _clean() -> Report:
    return Report(
        limits=Limits(memory_requested_bytes=256 << 20, memory_applied_bytes=256 << 20, applied_matches=True),
        requests=Requests(total=1000, failures=0, rps=50.0),
        writes=Writes(applicable=True, acknowledged=300, verified=300, lost=0, unverified=0),
        slo=Slo(spec="p95<200ms", checks=[SloCheck(metric="p95", op="<", threshold=200, actual=80, passed=True)]),
    )


def test_a_clean_run_passes_without_reasons() -> None:
    assert judge(_clean()) == ("pass", [])


def test_every_failure_gives_its_own_reason() -> None:
    report = _clean()
    report.oom_kills, report.oom_kills_source = 2, "kernel oom_kill counter"
    report.restarts = 1
    report.target_exits = ["p-app-1 exited with code 3 at t=4.0 s"]
    report.writes.lost, report.writes.verified = 3, 297
    report.requests.exceptions = 921
    report.load = Load(locust_exit_code=1, overran="Locust ran 12.0 s past --duration 5s")
    report.slo.checks.append(SloCheck(metric="errors", op="<", threshold=1, actual=2.5, passed=False))
    assert judge(report) == (
        "fail",
        [
            "2 OOM kills (kernel oom_kill counter)",
            "1 restart",
            "target container p-app-1 exited with code 3 at t=4.0 s, and was not started again",
            "3 of 300 acknowledged writes lost",
            "921 exceptions raised in the locustfile's tasks",
            "Locust exited with code 1",
            "Locust ran 12.0 s past --duration 5s",
            "SLO not met: errors < 1% (actual 2.5%)",
        ],
    )


def test_a_write_stored_twice_or_stored_after_a_refusal_fails_the_run() -> None:
    # Jepsen's set checker calls both anomalies: neither is a lost write, and neither may pass.
    report = _clean()
    report.writes.duplicated, report.writes.failed, report.writes.failed_applied = 2, 11, 1
    assert judge(report) == (
        "fail",
        ["2 writes stored more than once", "1 of 11 refused writes found stored all the same"],
    )


def test_indeterminate_writes_left_unresolved_do_not_fail_or_blind_the_run() -> None:
    report = _clean()
    report.writes.indeterminate, report.writes.recovered, report.writes.unresolved = 3, 1, 2
    assert judge(report) == ("pass", [])


def test_a_container_frozen_at_its_limit_fails_without_an_oom_kill() -> None:
    report = _clean()
    report.memory = Memory(frozen_at=4.2)
    verdict, reasons = judge(report)
    assert verdict == "fail"
    assert reasons[0].startswith("frozen at its memory limit from t=4.2 s")


@pytest.mark.parametrize(
    ("spoil", "reason"),
    [
        (lambda r: r.problems.append("event stream ended early"), "event stream ended early"),
        (lambda r: setattr(r, "requests", Requests()), "no request was made: the load was not delivered"),
        (
            lambda r: setattr(r.limits, "applied_matches", False),
            "limits not in force as asked: applied limits differ from those asked",
        ),
        (
            lambda r: r.slo.checks.append(SloCheck(metric="p99", op="<", threshold=300, actual=None, passed=False)),
            "SLO not measured: p99 < 300 ms (actual n/a)",
        ),
        (
            lambda r: setattr(r, "writes", Writes(applicable=True, acknowledged=10, verified=7, lost=0, unverified=3)),
            "3 of 10 acknowledged writes could not be checked",
        ),
        (
            lambda r: setattr(r, "load", Load(arrival_rate=100.0, achieved_rate=94.9)),
            "load not delivered: 94.9 arrivals/s of the 100/s asked (under 95%)",
        ),
        (
            lambda r: setattr(r, "cost", Cost(load_generator_cpu_warning=True)),
            "Locust warned that its CPU was above 90 %: the generator, not the service, set the pace",
        ),
        (
            lambda r: setattr(r, "cost", Cost(load_generator_cpu_percent=97.0)),
            "Locust used 97 % of a core: the generator may have set the pace",
        ),
    ],
)
def test_what_the_run_could_not_see_makes_it_inconclusive_not_a_pass(spoil, reason: str) -> None:
    report = _clean()
    spoil(report)
    assert judge(report) == ("inconclusive", [f"inconclusive: {reason}"])


def test_an_open_model_run_that_delivered_95_percent_passes() -> None:
    report = _clean()
    report.load = Load(arrival_rate=100.0, achieved_rate=95.0)
    assert judge(report) == ("pass", [])


def test_a_failure_seen_outranks_what_could_not_be_seen() -> None:
    report = _clean()
    report.oom_kills = 1
    report.problems.append("cgroup not read")
    assert judge(report) == ("fail", ["1 OOM kill", "inconclusive: cgroup not read"])


def test_lost_writes_do_not_count_when_the_audit_does_not_apply() -> None:
    report = _clean()
    report.writes = Writes(applicable=False)
    assert judge(report) == ("pass", [])


def _with_faults() -> Report:
    from stackprobe.report.model import FaultEffects, FaultRecord, Recovery

    report = _clean()
    report.faults = [
        FaultRecord(
            action="kill",
            service="app",
            at=20,
            signal="SIGKILL",
            done=True,
            started=20.0,
            ended=20.05,
            recovery=Recovery(reference="start", status="recovered", summary="recovered in 3.1 s"),
        ),
        FaultRecord(
            action="pause",
            service="db",
            at=40,
            for_=5,
            done=True,
            started=40.0,
            ended=45.0,
            recovery=Recovery(status="recovered", summary="recovered in 0.4 s"),
        ),
    ]
    report.restarts = 1
    report.fault_effects = FaultEffects(recovery_allowance_s=10, restarts_explained=1)
    return report


def test_a_restart_a_kill_explains_does_not_fail_the_run() -> None:
    assert judge(_with_faults()) == ("pass", [])


def test_a_restart_no_fault_explains_fails_the_run_and_says_so() -> None:
    report = _with_faults()
    report.restarts = 2
    report.fault_effects.restarts_unexplained = 1
    assert judge(report) == ("fail", ["1 restart no fault explains"])


def test_an_oom_kill_no_squeeze_explains_fails_the_run() -> None:
    report = _with_faults()
    report.oom_kills, report.oom_kills_source = 1, "kernel oom_kill counter"
    assert judge(report) == ("fail", ["1 OOM kill no fault explains (kernel oom_kill counter)"])
    report.fault_effects.oom_kills_explained = 1
    assert judge(report)[0] == "pass"


def test_a_service_that_did_not_recover_fails_the_run() -> None:
    report = _with_faults()
    recovery = report.faults[0].recovery
    assert recovery is not None
    recovery.status, recovery.summary = "not_recovered", "did not recover within 10 s"
    assert judge(report) == ("fail", ["kill app@20s: did not recover within 10 s"])


def test_a_recovery_not_observed_or_a_fault_not_done_is_inconclusive() -> None:
    report = _with_faults()
    recovery = report.faults[1].recovery
    assert recovery is not None
    recovery.status, recovery.summary = "not_observed", "not observed: the load ended first"
    report.faults[0].done, report.faults[0].error = False, "no running container of service app"
    assert judge(report) == (
        "inconclusive",
        [
            "inconclusive: kill app@20s was not done as scheduled: no running container of service app",
            "inconclusive: pause db@40s for 5s: recovery not observed: the load ended first",
        ],
    )


def test_a_squeeze_the_kernel_refused_is_a_finding_not_a_blind_spot() -> None:
    from stackprobe.report.model import FaultRecord

    report = _clean()
    report.faults = [
        FaultRecord(action="squeeze", service="app", at=5, size_bytes=16 << 20, kernel="refused", error="busy")
    ]
    assert judge(report) == ("pass", [])
