"""Render a Report as one self-contained HTML page: tables, and uPlot charts drawn from embedded JSON."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable
from html import escape
from importlib import resources
from pathlib import Path

from stackprobe.report.fmt import (
    NA,
    SAMPLED_PEAK_SOURCE,
    describe_fault,
    describe_generator,
    describe_load,
    describe_step_search,
    describe_trend,
    format_bytes,
    format_count,
    format_ms,
    format_number,
    format_peak_memory,
    format_percent,
    format_ratio,
    format_slo_value,
    format_t,
    format_trend_slope,
    kernel_peak_source,
    listing_text,
    oom_counts_disagree,
    trend_growth,
    trend_headline,
)
from stackprobe.report.model import Report
from stackprobe.report.regression import describe_bound, figure_status, format_change, format_figure
from stackprobe.report.verdict import INCONCLUSIVE_PREFIX

UPLOT_VERSION = "1.6.32"
_STATIC = resources.files("stackprobe.report") / "static"


def render_html(report: Report, path: str | Path) -> Path:
    """Write the report as one HTML file that opens offline, and return its path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(html_page(report), encoding="utf-8")
    return target


def html_page(report: Report) -> str:
    """Return the report's HTML page, with uPlot, its CSS and the report data inlined."""
    title = f"stackprobe: {report.target.service or report.target.project} {report.verdict}"
    body = "\n".join(
        [
            _header(report),
            _problems(report),
            _cards(report),
            _charts(report),
            _clients(report),
            _limits(report),
            _slo(report),
            _baseline(report),
            _events(report),
            _faults(report),
            _writes(report),
            _cost(report),
            f"<footer>stackprobe {_e(report.stackprobe_version)}, report schema {report.schema_version}; "
            f"charts by uPlot {UPLOT_VERSION} (MIT).</footer>",
        ]
    )
    return offline_page(title, body, script="report.js", data=report.to_dict(), data_id="report-data")


