"""The arithmetic behind the load shapes: users at time t, the SLO grammar, and the step search.

Nothing here imports Locust (it monkey-patches the process with gevent on import), so tests and other
tools can use this module directly. `shapes.py` feeds it the run time and the runner's totals.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

SHAPES = ("steady", "ramp", "spike", "step", "soak")

# Run times used when -t is not given. Steady runs until stopped; step until its search ends.
DEFAULT_RUN_TIME_S = {"ramp": 300.0, "spike": 300.0, "soak": 3600.0}

# The spike holds a tenth of -u, jumps to -u for the middle fifth of the run, then falls back.
SPIKE_BASELINE_RATIO = 0.1
SPIKE_START_RATIO = 0.4
SPIKE_END_RATIO = 0.6

DEFAULT_STEP_TIME_S = 10.0

_DURATION = re.compile(r"(?:(?P<h>\d+(?:\.\d+)?)h)?(?:(?P<m>\d+(?:\.\d+)?)m)?(?:(?P<s>\d+(?:\.\d+)?)s)?")


@dataclass(frozen=True)
class Load:
    """The common options a shape reads: -u, -r and -t (seconds, None when not given)."""

    users: int
    spawn_rate: float
    run_time: float | None = None


@dataclass(frozen=True)
class Tick:
    """What a shape asks Locust for at one moment: this many users, started or stopped at this rate."""

    users: int
    spawn_rate: float


def requested_shape(argv: Sequence[str], environ: Mapping[str, str]) -> str:
    """Return the shape named by the last --shape on the command line, else LOCUST_SHAPE, else ""."""
    chosen = environ.get("LOCUST_SHAPE", "")
    args = list(argv)
    for index, arg in enumerate(args):
        if arg == "--shape" and index + 1 < len(args):
            chosen = args[index + 1]
        elif arg.startswith("--shape="):
            chosen = arg.partition("=")[2]
    return chosen.strip()


def parse_duration(text: str) -> float:
    """Return seconds for "90", "90s", "2m", "1h30m" or "0.5s"; raise ValueError otherwise."""
    text = text.strip()
    try:
        seconds = float(text)
    except ValueError:
        match = _DURATION.fullmatch(text)
        if not text or match is None:
            raise ValueError(f"invalid duration {text!r}: use seconds or a span like 30s, 2m, 1h30m") from None
        seconds = sum(float(match[unit] or 0) * scale for unit, scale in (("h", 3600), ("m", 60), ("s", 1)))
    if seconds <= 0 or not math.isfinite(seconds):
        raise ValueError(f"invalid duration {text!r}: must be more than zero")
    return seconds


def _duration(shape: str, load: Load) -> float:
    return load.run_time if load.run_time is not None else DEFAULT_RUN_TIME_S[shape]


def steady(t: float, load: Load) -> Tick | None:
    """Hold -u users from the start until -t."""
    if load.run_time is not None and t >= load.run_time:
        return None
    return Tick(load.users, load.spawn_rate)


def soak(t: float, load: Load) -> Tick | None:
    """Hold -u users for -t, an hour when -t is not given."""
    return steady(t, Load(load.users, load.spawn_rate, _duration("soak", load)))


def ramp(t: float, load: Load) -> Tick | None:
    """Raise users in a straight line from one to -u over the whole run."""
    duration = _duration("ramp", load)
    if t >= duration:
        return None
    users = min(load.users, max(1, math.ceil(load.users * t / duration)))
    # -r is a floor: the line itself needs users/duration per second to be followed.
    return Tick(users, max(load.spawn_rate, load.users / duration))


def spike(t: float, load: Load) -> Tick | None:
    """Hold a baseline, jump to -u for a short middle stretch, then drop back to the baseline."""
    duration = _duration("spike", load)
    if t >= duration:
        return None
    baseline = min(load.users, max(1, round(load.users * SPIKE_BASELINE_RATIO)))
    if t < duration * SPIKE_START_RATIO:
        return Tick(baseline, load.spawn_rate)
    # A spike is sudden: start (and later stop) the extra users within about a second.
    sudden = max(load.spawn_rate, float(load.users - baseline))
    if t < duration * SPIKE_END_RATIO:
        return Tick(load.users, sudden)
    return Tick(baseline, sudden)


PROFILES: dict[str, Callable[[float, Load], Tick | None]] = {
    "steady": steady,
    "ramp": ramp,
    "spike": spike,
    "soak": soak,
}


# --- SLO: "p95<200ms,errors<1%" -------------------------------------------------------------------------

_CHECK = re.compile(
    r"(?P<metric>p\d+(?:\.\d+)?|avg|max|errors|rps)\s*(?P<op><=|>=|<|>)\s*"
    r"(?P<number>\d+(?:\.\d+)?)\s*(?P<unit>ms|s|%|/s)?",
    re.IGNORECASE,
)
_OPS: dict[str, Callable[[float, float], bool]] = {
    "<": lambda actual, limit: actual < limit,
    "<=": lambda actual, limit: actual <= limit,
    ">": lambda actual, limit: actual > limit,
    ">=": lambda actual, limit: actual >= limit,
}
_LATENCY_UNITS = {None: 1.0, "ms": 1.0, "s": 1000.0}


@dataclass(frozen=True)
class Check:
    """One SLO term: metric (p95, avg, max in ms; errors as a ratio; rps), operator and threshold."""

    metric: str
    op: str
    threshold: float
    text: str

    def passes(self, actual: float | None) -> bool:
        """Return whether a measured value meets this check; nothing measured never does."""
        return actual is not None and _OPS[self.op](actual, self.threshold)


def parse_slo(spec: str) -> list[Check]:
    """Parse "p95<200ms,errors<1%" into checks; an empty spec has none; raise ValueError naming a bad term."""
    checks = []
    for term in (part.strip() for part in spec.split(",")):
        if not term:
            continue
        match = _CHECK.fullmatch(term)
        if match is None:
            raise ValueError(
                f"invalid SLO term {term!r}: expected <metric><op><number>[unit] with metric p<N>, avg, max,"
                " errors or rps, op one of < <= > >=, e.g. p95<200ms,errors<1%"
            )
        metric, op, unit = match["metric"].lower(), match["op"], (match["unit"] or "").lower() or None
        number = float(match["number"])
        if metric.startswith("p") and not 0 < float(metric[1:]) < 100:
            raise ValueError(f"invalid SLO term {term!r}: a percentile lies between p0 and p100")
        if metric.startswith("p") or metric in ("avg", "max"):
            if unit not in _LATENCY_UNITS:
                raise ValueError(f"invalid SLO term {term!r}: latency is in ms or s")
            threshold = number * _LATENCY_UNITS[unit]
        elif metric == "errors":
            if unit not in (None, "%"):
                raise ValueError(f"invalid SLO term {term!r}: errors are a percentage (1%) or a ratio (0.01)")
            threshold = number / 100 if unit == "%" else number
            if threshold > 1:
                raise ValueError(f"invalid SLO term {term!r}: an error ratio above 1; did you mean {number:g}%?")
        else:
            if unit not in (None, "/s"):
                raise ValueError(f"invalid SLO term {term!r}: rps is requests per second (rps>50 or rps>50/s)")
            threshold = number
        checks.append(Check(metric, op, threshold, term))
    return checks


@dataclass(frozen=True)
class Totals:
    """Cumulative request counters as Locust keeps them: counts, summed time, and a histogram of ms."""

    requests: int = 0
    failures: int = 0
    total_response_time_ms: float = 0.0
    response_times: Mapping[int, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Window:
    """The requests completed between two Totals, over `seconds` of wall time."""

    requests: int
    failures: int
    total_response_time_ms: float
    response_times: Mapping[int, int]
    seconds: float


def window_between(start: Totals, end: Totals, seconds: float) -> Window:
    """Return what happened between two cumulative snapshots."""
    histogram = {
        ms: count - start.response_times.get(ms, 0)
        for ms, count in end.response_times.items()
        if count > start.response_times.get(ms, 0)
    }
    return Window(
        requests=end.requests - start.requests,
        failures=end.failures - start.failures,
        total_response_time_ms=end.total_response_time_ms - start.total_response_time_ms,
        response_times=histogram,
        seconds=seconds,
    )


def percentile(response_times: Mapping[int, int], fraction: float) -> float | None:
    """Return the response time at a fraction (0.95) of a ms histogram, the way Locust computes it."""
    count = sum(response_times.values())
    if count == 0:
        return None
    below = int(count * fraction)
    seen = 0
    for ms in sorted(response_times, reverse=True):
        seen += response_times[ms]
        if count - seen <= below:
            return float(ms)
    return 0.0


def measure(metric: str, window: Window) -> float | None:
    """Return a metric's value over a window; None when there is nothing to measure it on."""
    if metric == "rps":
        return window.requests / window.seconds if window.seconds > 0 else None
    if window.requests <= 0:
        return None
    if metric == "errors":
        return window.failures / window.requests
    if metric == "avg":
        return window.total_response_time_ms / window.requests
    if metric == "max":
        return float(max(window.response_times)) if window.response_times else None
    return percentile(window.response_times, float(metric[1:]) / 100)


