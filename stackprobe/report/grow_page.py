"""Render grow.json for people: a console table, and one self-contained grow.html with its charts.

The page inlines uPlot, the report's CSS and grow.js, with a Content-Security-Policy that lets only those
scripts run and fetches nothing; each run's own report.html is linked, relative to the page.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from html import escape
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from stackprobe.report.fmt import NA, format_bytes, format_count, format_ms, format_number, format_ratio
from stackprobe.report.page import UPLOT_VERSION, offline_page

_VERDICT_STYLES = {"pass": "bold green", "fail": "bold red", "inconclusive": "bold yellow"}
_VERDICT_WORDS = {"pass": "held", "fail": "broke", "inconclusive": "inconclusive"}


def format_rows(rows: int | None) -> str:
    """Return a row count with thousands separators, or "n/a"."""
    return format_count(rows)


def describe_point(point: Any) -> str:
    """Return one line about a run at one size (a GrowPoint or its grow.json dict)."""
    data = point if isinstance(point, Mapping) else dataclasses.asdict(point)
    if data.get("error"):
        return f"not run: {str(data['error']).splitlines()[0]}"
    parts = [_VERDICT_WORDS.get(data["verdict"], data["verdict"]), f"peak {format_bytes(data.get('peak_bytes'))}"]
    if data.get("limit_bytes"):
        parts[-1] += f" ({format_ratio(data.get('peak_ratio'))} of {format_bytes(data['limit_bytes'])})"
    parts.append(f"p95 {format_ms(data.get('p95_ms'))}")
    parts.append(f"errors {format_ratio(data.get('error_ratio'), 2)}")
    if data.get("oom_kills"):
        parts.append(f"{data['oom_kills']} OOM kill(s)")
    if data.get("seed_s") is not None:
        parts.append(f"seeded in {data['seed_s']:.1f} s")
    return ", ".join(parts)


def describe_fit(document: Mapping[str, Any]) -> list[str]:
    """Return the fit of peak memory against rows in words, one line per fact."""
    fit = document["fit"]
    limit = document["target"]["memory_limit_bytes"]
    if fit["bytes_per_row"] is None:
        lines = [f"bytes per row: not fitted (peaks measured at {fit['points']} size(s); two are needed)"]
    else:
        low, high = fit["bytes_per_row_low"], fit["bytes_per_row_high"]
        interval = (
            "no interval from two sizes"
            if low is None
            else f"{fit['confidence']:.0%} interval {low:,.1f} to {high:,.1f} B"
        )
        lines = [
            f"bytes per row: {fit['bytes_per_row']:,.1f} B by Theil-Sen over {fit['points']} sizes ({interval}; "
            f"least squares {fit['least_squares_bytes_per_row']:,.1f} B)"
        ]
    if fit["peak_spread"] is not None:
        lines.append(f"peak memory across the sizes: within {format_ratio(fit['peak_spread'])} of the lowest")
    if fit["rows_at_limit"] is not None and limit:
        largest = max((p["rows"] for p in document["points"]), default=0)
        beyond = " (beyond the largest size tried: an extrapolation)" if fit["rows_at_limit"] > largest else ""
        lines.append(
            f"at this slope the {format_bytes(limit)} limit is reached at about {format_rows(fit['rows_at_limit'])} "
            f"rows{beyond}"
        )
    elif fit["bytes_per_row_low"] is not None and limit:
        lines.append("no growth with rows measured: the slope's interval reaches zero or below")
    return lines


def describe_break(search: Mapping[str, Any] | None) -> str | None:
    """Return the break search's answer in words, or None when none was asked for."""
    if search is None:
        return None
    held, broke = search["last_held_rows"], search["first_broke_rows"]
    if broke is None:
        return "break: no size broke, so there is no break to find"
    if held is None:
        return f"break: at or below {format_rows(broke)} rows ({search['stop_reason']})"
    return (
        f"break: the limit breaks between {format_rows(held)} rows (held) and {format_rows(broke)} rows (broke), "
        f"after {search['runs']} bisection run(s); {search['stop_reason']}"
    )


def render_grow_console(document: Mapping[str, Any], console: Console) -> None:
    """Print the grow table (one row per run, by rows), the fit, the break and the verdict."""
    bisected = any(point["phase"] == "bisection" for point in document["points"])
    table = Table(title=f"stackprobe grow: {document['target']['service']}, peak memory against rows")
    columns = ["rows", *(["run"] if bisected else []), "verdict", "peak", "of limit", "p95", "errors", "req/s"]
    for column in [*columns, "OOM", "seeded"]:
        table.add_column(column, justify="left" if column in ("run", "verdict") else "right", no_wrap=True)
    for point in document["points"]:
        verdict = Text(_VERDICT_WORDS.get(point["verdict"], point["verdict"]), style=_VERDICT_STYLES[point["verdict"]])
        table.add_row(
            format_rows(point["rows"]),
            *([point["phase"]] if bisected else []),
            verdict,
            format_bytes(point["peak_bytes"]),
            format_ratio(point["peak_ratio"]),
            format_ms(point["p95_ms"]),
            format_ratio(point["error_ratio"], 2),
            format_number(point["rps"]),
            NA if point["oom_kills"] is None else str(point["oom_kills"]),
            NA if point["seed_s"] is None else f"{point['seed_s']:.1f} s",
        )
    console.print(table)
    for point in document["points"]:
        if point["error"]:
            console.print(Text(f"{format_rows(point['rows'])} rows not run: {point['error']}"))
    console.print("each run's own report: runs/<label>/report.html beside grow.html", highlight=False)
    for line in describe_fit(document):
        console.print(line, highlight=False)
    words = describe_break(document["break"])
    if words is not None:
        console.print(words, highlight=False)
    verdict = document["verdict"]
    console.print(Text.assemble("Verdict: ", (verdict.upper(), _VERDICT_STYLES[verdict])))
    for reason in document["reasons"]:
        console.print(Text(f"  - {reason}"))