def offline_page(
    title: str, body: str, *, script: str, data: object, data_id: str, styles: tuple[str, ...] = ()
) -> str:
    """Return a page that opens offline: uPlot and `script` (a file of static/) inlined, `data` as JSON.

    The Content-Security-Policy lets only these two scripts run, by their hashes, and fetches nothing,
    whatever a service name or a locustfile's error text holds. `body` must already be escaped HTML; the
    data is read by the script from `<script type="application/json" id=data_id>`; `styles` are more
    static/ CSS files after uPlot's and report.css.
    """
    scripts = [_static("uPlot.iife.min.js"), _static(script)]
    hashes = " ".join(f"'sha256-{_sha256(text)}'" for text in scripts)
    csp = f"default-src 'none'; script-src {hashes}; style-src 'unsafe-inline'; img-src data:"
    css = "\n".join(f"<style>{_static(name)}</style>" for name in ("uPlot.min.css", "report.css", *styles))
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{csp}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>{_e(title)}</title>
{css}
</head>
<body>
{body}
<script type="application/json" id="{data_id}">{script_json(data)}</script>
<script>{scripts[0]}</script>
<script>{scripts[1]}</script>
</body>
</html>
"""


def script_json(data: object) -> str:
    """Return JSON that is safe inside a <script> element: no "</script>", no "<!--"."""
    text = json.dumps(data, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _static(name: str) -> str:
    return (_STATIC / name).read_text(encoding="utf-8")


def _sha256(text: str) -> str:
    return base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii")


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _table(head: Iterable[str], rows: Iterable[Iterable[str]], row_classes: Iterable[str] = ()) -> str:
    """Return a table; head and cells must already be escaped HTML."""
    classes = list(row_classes)
    lines = ["<table>", "<tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>"]
    for i, row in enumerate(rows):
        cls = f' class="{classes[i]}"' if i < len(classes) else ""
        lines.append(f"<tr{cls}>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>")
    lines.append("</table>")
    return "\n".join(lines)


def _yes_no(flag: bool, yes: str = "yes", no: str = "no") -> str:
    return f'<span class="ok">{yes}</span>' if flag else f'<span class="bad">{no}</span>'


def _header(report: Report) -> str:
    target, load = report.target, report.load
    reasons = "".join(
        f'<li class="{"unseen" if reason.startswith(INCONCLUSIVE_PREFIX) else "seen"}">{_e(reason)}</li>'
        for reason in report.reasons
    )
    facts = [
        ("project", target.project),
        ("service", target.service),
        ("URL", target.url),
        ("compose files", ", ".join(target.compose_files)),
        ("load", describe_load(load)),
        ("run", f"{report.started_at} to {report.finished_at} ({report.duration_s:.1f} s)"),
    ]
    if load.locust_exit_code is not None:
        facts.append(("Locust exit code", str(load.locust_exit_code)))
    if load.overran:
        facts.append(("Locust overran", load.overran))
    if load.step_search is not None:
        facts.append(("step search", describe_step_search(load.step_search)))
    rows = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in facts)
    headline = trend_headline(report)
    return (
        f'<h1>stackprobe report <span class="verdict {_e(report.verdict)}" id="verdict">{_e(report.verdict)}'
        f"</span></h1>\n"
        + (f'<p class="headline" id="headline">{_e(headline)}</p>\n' if headline else "")
        + (f'<ul class="reasons" id="reasons">{reasons}</ul>\n' if reasons else "")
        + f'<dl class="target">{rows}</dl>'
    )


def _charts(report: Report) -> str:
    # report.js draws into this; the sources and the trend are worded here so the page spells them one way.
    kernel = kernel_peak_source(report.limits.cgroup_version)
    trend = report.memory.trend
    caption = ""
    if trend is not None and trend.slope_mib_per_min is not None:
        text = f"memory trend (black dashes): {describe_trend(trend, report.load)}; source: {trend.source}"
        caption = f' data-trend="{_e(text)}"'
    return (
        f'<h2>Over time</h2>\n<div id="charts" data-sampled-source="{_e(SAMPLED_PEAK_SOURCE)}" '
        f'data-kernel-peak-source="{_e(kernel)}"{caption}></div>'
    )


def _problems(report: Report) -> str:
    if not report.problems:
        return ""
    items = "".join(f"<li>{_e(problem)}</li>" for problem in report.problems)
    return f'<h2>What the run could not observe</h2>\n<ul class="problems" id="problems">{items}</ul>'


def _card(
    label: str, value: str, bad: bool = False, details: Iterable[str] = (), card_id: str = "", extra: str = ""
) -> str:
    """Return a summary card; label, value and details are text, escaped here; `extra` is a class name."""
    lines = "".join(f'<div class="detail">{_e(detail)}</div>' for detail in details)
    ident = f' id="{card_id}"' if card_id else ""
    classes = " ".join(["card", *(["bad"] if bad else []), *(["wide"] if details else []), *([extra] if extra else [])])
    return (
        f'<div class="{classes}"{ident}><div class="label">{_e(label)}</div>'
        f'<div class="value">{_e(value)}</div>{lines}</div>'
    )


def _cards(report: Report) -> str:
    requests, latency, cpu, writes = report.requests, report.latency_ms, report.cpu, report.writes
    # The memory and OOM cards first: they carry their sources, and are what the prober is for.
    cards = [
        _peak_card(report),
        _trend_card(report),
        _oom_card(report),
        _card("requests", format_count(requests.total)),
        _card("requests/s", format_number(requests.rps)),
        _card(
            "failures",
            f"{format_count(requests.failures)} ({format_ratio(requests.failure_ratio, 2)})",
            requests.failures > 0,
        ),
        _card("exceptions", format_count(requests.exceptions), requests.exceptions > 0),
        _card("p50 / p95 / p99", " / ".join(format_ms(v) for v in (latency.p50, latency.p95, latency.p99))),
        _card("CPU peak / avg", f"{format_percent(cpu.peak_percent)} / {format_percent(cpu.avg_percent)}"),
        _restarts_card(report),
    ]
    if report.target_exits:
        cards.append(_card("target exits", ", ".join(report.target_exits), True, ["stopped, not started again"]))
    if writes.applicable:
        cards.append(
            _card(
                "writes lost", f"{format_count(writes.lost)} of {format_count(writes.acknowledged)}", bool(writes.lost)
            )
        )
        cards.append(
            _card(
                "writes unverified",
                f"{format_count(writes.unverified)} of {format_count(writes.acknowledged)}",
                bool(writes.unverified),
                [writes.gave_up] if writes.gave_up else [],
            )
        )
    else:
        cards.append(_card("writes lost", NA))
    return f'<h2>Summary</h2>\n<div class="cards" id="summary">{"".join(cards)}</div>'


def _restarts_card(report: Report) -> str:
    if not report.faults:
        return _card("restarts", str(report.restarts), report.restarts > 0)
    effects = report.fault_effects
    details = [
        f"{effects.restarts_explained} explained by a fault, {effects.restarts_unexplained} unexplained",
        f"OOM kills: {effects.oom_kills_explained} explained, {effects.oom_kills_unexplained} unexplained",
    ]
    unexplained = effects.restarts_unexplained > 0 or effects.oom_kills_unexplained > 0
    return _card("restarts", str(report.restarts), unexplained, details, "restarts")


def _peak_card(report: Report) -> str:
    memory = report.memory
    details: list[str] = []
    if memory.peak_bytes is not None:
        details.append(f"from {memory.peak_source or 'a source not recorded'}")
    if memory.peak_bytes is not None or memory.peak_kernel_bytes is not None or memory.peak_sampled_bytes is not None:
        kernel = "not read" if memory.peak_kernel_bytes is None else format_bytes(memory.peak_kernel_bytes)
        details.append(f"{kernel_peak_source(report.limits.cgroup_version)}: {kernel}")
        details.append(f"{SAMPLED_PEAK_SOURCE}: {format_bytes(memory.peak_sampled_bytes)}")
    if memory.frozen_at is not None:
        details.append(f"frozen at the limit from t={memory.frozen_at:.1f} s (under_oom)")
    high = bool(memory.peak_ratio and memory.peak_ratio >= 0.9) or memory.frozen_at is not None
    return _card("peak memory", format_peak_memory(memory), high, details, "peak-memory")


def _trend_card(report: Report) -> str:
    trend = report.memory.trend
    if trend is None or trend.slope_mib_per_min is None:
        return _card("memory trend", NA, details=[describe_trend(trend)], card_id="memory-trend")
    growth = trend_growth(trend)
    value = format_trend_slope(trend, interval=False) + ("" if growth == "growing" else f" ({growth})")
    details = [describe_trend(trend, report.load), f"from {trend.source}"]
    return _card("memory trend", value, trend.time_to_limit_s is not None, details, "memory-trend")


def _oom_card(report: Report) -> str:
    details = [
        f"from {report.oom_kills_source or 'a source not recorded'}",
        f"engine oom events: {report.oom_events}",
    ]
    disagree = oom_counts_disagree(report)
    if disagree:
        details.append("the kernel's count and the engine's events disagree")
    return _card(
        "OOM kills", str(report.oom_kills), report.oom_kills > 0, details, "oom-kills", "disagree" if disagree else ""
    )


def _limits(report: Report) -> str:
    limits = report.limits
    rows = [
        [
            "memory",
            format_bytes(limits.memory_requested_bytes),
            format_bytes(limits.memory_declared_bytes),
            format_bytes(limits.memory_applied_bytes),
            format_bytes(limits.memory_cgroup_bytes),
        ],
        ["memory + swap", "", "", format_bytes(limits.memswap_applied_bytes), ""],
        ["CPUs", format_number(limits.cpus_requested, 2), "", format_number(limits.cpus_applied, 2), ""],
    ]
    table = _table(
        ["limit", "asked", "declared in Compose", "applied by the engine", "seen in the cgroup"],
        ([_e(cell) for cell in row] for row in rows),
    )
    problems = "".join(f"<li>{_e(p)}</li>" for p in limits.problems)
    notes = "".join(f"<li>{_e(n)}</li>" for n in limits.notes)
    version = NA if limits.cgroup_version is None else f"v{limits.cgroup_version}"
    return (
        f'<h2>Limits</h2>\n<div id="limits">{table}\n'
        f"<p>cgroup {_e(version)}; applied as asked: {_yes_no(limits.applied_matches)}</p>"
        + (f'<ul class="reasons">{problems}</ul>' if problems else "")
        + (f'<ul class="notes" id="limit-notes">{notes}</ul>' if notes else "")
        + "</div>"
    )


def _slo(report: Report) -> str:
    slo = report.slo
    if not slo.checks:
        return '<h2>SLO</h2>\n<p id="slo" class="muted">no SLO given</p>'
    rows = (
        [
            _e(c.metric),
            _e(c.op),
            _e(format_slo_value(c.metric, c.threshold)),
            _e(format_slo_value(c.metric, c.actual)),
            _yes_no(c.passed, "met", "not met") if c.actual is not None else '<span class="unseen">not measured</span>',
        ]
        for c in slo.checks
    )
    table = _table(["metric", "op", "threshold", "actual", "result"], rows)
    scope = f'<p class="muted" id="slo-scope">judged on {_e(slo.scope)}</p>' if slo.scope else ""
    return f'<h2>SLO <code>{_e(slo.spec)}</code></h2>\n<div id="slo">{table}{scope}</div>'


def _baseline(report: Report) -> str:
    """Return this run beside its base run (--baseline), figure by figure; "" without a baseline."""
    baseline = report.baseline
    if baseline is None:
        return ""
    classes = {"regressed": "bad", "within": "ok", "not measured": "unseen"}
    rows = []
    for figure in baseline.figures:
        status = figure_status(figure)
        rows.append(
            [
                _e(figure.metric),
                _e(format_figure(figure.unit, figure.base)),
                _e(format_figure(figure.unit, figure.new)),
                _e(format_change(figure)),
                _e(describe_bound(figure)),
                f'<span class="{classes[status]}">{_e(status)}</span>' if status else "",
                _e(figure.source),
            ]
        )
    head = ["figure", "base run", "this run", "change", "allowed", "result", "source (this run)"]
    table = _table(head, rows)
    return (
        f"<h2>Against the base run <code>{_e(baseline.path)}</code></h2>\n"
        f'<div id="baseline"><p class="muted">base run {_e(baseline.base_project)} from '
        f"{_e(baseline.base_started_at)}, verdict {_e(baseline.base_verdict)}; bounds "
        f"<code>{_e(baseline.max_regression)}</code></p>\n{table}</div>"
    )


def _events(report: Report) -> str:
    if not report.events:
        return '<h2>Events</h2>\n<p id="events" class="muted">no container events</p>'
    rows = (
        [
            _e(f"{e.t:.1f} s"),
            _e(e.action),
            _e(e.service),
            _e(e.container),
            _e(NA if e.exit_code is None else e.exit_code),
        ]
        for e in report.events
    )
    classes = [f"event-row event-row-{_e(e.action)}" for e in report.events]
    table = _table(["t", "event", "service", "container", "exit code"], rows, classes)
    return f'<h2>Events</h2>\n<div id="events">{table}</div>'


def _faults(report: Report) -> str:
    if not report.faults:
        return ""
    effects = report.fault_effects
    rows = []
    for fault in report.faults:
        recovery = fault.recovery
        rows.append(
            [
                _e(describe_fault(fault)),
                _yes_no(fault.done),
                _e(format_t(fault.started)),
                _e(format_t(fault.ended)),
                _e(NA if recovery is None else format_count(recovery.requests)),
                _e(NA if recovery is None else format_count(recovery.errors)),
                _e(
                    NA
                    if recovery is None or recovery.first_success_s is None
                    else f"{recovery.first_success_s:.1f}-{recovery.first_success_s + 1:.1f} s after"
                ),
                _e(recovery.summary if recovery is not None else NA),
                _e("; ".join(x for x in (fault.kernel, fault.kernel_detail, fault.error) if x)),
            ]
        )
    classes = [f"fault-row fault-row-{f.recovery.status if f.recovery else 'none'}" for f in report.faults]
    table = _table(
        [
            "fault",
            "done",
            "started",
            "ended",
            "requests during",
            "errors during",
            "first success",
            "recovery",
            "kernel, engine",
        ],
        rows,
        classes,
    )
    allowance = NA if effects.recovery_allowance_s is None else f"{effects.recovery_allowance_s:g} s"
    source = report.faults[0].recovery.source if report.faults[0].recovery else ""
    return (
        f'<h2>Faults</h2>\n<div id="faults">{table}'
        f"<p>recovery allowance {_e(allowance)}; restarts explained by a fault {effects.restarts_explained}, "
        f"unexplained {effects.restarts_unexplained}; OOM kills explained {effects.oom_kills_explained}, "
        f"unexplained {effects.oom_kills_unexplained}. Each fault is a band on the charts, its recovery a "
        f"hatched one. Source: {_e(source)}.</p></div>"
    )


def _writes(report: Report) -> str:
    writes = report.writes
    if not writes.applicable:
        return '<h2>Acknowledged writes</h2>\n<p id="writes" class="muted">n/a: the load logged no writes</p>'
    table = _table(
        ["acknowledged", "verified", "lost", "unverified (could not be checked)"],
        [[_e(format_count(v)) for v in (writes.acknowledged, writes.verified, writes.lost, writes.unverified)]],
    )
    parts = [f'<h2>Acknowledged writes</h2>\n<div id="writes">{table}']
    if writes.indeterminate is not None:
        headers = [
            "indeterminate",
            "recovered (applied)",
            "not applied",
            "unresolved",
            "refused",
            "refused but written",
        ]
        headers.append("duplicated")
        figures = (
            writes.indeterminate,
            writes.recovered,
            writes.not_applied,
            writes.unresolved,
            writes.failed,
            writes.failed_applied,
            writes.duplicated,
        )
        parts.append(_table(headers, [[_e(format_count(v)) for v in figures]]))
    if writes.listing is not None:
        parts.append(f'<p id="writes-listing">read back: {_e(listing_text(writes))}</p>')
    if writes.gave_up:
        parts.append(f'<p class="unseen">the audit gave up: {_e(writes.gave_up)}</p>')
    for label, examples in (
        ("lost", writes.lost_examples),
        ("unverified", writes.unverified_examples),
        ("duplicated", writes.duplicated_examples),
        ("refused but written", writes.failed_applied_examples),
        ("unresolved", writes.unresolved_examples),
    ):
        if examples:
            items = "".join(f"<li><code>{_e(x)}</code></li>" for x in examples)
            parts.append(f"<p>{label}, for example:</p><ul>{items}</ul>")
    return "".join(parts) + "</div>"


def _cost(report: Report) -> str:
    cost = report.cost
    warning = (
        '<span class="bad">yes: the generator, not the service, may have set the pace</span>'
        if cost.load_generator_cpu_warning
        else "no"
    )
    table = _table(
        ["prober CPU", "prober CPU share", "load generator CPU", "Locust's CPU warning"],
        [
            [
                _e(f"{cost.prober_cpu_seconds:.2f} s"),
                _e(format_percent(cost.prober_cpu_percent)),
                _e(format_percent(cost.load_generator_cpu_percent)),
                warning,
            ]
        ],
    )
    return f'<h2>Cost of measuring</h2>\n<div id="cost">{table}</div>' + _generator(report)


def _generator(report: Report) -> str:
    """Return the distributed load generator's block: the master, and per worker its requests and CPU."""
    dist = report.load.distributed
    if dist is None:
        return ""
    summary = _e(describe_generator(dist))
    rows, classes = [], []
    for worker in dist.workers:
        lost = (
            "its heartbeats stopped"
            if worker.missing
            else f"exit code {worker.exit_code}"
            if worker.exit_code not in (None, 0)
            else ""
        )
        rows.append(
            [
                _e(worker.id),
                _e("this machine" if worker.local else worker.host or "unknown"),
                _e(format_count(worker.requests)),
                _e(format_count(worker.failures)),
                _e(format_percent(worker.cpu_percent, 0)),
                _e(format_percent(worker.cpu_busiest_percent, 0)),
                _e(format_percent(worker.locust_cpu_percent_max, 0)),
                _yes_no(not worker.saturated, "no", "yes: it may have set the pace"),
                _yes_no(worker.listener),
                _yes_no(not lost, "no", f"yes: {_e(lost)}"),
            ]
        )
        classes.append("event-row-oom" if worker.saturated or lost else "")
    table = _table(
        [
            "worker",
            "where",
            "requests",
            "failures",
            "CPU over its life",
            "CPU, busiest 10 s",
            "CPU by Locust's heartbeats (max)",
            "saturated",
            "stackprobe's listener",
            "lost during the run",
        ],
        rows,
        classes,
    )
    sources = (
        "Requests: each worker's stats reports to the master (Locust's stats_total), which its totals add up. "
        "CPU over its life and over its busiest 10 s: stackprobe's measure of each worker process started "
        "on this machine (psutil, /proc). Locust's heartbeats: psutil's cpu_percent over Locust's 10-s monitor "
        "interval, as each worker sent it to the master. Percent of one core: one worker is one process."
    )
    return (
        f'<h2>Load generator</h2>\n<div id="generator"><p class="{"bad" if dist.generator_bound else ""}">'
        f'{summary}</p>{table}<p class="muted">{_e(sources)}</p></div>'
    )