@dataclass(frozen=True)
class Verdict:
    """A check against what was measured."""

    check: Check
    actual: float | None
    passed: bool

    def describe(self) -> str:
        """Return e.g. "p95=312 (p95<200ms: fail)"."""
        actual = "n/a" if self.actual is None else f"{self.actual:.4g}"
        return f"{self.check.metric}={actual} ({self.check.text}: {'pass' if self.passed else 'fail'})"


def evaluate(checks: Sequence[Check], window: Window) -> list[Verdict]:
    """Judge every check on a window."""
    verdicts = []
    for check in checks:
        actual = measure(check.metric, window)
        verdicts.append(Verdict(check, actual, check.passes(actual)))
    return verdicts


# --- Step search ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """One finished step: its user count, the window it was judged on, and the verdicts."""

    users: int
    window: Window
    verdicts: list[Verdict]

    @property
    def passed(self) -> bool:
        """Return whether every check held on this step's window."""
        return all(verdict.passed for verdict in self.verdicts)


class StepSearch:
    """Raise users by a step every step_time seconds until a step breaks the SLO, -u is passed, or -t ends.

    Each step is judged on the requests completed after its new users had time to start (its increment
    divided by the spawn rate, at most half the step), so ramp-up noise stays out of the verdict.
    """

    def __init__(
        self,
        checks: Sequence[Check],
        step_users: int,
        step_time: float,
        max_users: int,
        spawn_rate: float,
        run_time: float | None = None,
    ) -> None:
        if step_users < 1 or max_users < 1 or step_time <= 0 or spawn_rate <= 0:
            raise ValueError("step users, max users, step time and spawn rate must be positive")
        self.checks = list(checks)
        self.step_users = step_users
        self.step_time = step_time
        self.max_users = max_users
        self.run_time = run_time
        self.settle = min(step_time / 2, step_users / spawn_rate)
        self.steps: list[Step] = []
        self.stop_reason: str | None = None
        self._users = min(step_users, max_users)
        self._step_started = 0.0
        self._window_start: tuple[float, Totals] | None = None

    @property
    def last_passing_users(self) -> int | None:
        """Return the highest user count whose step held the SLO, None if none did."""
        passing = [step.users for step in self.steps if step.passed]
        return max(passing) if passing else None

    @property
    def first_failing_users(self) -> int | None:
        """Return the user count of the step that broke the SLO, None if none did."""
        return next((step.users for step in self.steps if not step.passed), None)

    def tick(self, t: float, totals: Totals) -> int | None:
        """Return the user count for time t given the runner's cumulative totals; None when the search ends."""
        if self.stop_reason is not None:
            return None
        if self.run_time is not None and t >= self.run_time:
            self.stop_reason = "run time reached"
            return None
        elapsed = t - self._step_started
        # Start judging once the step has settled, and again if the stats were reset meanwhile.
        restarted = self._window_start is not None and totals.requests < self._window_start[1].requests
        if (self._window_start is None and elapsed >= self.settle) or restarted:
            self._window_start = (t, totals)
        if elapsed >= self.step_time and self._window_start is not None:
            started_at, start_totals = self._window_start
            window = window_between(start_totals, totals, t - started_at)
            step = Step(self._users, window, evaluate(self.checks, window))
            self.steps.append(step)
            if not step.passed:
                self.stop_reason = "SLO broken"
                return None
            if self._users >= self.max_users:
                self.stop_reason = "max users reached"
                return None
            self._users = min(self.max_users, self._users + self.step_users)
            self._step_started = t
            self._window_start = None
        return self._users

    def summary(self) -> dict[str, object]:
        """Return the search's outcome as plain data (for a JSON line on stdout)."""
        return {
            "last_passing_users": self.last_passing_users,
            "first_failing_users": self.first_failing_users,
            "stop_reason": self.stop_reason,
            "slo": ",".join(check.text for check in self.checks),
            "steps": [
                {
                    "users": step.users,
                    "requests": step.window.requests,
                    "seconds": round(step.window.seconds, 3),
                    "passed": step.passed,
                    "checks": {verdict.check.text: verdict.actual for verdict in step.verdicts},
                }
                for step in self.steps
            ],
        }
