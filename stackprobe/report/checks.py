"""What a run was judged on, one check each: the rows of the JUnit file and of the CI job summary.

A check is an SLO term, a limit in force, OOM kills, restarts, lost writes, the load delivered, what the run
could not observe, a figure held to a base run, and last the verdict itself with every reason, so that no
reason of the verdict is missing from a CI system's view even when no other check names it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from stackprobe.report.fmt import (
    describe_load,
    describe_oom_kills,
    format_bytes,
    format_check,
    format_count,
    format_number,
    format_slo_value,
)
from stackprobe.report.model import Baseline, Report, SloCheck
from stackprobe.report.regression import describe_bound, describe_regression, format_figure
from stackprobe.report.verdict import DELIVERED_SHARE, GENERATOR_CPU_SATURATED_PERCENT

# pass: held; fail: seen to go wrong; inconclusive: could not be observed; n/a: does not apply to this run.
CheckStatus = Literal["pass", "fail", "inconclusive", "n/a"]
_LOCUST_TOTALS = "Locust's end-of-run totals"


@dataclass(frozen=True)
class Check:
    """One thing the run was judged on: `group` ("slo", "limits", ...), a name, its status, and a message
    that names the figure and where it comes from."""

    group: str
    name: str
    status: CheckStatus
    message: str


def run_checks(report: Report) -> list[Check]:
    """Return every check of one run's report, in the order a reader goes through them; the verdict last."""
    checks = [_slo_check(report, c) for c in report.slo.checks]
    checks.extend(_limit_checks(report))
    checks.append(_oom_check(report))
    checks.append(_restart_check(report))
    checks.append(_writes_check(report))
    checks.append(_load_check(report))
    checks.append(_observation_check(report))
    if report.baseline is not None:
        checks.extend(baseline_checks(report.baseline))
    checks.append(_verdict_check(report))
    return checks


def slo_source(report: Report, metric: str) -> str:
    """Return where an SLO metric's actual figure comes from."""
    if metric == "mem_slope":
        trend = report.memory.trend
        return trend.source if trend is not None and trend.source else "the memory trend (memory.trend, not fitted)"
    field = {"errors": "requests.failure_ratio", "rps": "requests.rps"}.get(metric, f"latency_ms.{metric}")
    return f"{_LOCUST_TOTALS} ({field})"


def _slo_check(report: Report, check: SloCheck) -> Check:
    status: CheckStatus = "inconclusive" if check.actual is None else ("pass" if check.passed else "fail")
    words = {"pass": "met", "fail": "not met", "inconclusive": "not measured"}[status]
    return Check(
        group="slo",
        name=f"SLO {check.metric} {check.op} {format_slo_value(check.metric, check.threshold)}",
        status=status,
        message=f"SLO {words}: {format_check(check)}; source: {slo_source(report, check.metric)}",
    )


def _limit_checks(report: Report) -> list[Check]:
    limits, service = report.limits, report.target.service
    version = f"cgroup v{limits.cgroup_version}" if limits.cgroup_version else "the cgroup (version not read)"
    figures = (
        f"memory asked {format_bytes(limits.memory_requested_bytes)}, declared "
        f"{format_bytes(limits.memory_declared_bytes)}, applied {format_bytes(limits.memory_applied_bytes)} "
        f"(HostConfig.Memory), swap {format_bytes(limits.memswap_applied_bytes)} (HostConfig.MemorySwap), "
        f"{format_bytes(limits.memory_cgroup_bytes)} in {version}; CPUs asked {_cpus(limits.cpus_requested)}, "
        f"applied {_cpus(limits.cpus_applied)} (HostConfig.NanoCpus)"
    )
    problems = "; ".join(limits.problems)
    checks = [
        Check(
            group="limits",
            name=f"limits of {service} in force as asked",
            status="pass" if limits.applied_matches else "inconclusive",
            message=(f"limits not in force as asked: {problems or 'applied limits differ'}; " if problems else "")
            + figures,
        )
    ]
    for other in limits.others:
        why = "; ".join(other.problems) or "applied limit differs from the one asked"
        checks.append(
            Check(
                group="limits",
                name=f"memory limit of {other.service} in force as asked",
                status="pass" if other.applied_matches else "inconclusive",
                message=("" if other.applied_matches else f"{why}; ")
                + f"asked {format_bytes(other.memory_requested_bytes)}, applied "
                f"{format_bytes(other.memory_applied_bytes)} (HostConfig.Memory)",
            )
        )
    return checks


