"""Parse SLO specs like "p95<200ms,errors<1%,mem_slope<0.5MiB/min" and check a Report against them.

mem_slope is the target's memory trend (report.memory.trend, see stackprobe.trend) in MiB/min: the fitted
slope itself, its confidence interval shown beside it; KiB/min is read too. A run with no trend (too few
samples after the warm-up) leaves it unmeasured.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import cast

from stackprobe.report.model import SLO_UNITS, Report, Slo, SloCheck, SloOp

METRICS = tuple(SLO_UNITS)
LATENCY_METRICS = tuple(metric for metric, unit in SLO_UNITS.items() if unit == "ms")

_OPS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_TERM = re.compile(r"(?P<metric>[a-z0-9_]+)\s*(?P<op><=|>=|<|>|=+|!=)?\s*(?P<number>[^a-z%/\s]*)\s*(?P<unit>\S*)")
_NUMBER = re.compile(r"\d+(\.\d+)?|\.\d+")
_LATENCY_SCALE = {"ms": 1.0, "s": 1000.0}
# Units of a memory slope, as they read lower-cased, to MiB/min.
_SLOPE_SCALE = {"mib/min": 1.0, "kib/min": 1 / 1024}
# Metrics of the whole run, not of requests: the step shape cannot judge a step by them.
RUN_METRICS = ("mem_slope",)


@dataclass(frozen=True)
class SloRule:
    """One parsed SLO term: metric, operator and threshold in the metric's unit (see SLO_UNITS)."""

    metric: str
    op: SloOp
    threshold: float

    def __str__(self) -> str:
        return f"{self.metric}{self.op}{self.threshold:g}{SLO_UNITS[self.metric]}"


def parse_slo(spec: str) -> list[SloRule]:
    """Parse a comma-separated SLO spec; ValueError names the term that does not parse."""
    rules: list[SloRule] = []
    if not spec.strip():
        return rules
    for term in spec.split(","):
        rules.append(_parse_term(term.strip(), spec))
    return rules


def request_slo(spec: str) -> str:
    """Return the spec's terms on requests, as written: what Locust's step shape judges each step by.

    mem_slope is a figure of the whole run (its memory after the warm-up), so it is left out; ValueError
    names a term that does not parse.
    """
    terms = [term.strip() for term in spec.split(",")] if spec.strip() else []
    return ",".join(term for term in terms if _parse_term(term, spec).metric not in RUN_METRICS)


def _parse_term(term: str, spec: str) -> SloRule:
    def bad(why: str) -> ValueError:
        return ValueError(f"bad SLO term {term!r} in {spec!r}: {why}")

    if not term:
        raise bad("empty term (a stray comma?)")
    match = _TERM.fullmatch(term.lower())
    if match is None:
        raise bad("expected METRIC OP NUMBER[UNIT], e.g. p95<200ms")
    metric, op, number, unit = match["metric"], match["op"], match["number"], match["unit"]
    if metric not in METRICS:
        raise bad(f"unknown metric {metric!r}; known: {', '.join(METRICS)}")
    if op not in _OPS:
        raise bad(f"operator must be one of {' '.join(_OPS)}, got {op or 'none'!r}")
    if not _NUMBER.fullmatch(number):
        raise bad(f"threshold {(number + unit) or '(missing)'!r} is not a non-negative number")
    value = float(number)
    if metric in LATENCY_METRICS:
        if unit not in _LATENCY_SCALE:
            raise bad(f"latency needs a unit, ms or s, got {unit or 'none'!r}")
        value *= _LATENCY_SCALE[unit]
    elif metric == "errors":
        if unit != "%":
            raise bad(f"errors is a percentage and needs %, got {unit or 'none'!r}")
        if value > 100:
            raise bad("errors cannot exceed 100%")
    elif metric == "mem_slope":
        if unit not in _SLOPE_SCALE:
            raise bad(f"mem_slope needs a unit, MiB/min or KiB/min, got {unit or 'none'!r}")
        value *= _SLOPE_SCALE[unit]
    elif unit not in ("", "/s"):
        raise bad(f"rps takes a plain number, got unit {unit!r}")
    if op == "<" and value == 0 and metric != "mem_slope":
        # Latency, errors and rps are never below 0: such a term could never be met.
        raise bad(f"{metric} is never below 0; use <= 0 for none at all")
    return SloRule(metric=metric, op=cast(SloOp, op), threshold=value)


def actual_value(metric: str, report: Report) -> float | Fraction | None:
    """Return the report's figure for an SLO metric in its SLO_UNITS, None when unmeasured.

    errors is failures / requests in percent; with no request it is unmeasured (None), not 0 %. mem_slope is
    the memory trend's fitted slope in MiB/min; with no trend it is unmeasured.
    """
    if metric in LATENCY_METRICS:
        return getattr(report.latency_ms, metric)
    if metric == "errors":
        return _error_percent(report) if report.requests.total else None
    if metric == "rps":
        return report.requests.rps if report.requests.total else None
    if metric == "mem_slope":
        trend = report.memory.trend
        return None if trend is None else trend.slope_mib_per_min
    raise ValueError(f"unknown SLO metric {metric!r}")


def _error_percent(report: Report) -> Fraction:
    """Return failures per hundred requests exactly: 7 of 100 is 7 %, never 7.000000000000001 %."""
    return Fraction(report.requests.failures * 100, report.requests.total)


def check(rule: SloRule, actual: float | Fraction | None) -> SloCheck:
    """Judge one rule; an unmeasured figure does not pass, since nothing shows it was met.

    The comparison is exact: the threshold is taken as the decimal the user wrote (Fraction of its
    shortest repr), so `errors<=7%` holds at 7 failures in 100 requests.
    """
    passed = actual is not None and _OPS[rule.op](Fraction(actual), Fraction(repr(rule.threshold)))
    shown = None if actual is None else float(actual)
    return SloCheck(metric=rule.metric, op=rule.op, threshold=rule.threshold, actual=shown, passed=passed)


def evaluate_slo(spec: str, report: Report) -> Slo:
    """Parse `spec` and check the report's figures against it; an empty spec passes."""
    checks = [check(rule, actual_value(rule.metric, report)) for rule in parse_slo(spec)]
    return Slo(spec=spec, checks=checks, passed=all(c.passed for c in checks))