def _extent(report: Report) -> tuple[float, float] | None:
    """Return the run's time axis as the charts draw it: the earliest and latest t of anything on it."""
    series = report.series
    times = [*series.load.t, *(t for c in series.containers.values() for t in c.t), *(e.t for e in report.events)]
    errors = report.client_errors
    times += [t for row in [*errors.failures, *errors.exceptions] for t in (row.first_t, row.last_t) if t is not None]
    times += [t for f in report.faults for t in (f.started, f.ended) if t is not None]
    return (min(times), max(times)) if times else None


def _when(first: float | None, last: float | None, extent: tuple[float, float] | None) -> str:
    """Return a bar placing first..last on the run's time axis (the charts' x axis)."""
    if first is None or extent is None:
        return ""
    last = first if last is None else last
    low, high = extent
    span = (high - low) or 1.0
    left = max(0.0, min(100.0, (first - low) / span * 100))
    width = max(0.5, min(100.0 - left, (last - first) / span * 100))
    return (
        f'<div class="when" title="{_e(format_t(first))} to {_e(format_t(last))}">'
        f'<div class="span" style="left:{left:.2f}%;width:{width:.2f}%"></div></div>'
    )


def _clients(report: Report) -> str:
    errors = report.client_errors
    extent = _extent(report)
    axis = (
        f"on the charts' time axis, {format_t(extent[0])} to {format_t(extent[1])}"
        if extent is not None
        else "on the charts' time axis"
    )
    parts = ["<h2>What the clients saw</h2>", '<div id="clients">']
    if errors.failures:
        rows = (
            [
                _e(f.method),
                _e(f.name),
                _e(f.error),
                _e(format_count(f.occurrences)),
                _e(format_t(f.first_t)),
                _e(format_t(f.last_t)),
                _when(f.first_t, f.last_t, extent),
            ]
            for f in errors.failures
        )
        head = ["method", "name", "error", "occurrences", "first seen", "last seen", _e(f"when ({axis})")]
        parts.append(f'<h3>Failed requests</h3>\n<div id="client-failures">{_table(head, rows)}</div>')
    else:
        parts.append('<p id="client-failures" class="muted">no failed request</p>')
    if errors.exceptions:
        rows = (
            [
                f"<pre>{_e(x.message)}</pre>"
                + (
                    f"<details><summary>traceback</summary><pre>{_e(x.traceback)}</pre></details>"
                    if x.traceback
                    else ""
                ),
                _e(format_count(x.count)),
                _e(format_t(x.first_t)),
                _e(format_t(x.last_t)),
                _when(x.first_t, x.last_t, extent),
            ]
            for x in errors.exceptions
        )
        head = ["exception in the locustfile", "count", "first seen", "last seen", _e(f"when ({axis})")]
        parts.append(f'<h3>Exceptions</h3>\n<div id="client-exceptions">{_table(head, rows)}</div>')
    else:
        parts.append('<p id="client-exceptions" class="muted">no exception in the locustfile</p>')
    parts.append("</div>")
    return "\n".join(parts)
