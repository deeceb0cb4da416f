"""Hold a run against a base run: each figure side by side, and a regression beyond its bound fails the run.

`--max-regression "p95:10%,peak_memory:5%,rps:-10%"` gives, per figure, how far it may move in its worse
direction before it is a regression: a relative bound ("10%": new <= base x 1.10 for a figure where higher
is worse; "-10%": new >= base x 0.90 for rps, where lower is worse) or an absolute one in the figure's unit
("p95:+20ms", "peak_memory:+8MiB", "errors:+0.5pp", "rps:-50/s"). The bounds are the run-to-run noise the
user accepts; a figure not named is shown beside the base run's but not held to anything.

Every UsageError here is a CLI usage error (exit 2): bad bounds, a base that cannot be read, or a base run
made under another target or load than the new one.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stackprobe.report.fmt import format_bytes
from stackprobe.report.jsonfile import load_report
from stackprobe.report.model import Baseline, BaselineFigure, Report
from stackprobe.report.verdict import judge
from stackprobe.spec import RunSpec, UsageError

DEFAULT_MAX_REGRESSION = "p95:10%,peak_memory:5%,rps:-10%"
_LOCUST_TOTALS = "Locust's end-of-run totals"
_SIZE_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


@dataclass(frozen=True)
class Metric:
    """A figure that can be compared between two runs.

    `unit` is the figure's unit; `worse` is +1 when a higher figure is worse (latency, memory) and -1 when a
    lower one is (rps); `bounded` says whether --max-regression may name it; `read` and `source` take the
    figure and the name of where it came from out of a report. A figure that changes sign (the memory
    slope) has no relative change (`relative` False): its difference is shown instead.
    """

    name: str
    unit: str
    worse: int
    bounded: bool
    read: Callable[[Report], float | None]
    source: Callable[[Report], str]
    relative: bool = True


def _latency(name: str) -> Metric:
    return Metric(
        name,
        "ms",
        +1,
        True,
        lambda r: getattr(r.latency_ms, name),
        lambda r: f"{_LOCUST_TOTALS}, latency_ms.{name}",
    )


def _trend_slope(report: Report) -> float | None:
    return report.memory.trend.slope_mib_per_min if report.memory.trend is not None else None


def _trend_source(report: Report) -> str:
    return report.memory.trend.source if report.memory.trend is not None else "memory.trend (not fitted)"


def _lost(report: Report) -> float | None:
    return report.writes.lost if report.writes.applicable else None


# In the order the side-by-side table shows them.
METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric(
            "requests", "count", -1, False, lambda r: r.requests.total, lambda r: f"{_LOCUST_TOTALS}, requests.total"
        ),
        Metric("rps", "req/s", -1, True, lambda r: r.requests.rps, lambda r: f"{_LOCUST_TOTALS}, requests.rps"),
        Metric(
            "errors",
            "%",
            +1,
            True,
            lambda r: 100 * r.requests.failure_ratio,
            lambda r: f"{_LOCUST_TOTALS}, requests.failure_ratio",
        ),
        *(_latency(name) for name in ("p50", "p95", "p99", "avg", "max")),
        Metric("peak_memory", "bytes", +1, True, lambda r: r.memory.peak_bytes, lambda r: r.memory.peak_source),
        Metric(
            "idle_memory",
            "bytes",
            +1,
            True,
            lambda r: r.memory.idle_bytes,
            lambda r: "docker stats samples before the load (memory.idle_bytes)",
        ),
        Metric("mem_slope", "MiB/min", +1, False, _trend_slope, _trend_source, relative=False),
        Metric(
            "cpu_avg",
            "%",
            +1,
            True,
            lambda r: r.cpu.avg_percent,
            lambda r: "docker stats samples, percent of one core (cpu.avg_percent)",
        ),
        Metric("oom_kills", "count", +1, False, lambda r: r.oom_kills, lambda r: r.oom_kills_source or "oom_kills"),
        Metric("restarts", "count", +1, False, lambda r: r.restarts, lambda r: "the engine's restart count (restarts)"),
        Metric("lost_writes", "count", +1, False, _lost, lambda r: "the write audit (writes.lost)"),
    )
}
BOUNDED = tuple(name for name, m in METRICS.items() if m.bounded)


@dataclass(frozen=True)
class Bound:
    """How far one figure may move in its worse direction: `relative` (0.10 = 10 %) or `absolute` (its unit)."""

    metric: str
    text: str
    relative: float | None = None
    absolute: float | None = None

    def allowed(self, base: float) -> float:
        """Return the worst figure that is no regression from `base`."""
        worse = METRICS[self.metric].worse
        if self.relative is not None:
            return base * (1 + worse * self.relative)
        return base + worse * (self.absolute or 0.0)


def parse_bounds(text: str) -> tuple[Bound, ...]:
    """Parse --max-regression ("p95:10%,peak_memory:5%,rps:-10%") into bounds; raise UsageError naming the term.

    A term is METRIC:[+|-]N% (relative to the base run) or METRIC:[+|-]N<unit> (absolute: ms or s for
    latency, k/m/g or KiB/MiB/GiB for memory, pp for errors and cpu_avg, /s for rps). The sign, when given,
    must be the figure's worse direction: + for latency, memory, errors and CPU, - for rps.
    """
    bounds: list[Bound] = []
    if not text.strip():
        raise UsageError(f"--max-regression is empty (expected e.g. {DEFAULT_MAX_REGRESSION})")
    for term in text.split(","):
        name, sep, amount = term.strip().partition(":")
        name, amount = name.strip(), amount.strip().replace(" ", "")
        where = f"--max-regression {term.strip()!r}"
        if not sep or not name or not amount:
            raise UsageError(f"{where}: expected METRIC:BOUND, e.g. p95:10% or rps:-10%")
        if name not in METRICS or not METRICS[name].bounded:
            raise UsageError(f"{where}: unknown figure {name!r}; bounded figures are {', '.join(BOUNDED)}")
        if any(b.metric == name for b in bounds):
            raise UsageError(f"{where}: {name} is given twice")
        metric = METRICS[name]
        sign = amount[0] if amount[0] in "+-" else ""
        worse_sign = "+" if metric.worse > 0 else "-"
        if sign and sign != worse_sign:
            direction = "rises" if metric.worse > 0 else "falls"
            raise UsageError(
                f"{where}: {name} regresses when it {direction}, so its bound is {worse_sign}N "
                f"(e.g. {name}:{worse_sign}{amount.lstrip('+-')})"
            )
        magnitude = amount.lstrip("+-")
        bound = _parse_magnitude(name, metric.unit, magnitude, where)
        shown = f"{worse_sign}{magnitude}"
        bounds.append(Bound(metric=name, text=shown, **bound))
    return tuple(bounds)


def _parse_magnitude(name: str, unit: str, magnitude: str, where: str) -> dict[str, float]:
    """Return {"relative": r} or {"absolute": a} for one bound's magnitude, in the figure's own unit."""
    number = r"(\d+(?:\.\d+)?)"
    if match := re.fullmatch(number + "%", magnitude):
        return {"relative": float(match.group(1)) / 100}
    absolute: float | None = None
    if unit == "ms" and (match := re.fullmatch(number + "(ms|s)", magnitude)):
        absolute = float(match.group(1)) * (1000 if match.group(2) == "s" else 1)
    elif unit == "bytes" and (match := re.fullmatch(number + r"([kmg]?)(?:i?b)?", magnitude.lower())):
        absolute = float(match.group(1)) * _SIZE_UNITS[match.group(2)]
    elif match := re.fullmatch(number + {"%": "pp", "req/s": "/s"}.get(unit, "(?!)"), magnitude):
        # Percentage points for errors and CPU, requests per second for rps.
        absolute = float(match.group(1))
    if absolute is None:
        examples = {"ms": "10% or 20ms", "bytes": "5% or 8MiB", "%": "10% or 0.5pp", "req/s": "10% or 50/s"}
        raise UsageError(f"{where}: not a bound for {name} (expected {examples[unit]})")
    return {"absolute": absolute}


def read_report(path: Path) -> Report:
    """Read a run's report.json (a file, or a folder holding one); UsageError when it cannot be read."""
    file = path / "report.json" if path.is_dir() else path
    try:
        return load_report(file)
    except FileNotFoundError:
        raise UsageError(f"{path}: no report.json there") from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    except (ValueError, TypeError, AttributeError, KeyError, OverflowError) as exc:
        # json.JSONDecodeError is a ValueError too; the others come from JSON of the wrong shape (a list, null,
        # a string where an object belongs, a number no float holds).
        raise UsageError(f"{file}: not a stackprobe report.json ({type(exc).__name__}: {exc})") from None


