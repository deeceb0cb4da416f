"""Render a sweep or a fit as one self-contained HTML page: what was found, charts with one mark per run, a table
of the runs with a link to each run's own page.

Like the single-run page (page.py) it opens offline: uPlot, the chart code (static/comparison.js) and the
styles are inlined, and its Content-Security-Policy lets only those scripts run and nothing be fetched.
The charts put each run at its limit on the x axis (memory in MiB, or CPUs), its figure on the y axis, and
colour its mark by its verdict; a mark links to the run's report.html.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape
from pathlib import Path
from typing import Any

from stackprobe.report.comparison import Fit, RunRow, Sweep
from stackprobe.report.fmt import NA, format_bytes, format_ms, format_number, format_ratio, format_t
from stackprobe.report.page import UPLOT_VERSION, offline_page

MIB = 1024 * 1024
_FIT_STATUS_CLASS = {"found": "pass", "none_holds": "fail", "budget": "inconclusive", "uncertain": "inconclusive"}
_POINT_STATUS_CLASS = {"hold": "pass", "fail": "fail", "uncertain": "inconclusive", "untested": "untested"}


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def render_sweep_html(sweep: Sweep, path: str | Path) -> Path:
    """Write sweep.html to `path` and return it."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(sweep_page(sweep), encoding="utf-8")
    return target


