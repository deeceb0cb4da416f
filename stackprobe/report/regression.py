"""Words for a run held against a base run (--baseline): each figure side by side, and the regressions.

The comparison itself is made by stackprobe.baseline; this module only reads its result, the report's
`baseline` section, for the verdict, the console, the page and the CI outputs.
"""

from __future__ import annotations

from stackprobe.report.fmt import NA, format_bytes, format_number
from stackprobe.report.model import Baseline, BaselineFigure

REGRESSION_PREFIX = "regression against the base run: "


def format_figure(unit: str, value: float | None) -> str:
    """Return a baseline figure in its unit, e.g. "80.0 ms", "93.1 MiB", "123.5 req/s", "0.5%"."""
    if value is None:
        return NA
    if unit == "bytes":
        return format_bytes(int(value))
    if unit == "ms":
        return f"{value:.1f} ms"
    if unit == "%":
        return f"{value:.2f}%"
    if unit == "count":
        return format_number(value)
    if unit == "MiB/min":
        return f"{value:.2f} MiB/min"
    return f"{format_number(value)} {unit}"


def format_change(figure: BaselineFigure) -> str:
    """Return the change from the base run: "+27.5%", "=" (same), "n/a"; a difference, e.g. "+3" or
    "+0.4 MiB/min", where a relative change means nothing (from 0, or a figure that changes sign)."""
    if figure.base is None or figure.new is None:
        return NA
    if figure.new == figure.base:
        return "="
    if figure.change is not None:
        return f"{figure.change:+.1%}"
    difference = figure.new - figure.base
    sign = "+" if difference > 0 else "-"
    return sign + format_figure(figure.unit, abs(difference))


def describe_bound(figure: BaselineFigure) -> str:
    """Return the bound with the figure it allows, e.g. "+10% (at most 88.0 ms)"; "" when not bounded."""
    if figure.bound is None:
        return ""
    worst = "at least" if figure.bound.startswith("-") else "at most"
    return f"{figure.bound} ({worst} {format_figure(figure.unit, figure.allowed)})"


def describe_regression(figure: BaselineFigure) -> str:
    """Return one regressed figure with both values, the bound and the sources."""
    source = figure.source
    if figure.base_source and figure.base_source != figure.source:
        source += f"; base: {figure.base_source}"
    return (
        f"{figure.metric} {format_figure(figure.unit, figure.new)} against {format_figure(figure.unit, figure.base)} "
        f"in the base run ({format_change(figure)}; allowed {describe_bound(figure)}; {source})"
    )


def regression_reasons(baseline: Baseline | None) -> list[str]:
    """Return one verdict reason per figure beyond its bound (each fails the run); [] without a baseline."""
    if baseline is None:
        return []
    return [REGRESSION_PREFIX + describe_regression(f) for f in baseline.figures if f.regressed]


def unmeasured_reasons(baseline: Baseline | None) -> list[str]:
    """Return one reason per bounded figure this run did not measure (each makes it inconclusive)."""
    if baseline is None:
        return []
    return [
        f"baseline: {f.metric} was not measured in this run, so it could not be held to {f.bound} ({f.source})"
        for f in baseline.figures
        if f.bound is not None and f.new is None
    ]


def figure_status(figure: BaselineFigure) -> str:
    """Return "regressed", "within", "not measured" (bounded, no figure) or "" (shown only)."""
    if figure.bound is None:
        return ""
    if figure.new is None:
        return "not measured"
    return "regressed" if figure.regressed else "within"
