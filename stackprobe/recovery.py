"""Recovery figures per fault, the SLO judged outside the faults, and what the faults explain.

Everything here is read from the listener's 1-s windows (stackprobe.locuststats.read_window_stats: window
[start, start + 1) on the run's axis) and the report's events; nothing here talks to the engine.

- A fault's *reference* is when the clock starts: the start of a kill or restart (the disruption is the
  action itself), the end of the others (stop, pause, disconnect, squeeze: when they were undone).
- *first success*: from the reference to the start of the first window that begins at or after it and
  holds a successful request: the success came between that and a second later. A window that straddles
  the reference is left out (its successes may precede a kill).
- *recovered*: from the reference to the start of the first 5-s span (five consecutive windows, the
  first beginning at or after the reference and holding a success, so never before the first success) in
  which every request term of the
  SLO (p50/p95/p99/avg/max, errors, rps; not mem_slope) that held over the 5 s before the fault holds
  over the span's requests, percentiles by Locust's rule over the merged histograms. A term that did not
  hold before the fault either (a p95 a busy machine missed all along) is left out: it cannot tell a
  recovery (Recovery.judged_on lists the terms used). A span may not overlap another fault (its window
  started..ended), whose effects it would measure. The fault recovered when that start is within the
  allowance (--recovery); it did not recover when every span starting within the allowance was seen and
  none held; its recovery was not observed when the load ended, or another fault came, first.
- The SLO's request terms are judged outside each fault's window plus its allowance
  ([started, max(ended, reference + allowance)]): the windows overlapping those spans are left out, and
  the rest (their counts and merged histograms) give the figures. mem_slope is judged as without faults.
- A restart or OOM kill of the target is explained when a fault on the target itself was under way: its
  die (restarts) or oom (OOM kills) event falls in [started - 0.5 s, max(ended, reference + allowance)].
  Only kill, restart, stop (restarts) and squeeze (restarts and OOM kills) explain anything.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import replace

from stackprobe.locuststats import WindowStats, histogram_percentile
from stackprobe.report.model import Event, FaultEffects, FaultRecord, Latency, Recovery, Report, Requests, Slo
from stackprobe.slo import SloRule, actual_value, check, evaluate_slo, parse_slo, request_slo

SPAN_WINDOWS = 5
WINDOW_S = 1.0
# Engine event stamps and the executor's clock may differ by a little.
EVENT_SLACK_S = 0.5
# Floating-point slack when comparing a window's start with a reference.
_EPS = 1e-6
RECOVERY_SOURCE = (
    "stackprobe's listener in Locust: 1-s windows; recovery = the first 5-s span in which the SLO's request terms hold"
)
EXPLAINS_RESTARTS = ("kill", "restart", "stop", "squeeze")
EXPLAINS_OOM_KILLS = ("squeeze",)


def reference_kind(action: str) -> str:
    """Return "start" for kill and restart (timed from the action), "end" for the faults that last."""
    return "start" if action in ("kill", "restart") else "end"


def span_figures(windows: Sequence[WindowStats]) -> tuple[Requests, Latency]:
    """Return the requests and latency (ms) of windows taken together; rps over their seconds."""
    requests = sum(w.requests for w in windows)
    failures = sum(w.failures for w in windows)
    timed = sum(w.timed for w in windows)
    histogram: Counter[int] = Counter()
    for w in windows:
        histogram.update(w.histogram)
    slowest = [w.max_response_time for w in windows if w.max_response_time is not None]
    seconds = len(windows) * WINDOW_S
    totals = Requests(
        total=requests,
        failures=failures,
        rps=requests / seconds if seconds else 0.0,
        failure_ratio=failures / requests if requests else 0.0,
    )
    if timed <= 0:
        return totals, Latency()
    latency = Latency(
        p50=histogram_percentile(histogram, timed, 0.50),
        p95=histogram_percentile(histogram, timed, 0.95),
        p99=histogram_percentile(histogram, timed, 0.99),
        avg=sum(w.total_response_time for w in windows) / timed,
        max=max(slowest) if slowest else None,
    )
    return totals, latency


def span_holds(windows: Sequence[WindowStats], rules: Sequence[SloRule]) -> bool:
    """Tell whether a request succeeded in the windows and every rule holds over them taken together."""
    requests, latency = span_figures(windows)
    if requests.total - requests.failures <= 0:
        return False
    figures = Report(requests=requests, latency_ms=latency)
    return all(check(rule, actual_value(rule.metric, figures)).passed for rule in rules)


def request_rules(slo_spec: str) -> list[SloRule]:
    """Return the SLO's request terms (mem_slope left out); ValueError for a spec that does not parse."""
    return parse_slo(request_slo(slo_spec))