def render_fit_html(fit: Fit, path: str | Path) -> Path:
    """Write fit.html to `path` and return it."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(fit_page(fit), encoding="utf-8")
    return target


def _x_axis(memory_swept: bool) -> dict[str, Any]:
    if memory_swept:
        return {"field": "memory_bytes", "label": "memory limit (MiB)", "divisor": MIB, "unit": "MiB"}
    return {"field": "cpus", "label": "CPU limit (CPUs)", "divisor": 1, "unit": "CPUs"}


def _charts(memory_on_x: bool) -> list[dict[str, Any]]:
    """The charts of both pages: each names the report.json figures it draws."""
    memory_caption = "limit: dashes; the diagonal is peak = limit" if memory_on_x else "limit: dashes"
    return [
        {
            "id": "chart-rps",
            "title": "Requests per second",
            "source": "each run's report.json requests.rps (Locust's mean over the run)",
            "unit": "req/s",
            "marks": [{"field": "rps", "scale": 1, "style": "fill", "label": "req/s"}],
        },
        {
            "id": "chart-latency",
            "title": "Latency p95 (filled) and p99 (ring), ms",
            "source": "each run's report.json latency_ms.p95 and .p99 (Locust's, over the whole run)",
            "unit": "ms",
            "marks": [
                {"field": "p95_ms", "scale": 1, "style": "fill", "label": "p95"},
                {"field": "p99_ms", "scale": 1, "style": "ring", "label": "p99"},
            ],
        },
        {
            "id": "chart-errors",
            "title": "Failed requests, % of requests",
            "source": "each run's report.json requests.failure_ratio",
            "unit": "%",
            "marks": [{"field": "failure_ratio", "scale": 100, "style": "fill", "label": "failed"}],
        },
        {
            "id": "chart-memory",
            "title": f"Peak memory against the limit, MiB ({memory_caption})",
            "source": "each run's report.json memory.peak_bytes (see its peak_source) and memory.limit_bytes",
            "unit": "MiB",
            "diagonal": memory_on_x,
            "marks": [
                {"field": "peak_bytes", "scale": 1 / MIB, "style": "fill", "label": "peak"},
                {"field": "limit_bytes", "scale": 1 / MIB, "style": "limit", "label": "limit"},
            ],
        },
        {
            "id": "chart-oom",
            "title": "OOM kills",
            "source": "each run's report.json oom_kills (the kernel's oom_kill counter)",
            "unit": "",
            "marks": [{"field": "oom_kills", "scale": 1, "style": "fill", "label": "OOM kills"}],
        },
    ]


def _page(title: str, body: str, data: dict[str, Any]) -> str:
    return offline_page(
        title, body, script="comparison.js", data=data, data_id="comparison-data", styles=("comparison.css",)
    )


def _table(head: Iterable[str], rows: Iterable[Iterable[str]], row_classes: Sequence[str] = ()) -> str:
    """Return a table; head and cells must already be escaped HTML."""
    lines = ["<table>", "<tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>"]
    for i, row in enumerate(rows):
        cls = f' class="{row_classes[i]}"' if i < len(row_classes) else ""
        lines.append(f"<tr{cls}>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>")
    lines.append("</table>")
    return "\n".join(lines)


def _facts(pairs: Iterable[tuple[str, str]]) -> str:
    rows = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in pairs)
    return f'<dl class="target">{rows}</dl>'


def _link(href: str | None, text: str) -> str:
    return f'<a href="{_e(href)}">{_e(text)}</a>' if href else _e(text)


def _describe_load(doc: Sweep | Fit) -> str:
    load = doc.load
    shape = load.shape or "the locustfile's own"
    return (
        f"{load.locustfile}: {load.users} users, spawn rate {load.spawn_rate:g}/s, {shape} shape, "
        f"{load.duration_s:g} s per run"
    )


def _limit_cell(value: float | None, memory: bool) -> str:
    if value is None:
        return "as declared"
    return format_bytes(int(value)) if memory else f"{value:g}"


def _runs_section(rows: Sequence[RunRow], *, with_phase: bool) -> str:
    head = ["run", "memory", "CPUs", "verdict", "req/s", "p95", "p99", "errors", "peak", "OOM kills", "reasons"]
    if with_phase:
        head.insert(1, "step")
    body = []
    for row in rows:
        oom = NA if row.oom_kills is None else str(row.oom_kills)
        if row.oom_kills and row.first_oom_t is not None:
            oom += f" (first at {format_t(row.first_oom_t)})"
        peak = NA if row.peak_bytes is None else format_bytes(row.peak_bytes)
        if row.peak_bytes is not None and row.limit_bytes is not None and row.limit_bytes > 0:
            peak += f" of {format_bytes(row.limit_bytes)}"
        reasons = "".join(f"<li>{_e(r)}</li>" for r in row.reasons)
        cells = [
            _link(row.report_html, row.label),
            _e(_limit_cell(row.memory_bytes, True)),
            _e(_limit_cell(row.cpus, False)),
            f'<span class="verdict-text {_e(row.verdict)}">{_e(row.verdict)}</span>',
            _e(format_number(row.rps)),
            _e(format_ms(row.p95_ms)),
            _e(format_ms(row.p99_ms)),
            _e(format_ratio(row.failure_ratio, 2)),
            _e(peak),
            _e(oom),
            f'<ul class="run-reasons">{reasons}</ul>' if reasons else "",
        ]
        if with_phase:
            cells.insert(1, _e((row.phase or "") + (" (retry)" if row.retry else "")))
        body.append(cells)
    classes = [f"run-row run-{row.verdict}" for row in rows]
    return f'<h2>Runs</h2>\n<div id="runs">{_table([_e(h) for h in head], body, classes)}</div>'


def _legend(group: dict[str, Any] | None = None) -> str:
    items = "".join(
        f'<span class="chip"><span class="swatch v-{v}"></span>{_e(v)}</span>' for v in ("pass", "fail", "inconclusive")
    )
    shapes = ""
    if group is not None:
        # The same shapes as comparison.js gives marks: g-0 a circle, g-1 a square, g-2 a diamond, g-3 a leaf.
        chips = "".join(
            f'<span class="chip"><span class="swatch shape g-{i % 4}"></span>{_e(f"{value:g}")}</span>'
            for i, value in enumerate(group["values"])
        )
        shapes = f"; shaped by {_e(group['label'])}: {chips}"
    return (
        f'<p class="legend" id="legend">one mark per run, coloured by its verdict: {items}{shapes}; '
        "a mark opens its run</p>"
    )


def _data(doc: Sweep | Fit, x: dict[str, Any], group: dict[str, Any] | None, lines: list[dict[str, Any]]) -> dict:
    return {
        "kind": doc.kind,
        "x": x,
        "group": group,
        "lines": lines,
        "charts": _charts(x["field"] == "memory_bytes"),
        "runs": [
            {key: getattr(row, key) for key in ("label", "verdict", "repeat", "report_html", "memory_bytes", "cpus")}
            | {key: getattr(row, key) for key in ("rps", "p95_ms", "p99_ms", "failure_ratio", "peak_bytes")}
            | {"limit_bytes": row.limit_bytes if (row.limit_bytes or 0) > 0 else None, "oom_kills": row.oom_kills}
            for row in doc.runs
            if row.verdict != "error"
        ],
    }


def sweep_page(sweep: Sweep) -> str:
    """Return sweep.html: findings, charts of every run against its limit, and the runs' table."""
    memory_swept = bool(sweep.grid.memory_bytes)
    x = _x_axis(memory_swept)
    group = None
    if sweep.grid.memory_bytes and sweep.grid.cpus and len(sweep.grid.cpus) > 1:
        group = {"field": "cpus", "label": "CPUs", "values": sweep.grid.cpus}
    grid_words = []
    if sweep.grid.memory_bytes:
        grid_words.append("memory " + ", ".join(format_bytes(m) for m in sweep.grid.memory_bytes))
    if sweep.grid.cpus:
        grid_words.append("CPUs " + ", ".join(f"{c:g}" for c in sweep.grid.cpus))
    facts = [
        ("service", sweep.target.service),
        ("compose files", ", ".join(sweep.target.compose_files)),
        ("load", _describe_load(sweep)),
        ("SLO", sweep.slo),
        ("grid", f"{' x '.join(grid_words)}; {sweep.grid.repeat} run(s) per point"),
        ("sweep", f"{sweep.started_at} to {sweep.finished_at} ({sweep.duration_s:.1f} s)"),
    ]
    findings = "".join(f"<li>{_e(line)}</li>" for line in sweep.summary)
    body = "\n".join(
        [
            f'<h1>stackprobe sweep <span class="verdict {_e(sweep.verdict)}" id="verdict">'
            f"{_e(sweep.verdict)}</span></h1>",
            _facts(facts),
            f'<h2>What the runs show</h2>\n<ul class="findings" id="findings">{findings}</ul>',
            "<h2>Each run against its limit</h2>",
            _legend(group),
            '<div id="charts"></div>',
            _runs_section(sweep.runs, with_phase=False),
            f"<footer>stackprobe {_e(sweep.stackprobe_version)}, sweep schema {sweep.schema_version}; "
            f"charts by uPlot {UPLOT_VERSION} (MIT).</footer>",
        ]
    )
    title = f"stackprobe sweep: {sweep.target.service} {sweep.verdict}"
    return _page(title, body, {"doc": _data(sweep, x, group, [])})


