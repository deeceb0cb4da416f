"""Decide a run's verdict from its report: pass, fail (seen to go wrong) or inconclusive (could not see).

A failure seen outranks what could not be seen: a run with an OOM kill fails even if its event stream was
cut. A run with nothing seen to go wrong but something it could not observe is inconclusive, never a pass.
"""

from __future__ import annotations

from stackprobe.report.fmt import describe_fault, format_check
from stackprobe.report.model import Report, Verdict
from stackprobe.report.regression import regression_reasons, unmeasured_reasons

# Locust's own warning fires above 90 % of a core; the same bound on the measured figure.
GENERATOR_CPU_SATURATED_PERCENT = 90.0
INCONCLUSIVE_PREFIX = "inconclusive: "
# An open-model run that started fewer arrivals than this share of the rate asked did not apply that load.
DELIVERED_SHARE = 0.95


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def failures(report: Report) -> list[str]:
    """Return what the run saw go wrong, one reason each."""
    reasons: list[str] = []
    # What a fault on the target explains (a kill's restart, a squeeze's OOM kill) does not fail the run.
    effects = report.fault_effects
    oom_kills = report.oom_kills - effects.oom_kills_explained
    if oom_kills > 0:
        source = f" ({report.oom_kills_source})" if report.oom_kills_source else ""
        unexplained = " no fault explains" if report.faults else ""
        reasons.append(f"{_plural(oom_kills, 'OOM kill')}{unexplained}{source}")
    if report.memory.frozen_at is not None:
        reasons.append(
            f"frozen at its memory limit from t={report.memory.frozen_at:.1f} s "
            "(the kernel's under_oom: OOM killing is disabled, so nothing was killed and nothing ran)"
        )
    restarts = report.restarts - effects.restarts_explained
    if restarts > 0:
        reasons.append(_plural(restarts, "restart") + (" no fault explains" if report.faults else ""))
    for fault in report.faults:
        if fault.recovery is not None and fault.recovery.status == "not_recovered":
            reasons.append(f"{describe_fault(fault)}: {fault.recovery.summary}")
    # Each entry says how one container ended, e.g. "p-app-1 exited with code 3 at t=4.0 s".
    reasons.extend(f"target container {ended}, and was not started again" for ended in report.target_exits)
    writes = report.writes
    if writes.applicable and writes.lost:
        reasons.append(f"{writes.lost} of {writes.acknowledged} acknowledged writes lost")
    # Jepsen's other anomalies: one create stored twice, and a create the service refused but stored.
    if writes.applicable and writes.duplicated:
        reasons.append(f"{_plural(writes.duplicated, 'write')} stored more than once")
    if writes.applicable and writes.failed_applied:
        reasons.append(f"{writes.failed_applied} of {writes.failed} refused writes found stored all the same")
    if report.requests.exceptions:
        reasons.append(f"{_plural(report.requests.exceptions, 'exception')} raised in the locustfile's tasks")
    if report.load.locust_exit_code:
        reasons.append(f"Locust exited with code {report.load.locust_exit_code}")
    if report.load.overran:
        reasons.append(report.load.overran)
    reasons.extend(
        f"SLO not met: {format_check(c)}" for c in report.slo.checks if not c.passed and c.actual is not None
    )
    reasons.extend(regression_reasons(report.baseline))
    return reasons