def render_grow_html(document: Mapping[str, Any], path: str | Path) -> Path:
    """Write grow.html, a page that opens offline, and return its path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(grow_html_page(document), encoding="utf-8")
    return target


def grow_html_page(document: Mapping[str, Any]) -> str:
    """Return grow.html: the runs by size, the fit and the break, with uPlot and the data inlined."""
    verdict = document["verdict"]
    title = f"stackprobe grow: {document['target']['service']} {verdict}"
    body = "\n".join(
        [
            _header(document),
            _cards(document),
            '<h2>Against rows</h2>\n<div id="charts"></div>',
            _runs(document),
            f"<footer>stackprobe {_e(document['stackprobe_version'])}, grow schema {document['schema_version']}; "
            f"charts by uPlot {UPLOT_VERSION} (MIT).</footer>",
        ]
    )
    return offline_page(title, body, script="grow.js", data=document, data_id="grow-data")


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _header(document: Mapping[str, Any]) -> str:
    target, load = document["target"], document["load"]
    verdict = document["verdict"]
    reasons = "".join(
        f'<li class="{"unseen" if reason.startswith("inconclusive: ") else "seen"}">{_e(reason)}</li>'
        for reason in document["reasons"]
    )
    facts = [
        ("service", target["service"]),
        ("compose files", ", ".join(target["compose_files"])),
        ("memory limit", format_bytes(target["memory_limit_bytes"])),
        ("sizes", ", ".join(format_rows(rows) for rows in document["sizes"]) + " rows"),
        ("seed command", document["seed_command"]),
        ("load", f"{load['locustfile']}: {load['users']} users for {load['duration_s']:g} s at each size"),
        ("SLO", load["slo"]),
        ("grow", f"{document['started_at']} to {document['finished_at']} ({document['duration_s']:.0f} s)"),
    ]
    rows = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in facts)
    return (
        f'<h1>stackprobe grow <span class="verdict {_e(verdict)}" id="verdict">{_e(verdict)}</span></h1>\n'
        + (f'<ul class="reasons" id="reasons">{reasons}</ul>\n' if reasons else "")
        + f'<dl class="target">{rows}</dl>'
    )


def _card(label: str, value: str, details: Iterable[str] = (), card_id: str = "") -> str:
    lines = "".join(f'<div class="detail">{_e(detail)}</div>' for detail in details)
    ident = f' id="{card_id}"' if card_id else ""
    return (
        f'<div class="card wide"{ident}><div class="label">{_e(label)}</div>'
        f'<div class="value">{_e(value)}</div>{lines}</div>'
    )


def _cards(document: Mapping[str, Any]) -> str:
    fit = document["fit"]
    slope = fit["bytes_per_row"]
    cards = [
        _card(
            "bytes per row",
            NA if slope is None else f"{slope:,.1f} B",
            describe_fit(document),
            "bytes-per-row",
        )
    ]
    search = describe_break(document["break"])
    if search is not None:
        held, broke = document["break"]["last_held_rows"], document["break"]["first_broke_rows"]
        value = NA if broke is None else f"{format_rows(held)} .. {format_rows(broke)} rows"
        cards.append(_card("where the limit breaks", value, [search], "break"))
    return f'<h2>Summary</h2>\n<div class="cards" id="summary">{"".join(cards)}</div>'


def _runs(document: Mapping[str, Any]) -> str:
    head = ["rows", "run", "verdict", "peak memory", "of limit", "p95", "errors", "req/s", "OOM kills", "seeded in"]
    lines = ["<table>", "<tr>" + "".join(f"<th>{h}</th>" for h in [*head, "report"]) + "</tr>"]
    for point in document["points"]:
        verdict = point["verdict"]
        css = "ok" if verdict == "pass" else "bad" if verdict == "fail" else "unseen"
        cells = [
            _e(format_rows(point["rows"])),
            _e(point["phase"]),
            f'<span class="{css}">{_e(_VERDICT_WORDS.get(verdict, verdict))}</span>',
            _e(format_bytes(point["peak_bytes"])),
            _e(format_ratio(point["peak_ratio"])),
            _e(format_ms(point["p95_ms"])),
            _e(format_ratio(point["error_ratio"], 2)),
            _e(format_number(point["rps"])),
            _e(NA if point["oom_kills"] is None else point["oom_kills"]),
            _e(NA if point["seed_s"] is None else f"{point['seed_s']:.1f} s"),
        ]
        if point["page"]:
            cells.append(f'<a href="{_e(point["page"])}">{_e(point["label"])}</a>')
        else:
            cells.append(f'<span class="unseen">{_e(point["error"] or NA)}</span>')
        reasons = "".join(f"<li>{_e(reason)}</li>" for reason in point["reasons"])
        if reasons:
            cells[2] += f'<ul class="notes">{reasons}</ul>'
        lines.append(f'<tr class="run run-{_e(verdict)}">' + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    lines.append("</table>")
    return '<h2>Runs</h2>\n<div id="runs">' + "\n".join(lines) + "</div>"