def _fit_value(fit: Fit, value: float | None) -> str:
    if value is None:
        return NA
    return format_bytes(int(value)) if fit.resource == "memory" else f"{value:g} CPUs"


def _card(label: str, value: str, details: Sequence[str] = (), *, card_id: str, extra: str = "", link: str = "") -> str:
    """A card; label, value and details are text (escaped here); link is already-escaped HTML."""
    lines = "".join(f'<div class="detail">{_e(d)}</div>' for d in details)
    classes = " ".join(["card", "wide", *([extra] if extra else [])])
    return (
        f'<div class="{classes}" id="{card_id}"><div class="label">{_e(label)}</div>'
        f'<div class="value">{_e(value)}</div>{lines}{link}</div>'
    )


def _fit_cards(fit: Fit) -> str:
    holding, failing = fit.lowest_holding, fit.highest_failing
    cards = []
    if holding is not None:
        details = [f"{holding.passed} run(s) there, every one passed" + ("" if fit.confirmed else " (not confirmed)")]
        link = f'<div class="detail">{_link(holding.report_html, "its first run")}</div>' if holding.report_html else ""
        cards.append(
            _card(
                "lowest limit that held", _fit_value(fit, holding.value), details, card_id="lowest-holding", link=link
            )
        )
    else:
        cards.append(_card("lowest limit that held", "none in the range", card_id="lowest-holding", extra="bad"))
    if failing is not None:
        how = list(failing.reasons[:4])
        figures = [f"p95 {format_ms(failing.p95_ms)}", f"errors {format_ratio(failing.failure_ratio, 2)}"]
        if failing.oom_kills:
            at = f" (first at {format_t(failing.first_oom_t)})" if failing.first_oom_t is not None else ""
            figures.insert(0, f"{failing.oom_kills} OOM kill(s){at}")
        link = f'<div class="detail">{_link(failing.report_html, f"evidence: {failing.label}")}</div>'
        cards.append(
            _card(
                "highest limit that failed",
                _fit_value(fit, failing.value),
                [", ".join(figures), *how],
                card_id="highest-failing",
                extra="bad",
                link=link,
            )
        )
    else:
        cards.append(_card("highest limit that failed", "none tried failed", card_id="highest-failing"))
    cards.append(
        _card(
            "recommended",
            _fit_value(fit, fit.recommended.value),
            [fit.recommended.rule],
            card_id="recommended",
            extra="good",
        )
    )
    for key, name, rule in (("vpa", "VPA-style (memory)", fit.rules.vpa), ("krr", "KRR-style (memory)", fit.rules.krr)):
        value = NA if rule.value is None else format_bytes(int(rule.value))
        cards.append(_card(name, value, [rule.rule, rule.source], card_id=f"rule-{key}"))
    return f'<div class="cards" id="answer">{"".join(cards)}</div>'


