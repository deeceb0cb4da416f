"""The verdict: pass only when nothing went wrong, with one reason per problem otherwise."""

from __future__ import annotations

from stackprobe.report import Report, judge
from stackprobe.report.model import Limits, Requests, Slo, SloCheck, Writes


def _clean() -> Report:
    return Report(
        limits=Limits(memory_requested_bytes=256 << 20, memory_applied_bytes=256 << 20, applied_matches=True),
        requests=Requests(total=1000, failures=0, rps=50.0),
        writes=Writes(applicable=True, acknowledged=300, verified=300, lost=0),
        slo=Slo(spec="p95<200ms", checks=[SloCheck(metric="p95", op="<", threshold=200, actual=80, passed=True)]),
    )


def test_a_clean_run_passes_without_reasons() -> None:
    assert judge(_clean()) == ("pass", [])


def test_every_problem_gives_its_own_reason() -> None:
    report = _clean()
    report.limits.applied_matches = False
    report.limits.problems = ["memory applied 512.0 MiB, asked 256.0 MiB"]
    report.oom_kills = 2
    report.restarts = 1
    report.writes.lost = 3
    report.slo.checks.append(SloCheck(metric="errors", op="<", threshold=1, actual=2.5, passed=False))
    report.slo.passed = False
    assert judge(report) == (
        "fail",
        [
            "limits not applied as asked: memory applied 512.0 MiB, asked 256.0 MiB",
            "2 OOM kills",
            "1 restart",
            "3 of 300 acknowledged writes lost",
            "SLO not met: errors < 1% (actual 2.5%)",
        ],
    )


def test_a_run_without_requests_fails() -> None:
    report = _clean()
    report.requests = Requests()
    assert judge(report) == ("fail", ["no request was made"])


def test_lost_writes_do_not_count_when_the_audit_does_not_apply() -> None:
    report = _clean()
    report.writes = Writes(applicable=False)
    assert judge(report) == ("pass", [])


def test_limits_that_differ_without_a_named_problem_still_fail() -> None:
    report = _clean()
    report.limits.applied_matches = False
    assert judge(report) == ("fail", ["limits not applied as asked: applied limits differ from those asked"])