def blind_spots(report: Report) -> list[str]:
    """Return what the run could not observe, one reason each: any of them makes a pass inconclusive."""
    reasons: list[str] = list(report.problems)
    if not report.limits.applied_matches:
        problems = "; ".join(report.limits.problems) or "applied limits differ from those asked"
        reasons.append(f"limits not in force as asked: {problems}")
    for other in report.limits.others:
        if not other.applied_matches:
            problems = "; ".join(other.problems) or "applied limit differs from the one asked"
            reasons.append(f"{other.service}'s limit not in force as asked: {problems}")
    if report.requests.total == 0:
        reasons.append("no request was made: the load was not delivered")
    reasons.extend(f"SLO not measured: {format_check(c)}" for c in report.slo.checks if c.actual is None)
    reasons.extend(unmeasured_reasons(report.baseline))
    for fault in report.faults:
        if not fault.done and fault.kernel != "refused":
            reasons.append(f"{describe_fault(fault)} was not done as scheduled: {fault.error or 'no reason recorded'}")
        if fault.recovery is not None and fault.recovery.status == "not_observed":
            reasons.append(f"{describe_fault(fault)}: recovery {fault.recovery.summary}")
    writes = report.writes
    if writes.applicable and writes.unverified:
        why = f" ({writes.gave_up})" if writes.gave_up else ""
        reasons.append(f"{writes.unverified} of {writes.acknowledged} acknowledged writes could not be checked{why}")
    load = report.load
    if load.arrival_rate and (load.achieved_rate or 0) < DELIVERED_SHARE * load.arrival_rate:
        reasons.append(
            f"load not delivered: {load.achieved_rate or 0:.1f} arrivals/s of the {load.arrival_rate:g}/s asked "
            f"(under {DELIVERED_SHARE:.0%})"
        )
    cost = report.cost
    if load.distributed is not None:
        reasons.extend(distributed_blind_spots(report))
    elif cost.load_generator_cpu_warning:
        reasons.append("Locust warned that its CPU was above 90 %: the generator, not the service, set the pace")
    elif (cost.load_generator_cpu_percent or 0) > GENERATOR_CPU_SATURATED_PERCENT:
        reasons.append(
            f"Locust used {cost.load_generator_cpu_percent:.0f} % of a core: the generator may have set the pace"
        )
    return reasons


def distributed_blind_spots(report: Report) -> list[str]:
    """Return what a distributed run could not observe: a saturated worker or master, a worker unseen.

    The generator is judged per process (each is one core at most), never by the sum of their CPU.
    """
    dist = report.load.distributed
    if dist is None:
        return []
    reasons = []
    for worker in dist.workers:
        if worker.saturated:
            shares = [
                f"{worker.cpu_busiest_percent:.0f} % of a core over its busiest 10 s (measured)"
                if worker.cpu_busiest_percent is not None
                else "",
                f"{worker.locust_cpu_percent_max:.0f} % by Locust's heartbeats"
                if worker.locust_cpu_percent_max is not None
                else "",
                "Locust's own CPU warning" if worker.cpu_warning else "",
            ]
            reasons.append(
                f"Locust worker {worker.id} was saturated ({'; '.join(x for x in shares if x)}): "
                "the generator, not the service, may have set the pace; add workers"
            )
        if worker.missing or worker.exit_code not in (None, 0):
            how = "its heartbeats stopped" if worker.missing else f"it ended with exit code {worker.exit_code}"
            reasons.append(
                f"Locust worker {worker.id} was lost during the run ({how}): the requests it made since its last "
                "report are not counted, and the load was not delivered as asked"
            )
        if not worker.listener:
            reasons.append(
                f"Locust worker {worker.id} ran without stackprobe's listener: its {worker.requests} requests are "
                "in Locust's totals but not in the 1-s windows, failure times or arrivals"
            )
    if (dist.master_cpu_percent or 0) > GENERATOR_CPU_SATURATED_PERCENT:
        reasons.append(f"Locust's master used {dist.master_cpu_percent:.0f} % of a core: it may have set the pace")
    elif report.cost.load_generator_cpu_warning and not any(worker.saturated for worker in dist.workers):
        reasons.append("Locust warned that its CPU was above 90 %: the generator, not the service, set the pace")
    if len(dist.workers) < dist.workers_expected:
        reasons.append(
            f"only {len(dist.workers)} of the {dist.workers_expected} Locust workers expected reported to the master"
        )
    remote = [worker for worker in dist.workers if not worker.local]
    if remote and report.writes.applicable:
        workers = _plural(len(remote), "Locust worker")
        reasons.append(
            f"{workers} ran elsewhere: acknowledged writes made there went to that machine's write log, "
            "not audited here"
        )
    return reasons


def judge(report: Report) -> tuple[Verdict, list[str]]:
    """Return the verdict and its reasons: failures first, then (prefixed "inconclusive: ") blind spots."""
    seen = failures(report)
    unseen = [INCONCLUSIVE_PREFIX + reason for reason in blind_spots(report)]
    if seen:
        return "fail", seen + unseen
    if unseen:
        return "inconclusive", unseen
    return "pass", []