def measure_recovery(
    windows: Sequence[WindowStats],
    fault: FaultRecord,
    *,
    allowance_s: float,
    rules: Sequence[SloRule],
    others: Sequence[tuple[float, float]] = (),
) -> Recovery:
    """Return the recovery figures of one fault (see the module's docstring for each definition).

    windows: the load's 1-s windows in order; fault: its record with started/ended set when it was done;
    allowance_s: --recovery in seconds; rules: the SLO's request terms; others: [started, ended] of the
    other faults, seconds on the run's axis.
    """
    reference = reference_kind(fault.action)
    recovery = Recovery(reference=reference, allowance_s=allowance_s, source=RECOVERY_SOURCE)  # type: ignore[arg-type]
    if fault.started is None or (fault.kernel == "refused"):
        recovery.summary = "not measured: the fault was not done"
        return recovery
    ended = fault.ended if fault.ended is not None else fault.started
    during = [w for w in windows if w.start < max(ended, fault.started + _EPS) and w.start + WINDOW_S > fault.started]
    recovery.requests = sum(w.requests for w in during)
    recovery.errors = sum(w.failures for w in during)
    if fault.undone_by in ("load end", "interrupted") and reference == "end":
        recovery.summary = "not measured: the fault lasted to the load's end"
        return recovery
    origin = fault.started if reference == "start" else ended
    recovery.from_t = round(origin, 3)
    rules = baseline_rules(windows, fault.started, rules, others)
    recovery.judged_on = ",".join(str(rule) for rule in rules)
    after = [w for w in windows if w.start >= origin - _EPS]
    first = next((w for w in after if w.requests - w.failures > 0), None)
    if first is not None:
        recovery.first_success_s = round(first.start - origin, 3)
    deadline = origin + allowance_s
    found: float | None = None
    blocked = not after  # no window after it: the load ended first
    overlapped = False  # a span was passed over because another fault fell in it
    for i in range(len(after)):
        span = after[i : i + SPAN_WINDOWS]
        if len(span) < SPAN_WINDOWS:
            blocked = blocked or after[i].start <= deadline
            break
        low, high = span[0].start, span[-1].start + WINDOW_S
        if any(start < high and end > low for start, end in others):
            blocked = blocked or low <= deadline
            overlapped = True
            continue
        if span[0].requests - span[0].failures > 0 and span_holds(span, rules):
            found = low
            break
    end = found if found is not None else deadline
    counted = [w for w in after if w.start < end - _EPS]
    recovery.requests_to_recovery = sum(w.requests for w in counted)
    recovery.errors_to_recovery = sum(w.failures for w in counted)
    if found is not None:
        recovery.recovered_s = round(found - origin, 3)
    if found is not None and found <= deadline + _EPS:
        recovery.status = "recovered"
        recovery.summary = f"recovered in {found - origin:.1f} s" + (
            " (the first 5-s span clear of another fault)" if overlapped else ""
        )
    elif found is not None and not blocked:
        recovery.status = "not_recovered"
        recovery.summary = f"recovered in {found - origin:.1f} s, past its {allowance_s:g} s allowance"
    elif not blocked:
        recovery.status = "not_recovered"
        recovery.summary = f"did not recover within {allowance_s:g} s"
    else:
        recovery.status = "not_observed"
        recovery.summary = (
            f"not observed: no full 5-s span clear of other faults started within {allowance_s:g} s of it "
            "before the load ended"
        )
    return recovery


def baseline_rules(
    windows: Sequence[WindowStats],
    started: float,
    rules: Sequence[SloRule],
    others: Sequence[tuple[float, float]] = (),
) -> list[SloRule]:
    """Return the rules that held over the 5 s before a fault, the ones it must hold again after it.

    The baseline is the last five windows that end by `started` and overlap no other fault. A term that
    did not hold there either (a p95 a busy machine missed all along) cannot say whether the service
    recovered from this fault, so it is left out; with no full baseline, every rule is kept.
    """
    before = [w for w in windows if w.start + WINDOW_S <= started + _EPS]
    clear = [w for w in before if not any(w.start < high and w.start + WINDOW_S > low for low, high in others)]
    baseline = clear[-SPAN_WINDOWS:]
    if len(baseline) < SPAN_WINDOWS or baseline[-1].start - baseline[0].start > SPAN_WINDOWS:
        return list(rules)
    requests, latency = span_figures(baseline)
    figures = Report(requests=requests, latency_ms=latency)
    return [rule for rule in rules if check(rule, actual_value(rule.metric, figures)).passed]


