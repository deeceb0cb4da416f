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
    describe_step_search,
    format_bytes,
    format_count,
    format_ms,
    format_number,
    format_peak_memory,
    format_percent,
    format_ratio,
    format_slo_value,
)
from stackprobe.report.model import Report

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
    scripts = [_static("uPlot.iife.min.js"), _static("report.js")]
    # Only these two scripts may run and nothing may be fetched, whatever a service name holds.
    hashes = " ".join(f"'sha256-{_sha256(script)}'" for script in scripts)
    csp = f"default-src 'none'; script-src {hashes}; style-src 'unsafe-inline'; img-src data:"
    title = f"stackprobe: {report.target.service or report.target.project} {report.verdict}"
    body = "\n".join(
        [
            _header(report),
            _cards(report),
            '<h2>Over time</h2>\n<div id="charts"></div>',
            _limits(report),
            _slo(report),
            _events(report),
            _writes(report),
            _cost(report),
            f"<footer>stackprobe {_e(report.stackprobe_version)}, report schema {report.schema_version}; "
            f"charts by uPlot {UPLOT_VERSION} (MIT).</footer>",
        ]
    )
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{csp}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>{_e(title)}</title>
<style>{_static("uPlot.min.css")}</style>
<style>{_static("report.css")}</style>
</head>
<body>
{body}
<script type="application/json" id="report-data">{script_json(report.to_dict())}</script>
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
    reasons = "".join(f"<li>{_e(reason)}</li>" for reason in report.reasons)
    facts = [
        ("project", target.project),
        ("service", target.service),
        ("URL", target.url),
        ("compose files", ", ".join(target.compose_files)),
        (
            "load",
            f"{load.locustfile}: {load.users} users, spawn rate {load.spawn_rate:g}/s, "
            f"{load.shape}, {load.duration_s:g} s",
        ),
        ("run", f"{report.started_at} to {report.finished_at} ({report.duration_s:.1f} s)"),
    ]
    if load.step_search is not None:
        facts.append(("step search", describe_step_search(load.step_search)))
    rows = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in facts)
    return (
        f'<h1>stackprobe report <span class="verdict {_e(report.verdict)}" id="verdict">{_e(report.verdict)}'
        f"</span></h1>\n"
        + (f'<ul class="reasons" id="reasons">{reasons}</ul>\n' if reasons else "")
        + f'<dl class="target">{rows}</dl>'
    )


def _cards(report: Report) -> str:
    requests, latency, memory, cpu, writes = (
        report.requests,
        report.latency_ms,
        report.memory,
        report.cpu,
        report.writes,
    )
    peak = format_peak_memory(memory)
    lost = writes.lost if writes.applicable else None
    cards = [
        ("requests", format_count(requests.total), False),
        ("requests/s", format_number(requests.rps), False),
        (
            "failures",
            f"{format_count(requests.failures)} ({format_ratio(requests.failure_ratio, 2)})",
            requests.failures > 0,
        ),
        ("p50 / p95 / p99", " / ".join(format_ms(v) for v in (latency.p50, latency.p95, latency.p99)), False),
        ("peak memory", peak, bool(memory.peak_ratio and memory.peak_ratio >= 0.9)),
        ("CPU peak / avg", f"{format_percent(cpu.peak_percent)} / {format_percent(cpu.avg_percent)}", False),
        ("OOM kills", str(report.oom_kills), report.oom_kills > 0),
        ("restarts", str(report.restarts), report.restarts > 0),
        ("writes lost", NA if lost is None else f"{lost} of {format_count(writes.acknowledged)}", bool(lost)),
    ]
    items = "".join(
        f'<div class="card{" bad" if bad else ""}"><div class="label">{_e(label)}</div>'
        f'<div class="value">{_e(value)}</div></div>'
        for label, value, bad in cards
    )
    return f'<h2>Summary</h2>\n<div class="cards" id="summary">{items}</div>'


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
    version = NA if limits.cgroup_version is None else f"v{limits.cgroup_version}"
    return (
        f'<h2>Limits</h2>\n<div id="limits">{table}\n'
        f"<p>cgroup {_e(version)}; applied as asked: {_yes_no(limits.applied_matches)}</p>"
        + (f'<ul class="reasons">{problems}</ul>' if problems else "")
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
            _yes_no(c.passed, "met", "not met"),
        ]
        for c in slo.checks
    )
    table = _table(["metric", "op", "threshold", "actual", "result"], rows)
    return f'<h2>SLO <code>{_e(slo.spec)}</code></h2>\n<div id="slo">{table}</div>'


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


def _writes(report: Report) -> str:
    writes = report.writes
    if not writes.applicable:
        return '<h2>Acknowledged writes</h2>\n<p id="writes" class="muted">n/a: the load logged no writes</p>'
    table = _table(
        ["acknowledged", "verified", "lost"],
        [[_e(format_count(v)) for v in (writes.acknowledged, writes.verified, writes.lost)]],
    )
    examples = "".join(f"<li><code>{_e(x)}</code></li>" for x in writes.lost_examples)
    return (
        f'<h2>Acknowledged writes</h2>\n<div id="writes">{table}'
        + (f"<p>lost, for example:</p><ul>{examples}</ul>" if examples else "")
        + "</div>"
    )


def _cost(report: Report) -> str:
    cost = report.cost
    table = _table(
        ["prober CPU", "prober CPU share", "load generator CPU"],
        [
            [
                _e(f"{cost.prober_cpu_seconds:.2f} s"),
                _e(format_percent(cost.prober_cpu_percent)),
                _e(format_percent(cost.load_generator_cpu_percent)),
            ]
        ],
    )
    return f'<h2>Cost of measuring</h2>\n<div id="cost">{table}</div>'