def _cpus(value: float | None) -> str:
    return "none" if value is None else format_number(value, 2)


def _oom_check(report: Report) -> Check:
    frozen = report.memory.frozen_at
    message = f"OOM kills: {describe_oom_kills(report)}"
    if frozen is not None:
        message += f"; frozen at its memory limit from t={frozen:.1f} s (the kernel's under_oom)"
    return Check(
        group="memory",
        name=f"no OOM kill of {report.target.service}",
        status="fail" if report.oom_kills or frozen is not None else "pass",
        message=message,
    )


def _restart_check(report: Report) -> Check:
    exits = "; ".join(report.target_exits) or "none"
    return Check(
        group="memory",
        name=f"no restart or exit of {report.target.service}",
        status="fail" if report.restarts or report.target_exits else "pass",
        message=f"restarts: {report.restarts} (the engine's restart count); stopped and not started again: {exits}",
    )


def _writes_check(report: Report) -> Check:
    writes = report.writes
    name = "no acknowledged write lost"
    if not writes.applicable:
        return Check(group="writes", name=name, status="n/a", message="the load logged no writes, so none was audited")
    status: CheckStatus = "fail" if writes.lost else ("inconclusive" if writes.unverified else "pass")
    message = (
        f"{format_count(writes.lost)} lost, {format_count(writes.unverified)} unverified, "
        f"{format_count(writes.verified)} verified of {format_count(writes.acknowledged)} acknowledged "
        "(the write audit: each acknowledged write read back)"
    )
    if writes.lost_examples:
        message += f"; lost, e.g. {', '.join(writes.lost_examples[:3])}"
    if writes.gave_up:
        message += f"; the audit gave up: {writes.gave_up}"
    return Check(group="writes", name=name, status=status, message=message)


def _load_check(report: Report) -> Check:
    requests, load, cost = report.requests, report.load, report.cost
    seen: list[str] = []
    if requests.exceptions:
        seen.append(f"{requests.exceptions} exceptions raised in the locustfile's tasks (Locust's exceptions table)")
    if load.locust_exit_code:
        seen.append(f"Locust exited with code {load.locust_exit_code}")
    if load.overran:
        seen.append(load.overran)
    unseen: list[str] = []
    if requests.total == 0:
        unseen.append("no request was made")
    if load.arrival_rate and (load.achieved_rate or 0) < DELIVERED_SHARE * load.arrival_rate:
        unseen.append(f"{load.achieved_rate or 0:.1f} arrivals/s of the {load.arrival_rate:g}/s asked")
    generator = cost.load_generator_cpu_percent
    if cost.load_generator_cpu_warning or (generator or 0) > GENERATOR_CPU_SATURATED_PERCENT:
        unseen.append("the load generator's CPU was saturated: it, not the service, may have set the pace")
    status: CheckStatus = "fail" if seen else ("inconclusive" if unseen else "pass")
    figures = (
        f"{format_count(requests.total)} requests at {format_number(requests.rps)}/s ({_LOCUST_TOTALS}); "
        f"load asked: {describe_load(load)}; Locust's CPU "
        + ("not measured" if generator is None else f"{generator:.1f} % of a core")
    )
    message = "; ".join([*seen, *unseen, figures])
    return Check(group="load", name="load delivered as asked", status=status, message=message)