def exclusion_spans(faults: Sequence[FaultRecord], allowance_s: float) -> list[list[float]]:
    """Return each done fault's window plus its allowance, [from, to] seconds on the run's axis, in order."""
    spans = []
    for fault in faults:
        if fault.started is None or fault.kernel == "refused":
            continue
        spans.append([round(fault.started, 3), round(_explained_until(fault, allowance_s), 3)])
    return sorted(spans)


def _explained_until(fault: FaultRecord, allowance_s: float) -> float:
    assert fault.started is not None
    ended = fault.ended if fault.ended is not None else fault.started
    origin = fault.started if reference_kind(fault.action) == "start" else ended
    return max(ended, origin + allowance_s)


def outside(windows: Sequence[WindowStats], spans: Sequence[Sequence[float]]) -> list[WindowStats]:
    """Return the windows that overlap none of the spans."""
    return [w for w in windows if not any(w.start < high and w.start + WINDOW_S > low for low, high in spans)]


def slo_outside_faults(slo_spec: str, report: Report, windows: Sequence[WindowStats], allowance_s: float) -> Slo:
    """Judge the SLO with its request terms over the windows outside every fault's window plus allowance.

    report: the run's report (its memory trend judges mem_slope); windows: the load's 1-s windows. With no
    window left outside, the request terms are unmeasured (the run is then inconclusive).
    """
    spans = exclusion_spans(report.faults, allowance_s)
    kept = outside(windows, spans)
    requests, latency = span_figures(kept)
    slo = evaluate_slo(slo_spec, replace(report, requests=requests, latency_ms=latency))
    slo.excluded = spans
    slo.scope = (
        f"request terms over the load outside {len(spans)} fault window(s) plus the {allowance_s:g} s recovery "
        f"allowance: {len(kept)} of {len(windows)} 1-s windows, {requests.total} requests "
        "(stackprobe's listener in Locust)"
    )
    return slo


def restart_die_times(events: Sequence[Event], service: str) -> list[float]:
    """Return, per restart of a service's containers, the time of the die it followed (seconds).

    Counted as the watcher counts them: a die followed by a start, or a restart event (`docker restart`
    sends die, start, restart: one restart).
    """
    times: list[float] = []
    last_die: dict[str, float] = {}
    phase: dict[str, str] = {}
    for event in sorted((e for e in events if e.service == service), key=lambda e: e.t):
        state = phase.get(event.container)
        if event.action == "die":
            phase[event.container] = "died"
            last_die[event.container] = event.t
        elif event.action == "start" and state == "died":
            phase[event.container] = "restarted"
            times.append(last_die[event.container])
        elif event.action == "restart" and state == "restarted":
            phase.pop(event.container)
        elif event.action == "restart":
            phase.pop(event.container, None)
            times.append(last_die.get(event.container, event.t))
    return times


def explain_effects(report: Report, allowance_s: float) -> FaultEffects:
    """Split the target's restarts and OOM kills into those a fault on the target explains and the rest.

    Explained restarts are capped at report.restarts (the watcher's count), OOM kills at report.oom_kills;
    an OOM kill is explained when the engine's oom events of the target all fall in squeeze windows (when
    some do and some do not, as many kills as oom events inside are explained).
    """
    target = report.target.service

    def windows(actions: tuple[str, ...]) -> list[tuple[float, float]]:
        return [
            (f.started - EVENT_SLACK_S, _explained_until(f, allowance_s))
            for f in report.faults
            if f.service == target and f.action in actions and f.started is not None and f.kernel != "refused"
        ]

    def inside(t: float, spans: list[tuple[float, float]]) -> bool:
        return any(low <= t <= high for low, high in spans)

    restart_spans = windows(EXPLAINS_RESTARTS)
    explained_restarts = sum(inside(t, restart_spans) for t in restart_die_times(report.events, target))
    explained_restarts = min(explained_restarts, report.restarts)
    oom_spans = windows(EXPLAINS_OOM_KILLS)
    ooms = [e.t for e in report.events if e.service == target and e.action == "oom"]
    ooms_inside = sum(inside(t, oom_spans) for t in ooms)
    explained_ooms = report.oom_kills if ooms and ooms_inside == len(ooms) else min(ooms_inside, report.oom_kills)
    return FaultEffects(
        recovery_allowance_s=allowance_s,
        restarts_explained=explained_restarts,
        restarts_unexplained=report.restarts - explained_restarts,
        oom_kills_explained=explained_ooms,
        oom_kills_unexplained=report.oom_kills - explained_ooms,
    )