def _fit_grid(fit: Fit) -> str:
    chips = "".join(
        f'<span class="point p-{_POINT_STATUS_CLASS[p.status]}" title="{_e(p.status)}: {p.passed} passed, '
        f'{p.failed} failed, {p.inconclusive} inconclusive">{_e(_fit_value(fit, p.value))}</span>'
        for p in fit.points
    )
    return (
        '<h2>The grid</h2>\n<p class="muted">each limit of the range: held, failed, uncertain or not run</p>'
        f'<div class="points" id="grid-points">{chips}</div>'
    )


def fit_page(fit: Fit) -> str:
    """Return fit.html: the answer with its evidence, the recommendations side by side, charts and the runs."""
    memory = fit.resource == "memory"
    x = _x_axis(memory)
    lines: list[dict[str, Any]] = []
    divisor = x["divisor"]
    if fit.lowest_holding is not None:
        lines.append({"x": fit.lowest_holding.value / divisor, "label": "lowest held", "kind": "holding"})
    if fit.recommended.value is not None:
        lines.append({"x": fit.recommended.value / divisor, "label": "recommended", "kind": "recommended"})
    if memory:
        for name, rule in (("VPA-style", fit.rules.vpa), ("KRR-style", fit.rules.krr)):
            if rule.value is not None:
                lines.append({"x": rule.value / MIB, "label": name, "kind": "rule"})
    what = "memory" if memory else "CPU"
    fixed = (
        f"CPUs {fit.fixed_cpus:g}"
        if memory and fit.fixed_cpus is not None
        else f"memory {format_bytes(fit.fixed_memory_bytes)}"
        if fit.fixed_memory_bytes is not None
        else "the compose file's own"
    )
    facts = [
        ("service", fit.target.service),
        ("compose files", ", ".join(fit.target.compose_files)),
        ("load", _describe_load(fit)),
        ("SLO", fit.slo),
        (
            "range",
            f"{_fit_value(fit, fit.range.low)} to {_fit_value(fit, fit.range.high)} "
            f"by {_fit_value(fit, fit.range.step)} ({len(fit.grid)} limits)",
        ),
        ("other limit", fixed),
        (
            "repeat, margin, budget",
            f"{fit.repeat}, {fit.margin:.0%}, " + ("none" if fit.budget_s is None else f"{fit.budget_s:g} s"),
        ),
        ("fit", f"{fit.started_at} to {fit.finished_at} ({fit.duration_s:.1f} s, {len(fit.runs)} runs)"),
    ]
    summary = "".join(f"<li>{_e(line)}</li>" for line in fit.summary)
    status = fit.status.replace("_", " ")
    body = "\n".join(
        [
            f'<h1>stackprobe fit: {_e(what)} <span class="verdict {_FIT_STATUS_CLASS[fit.status]}" id="status">'
            f"{_e(status)}</span></h1>",
            _facts(facts),
            "<h2>Answer</h2>",
            _fit_cards(fit),
            f'<ul class="findings" id="findings">{summary}</ul>',
            _fit_grid(fit),
            "<h2>Each run against its limit</h2>",
            _legend(),
            '<div id="charts"></div>',
            _runs_section(fit.runs, with_phase=True),
            f"<footer>stackprobe {_e(fit.stackprobe_version)}, fit schema {fit.schema_version}; "
            f"charts by uPlot {UPLOT_VERSION} (MIT).</footer>",
        ]
    )
    title = f"stackprobe fit: {fit.target.service} {what} {status}"
    return _page(title, body, {"doc": _data(fit, x, None, lines)})
