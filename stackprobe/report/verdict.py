"""Decide a run's verdict from its report, with a reason for every failure."""

from __future__ import annotations

from stackprobe.report.fmt import format_check
from stackprobe.report.model import Report, Verdict


def judge(report: Report) -> tuple[Verdict, list[str]]:
    """Return "pass" with no reasons, or "fail" with one reason per problem found."""
    reasons: list[str] = []
    if not report.limits.applied_matches:
        problems = "; ".join(report.limits.problems) or "applied limits differ from those asked"
        reasons.append(f"limits not applied as asked: {problems}")
    if report.requests.total == 0:
        reasons.append("no request was made")
    if report.oom_kills:
        reasons.append(f"{report.oom_kills} OOM kill{'s' if report.oom_kills != 1 else ''}")
    if report.restarts:
        reasons.append(f"{report.restarts} restart{'s' if report.restarts != 1 else ''}")
    writes = report.writes
    if writes.applicable and writes.lost:
        reasons.append(f"{writes.lost} of {writes.acknowledged} acknowledged writes lost")
    reasons.extend(f"SLO not met: {format_check(c)}" for c in report.slo.checks if not c.passed)
    return ("fail" if reasons else "pass"), reasons