def _observation_check(report: Report) -> Check:
    problems = report.problems
    return Check(
        group="observation",
        name="the run saw all it reports on",
        status="inconclusive" if problems else "pass",
        message="could not observe: " + "; ".join(problems)
        if problems
        else "the event stream, the cgroup and the samples covered the run",
    )


def baseline_checks(baseline: Baseline) -> list[Check]:
    """Return one check per figure held to a bound against the base run: failed when beyond it."""
    checks = []
    for figure in baseline.figures:
        if figure.bound is None:
            continue
        status: CheckStatus = "inconclusive" if figure.new is None else ("fail" if figure.regressed else "pass")
        if status == "fail":
            message = "regressed: " + describe_regression(figure)
        else:
            message = (
                f"{figure.metric} {format_figure(figure.unit, figure.new)}, base run "
                f"{format_figure(figure.unit, figure.base)}, allowed {describe_bound(figure)}; {figure.source}"
            )
        checks.append(
            Check(
                group="baseline",
                name=f"{figure.metric} within {figure.bound} of the base run",
                status=status,
                message=f"{message}; base run: {baseline.path}",
            )
        )
    return checks


def _verdict_check(report: Report) -> Check:
    reasons = report.reasons
    return Check(
        group="verdict",
        name="verdict",
        status=report.verdict,
        message=f"verdict {report.verdict}" + (": " + "; ".join(reasons) if reasons else ""),
    )


# How a loop of runs names its outcome: sweep and grow by a verdict, fit by the status of its search.
_FIT_STATUS: dict[str, CheckStatus] = {
    "found": "pass",
    "budget": "pass",
    "none_holds": "fail",
    "uncertain": "inconclusive",
}
_RUN_STATUS: dict[str, CheckStatus] = {
    "pass": "pass",
    "fail": "fail",
    "inconclusive": "inconclusive",
    "error": "inconclusive",
}


def loop_checks(data: dict[str, Any]) -> list[Check]:
    """Return the checks of a loop of runs from its JSON (sweep.json, fit.json, grow.json): its outcome last.

    In a sweep or a grow each run (each size) is a check, since one that fails fails the loop. In a fit a
    limit that fails is what the search is for, not a failure: its runs are left to fit.json, and the one
    check is whether a limit was found.
    """
    kind = _loop_kind(data)
    checks: list[Check] = []
    if kind != "fit":
        runs = data.get("runs") if kind == "sweep" else data.get("points")
        for run in runs or []:
            reasons = run.get("reasons") or ([run["error"]] if run.get("error") else [])
            figures = (
                f"{format_count(run.get('requests'))} requests at {format_number(run.get('rps'))}/s, "
                f"p95 {format_number(run.get('p95_ms'))} ms ({_LOCUST_TOTALS}); peak memory "
                f"{format_bytes(run.get('peak_bytes'))} ({run.get('peak_source') or 'not read'}); "
                f"OOM kills {format_count(run.get('oom_kills'))}"
            )
            checks.append(
                Check(
                    group=kind,
                    name=f"run {run.get('label', '')}",
                    status=_RUN_STATUS.get(run.get("verdict", "error"), "inconclusive"),
                    message="; ".join([f"verdict {run.get('verdict')}", *reasons, figures]),
                )
            )
    if kind == "fit":
        status = _FIT_STATUS.get(data.get("status", ""), "inconclusive")
        outcome = f"status {data.get('status')}"
    else:
        status = _RUN_STATUS.get(data.get("verdict", ""), "inconclusive")
        outcome = f"verdict {data.get('verdict')}"
    lines = data.get("summary") or data.get("reasons") or []
    checks.append(Check(group=kind, name=f"{kind} outcome", status=status, message="; ".join([outcome, *lines])))
    return checks


def _loop_kind(data: dict[str, Any]) -> str:
    """Return "sweep", "fit" or "grow" for a loop's JSON."""
    if data.get("kind") in ("sweep", "fit"):
        return str(data["kind"])
    return "grow"