def _describe(key: str, value: Any) -> str:
    if value is None:
        return "none"
    return format_bytes(value) if key == "memory" else f"{value:g}" if isinstance(value, float) else str(value)


def mismatches(base: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Return how two runs' setups differ, e.g. ["users (20 in the base run, 50 here)"]: [] when alike.

    Each side is a dict as setup_of returns; a key missing on the new side is not compared (not known yet).
    """
    return [
        f"{_SETUP_WORDS[key]} ({_describe(key, base.get(key))} in the base run, {_describe(key, new[key])} here)"
        for key in _SETUP_WORDS
        if key in new and base.get(key) != new[key]
    ]


_SETUP_WORDS = {
    "service": "target service",
    "users": "users",
    "rate": "arrival rate (--rate)",
    "shape": "load shape",
    "duration_s": "duration in seconds",
    "memory": "memory limit asked",
    "cpus": "CPU limit asked",
}


def setup_of(report: Report) -> dict[str, Any]:
    """Return what must match between two runs for their figures to compare, from a report."""
    return {
        "service": report.target.service,
        "users": report.load.users,
        "rate": report.load.arrival_rate,
        "shape": report.load.shape,
        "duration_s": report.load.duration_s,
        "memory": report.limits.memory_requested_bytes,
        "cpus": report.limits.cpus_requested,
    }


def setup_of_spec(spec: RunSpec) -> dict[str, Any]:
    """Return what must match, from a run not yet made; its shape and CPUs are compared only when given.

    A memory limit not asked (None: the compose file's own) matches only a base run that asked none either.
    """
    setup: dict[str, Any] = {
        "service": spec.service,
        "users": spec.users,
        "rate": spec.rate,
        "duration_s": spec.duration_s,
        "memory": spec.memory_bytes,
    }
    # A report's cpus_requested holds the compose file's own CPU limit when --cpus was not given.
    if spec.cpus is not None:
        setup["cpus"] = spec.cpus
    if spec.shape is not None:
        setup["shape"] = spec.shape
    return setup


def check_base(base: Report, path: Path, bounds: tuple[Bound, ...], new_setup: dict[str, Any]) -> None:
    """Raise UsageError when the base run was made differently or lacks a bounded figure."""
    differ = mismatches(setup_of(base), new_setup)
    if differ:
        raise UsageError(f"{path}: the base run was made differently: {'; '.join(differ)}; compare like with like")
    missing = [b.metric for b in bounds if METRICS[b.metric].read(base) is None]
    if missing:
        raise UsageError(
            f"{path}: the base run has no {', '.join(missing)} figure to compare with "
            "(not measured in that run); drop it from --max-regression"
        )


def compare(base: Report, new: Report, bounds: tuple[Bound, ...], *, path: str = "", spec: str = "") -> Baseline:
    """Return the baseline section: every figure of both runs side by side, the bounded ones judged."""
    by_metric = {b.metric: b for b in bounds}
    figures = []
    for name, metric in METRICS.items():
        base_value, new_value = _number(metric.read(base)), _number(metric.read(new))
        bound = by_metric.get(name)
        figure = BaselineFigure(
            metric=name,
            unit=metric.unit,
            base=base_value,
            new=new_value,
            change=(new_value / base_value - 1) if metric.relative and base_value and new_value is not None else None,
            bound=bound.text if bound else None,
            source=metric.source(new),
            base_source=metric.source(base),
        )
        if bound is not None and base_value is not None:
            figure.allowed = bound.allowed(base_value)
            if new_value is not None:
                figure.regressed = (new_value - figure.allowed) * metric.worse > 0
        figures.append(figure)
    return Baseline(
        path=path,
        max_regression=spec,
        base_started_at=base.started_at,
        base_project=base.target.project,
        base_verdict=base.verdict,
        figures=figures,
        regressed=any(f.regressed for f in figures),
    )


def _number(value: float | None) -> float | None:
    """Return a figure as a float; None when it is missing, not finite, or too large for a float."""
    if value is None:
        return None
    try:
        number = float(value)
    except (OverflowError, TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


@dataclass(frozen=True)
class BaselineGate:
    """A base run and the bounds a new run is held to (run --baseline): `apply` amends the new run's report."""

    base: Report
    path: Path
    bounds: tuple[Bound, ...]
    spec: str

    def apply(self, report: Report) -> None:
        """Add the baseline section to `report` and judge it again: a regression is a failure seen."""
        report.baseline = compare(self.base, report, self.bounds, path=str(self.path), spec=self.spec)
        report.verdict, report.reasons = judge(report)


def gate_from_flags(baseline: Path | None, max_regression: str | None, spec: RunSpec) -> BaselineGate | None:
    """Return the gate --baseline and --max-regression ask for (None: no --baseline); UsageError when unusable."""
    if baseline is None:
        if max_regression is not None:
            raise UsageError("--max-regression needs --baseline BASE.json: the run to compare with")
        return None
    text = max_regression if max_regression is not None else DEFAULT_MAX_REGRESSION
    bounds = parse_bounds(text)
    base = read_report(baseline)
    check_base(base, baseline, bounds, setup_of_spec(spec))
    return BaselineGate(base=base, path=baseline, bounds=bounds, spec=text)
