"""Load shapes, chosen with --shape or LOCUST_SHAPE: steady, ramp, spike, step or soak.

    steady  -u users (started at -r per second) until -t
    ramp    a straight line from one user to -u over -t (default 5m)
    spike   a tenth of -u, then all -u for the middle fifth of -t (default 5m), then a tenth again
    step    --step-users more users every --step-time until a step breaks --slo / LOCUST_SLO (judged on
            that step's own requests), -u is passed or -t ends; prints the last passing user count
    soak    steady -u users for -t (default 1h)

Locust picks the shape class while importing locustfiles, before it parses the command line, so the
choice is read here from sys.argv and LOCUST_SHAPE and only the chosen class is left concrete. With no
shape chosen no class is, and Locust runs plain -u/-r/-t with its usual web UI.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from typing import Any, ClassVar

from _shapes_math import (
    DEFAULT_STEP_TIME_S,
    PROFILES,
    SHAPES,
    Load,
    StepSearch,
    Totals,
    parse_duration,
    parse_slo,
    requested_shape,
)
from locust import LoadTestShape, events
from locust.argument_parser import LocustArgumentParser
from locust.env import Environment
from locust.runners import WorkerRunner

CHOSEN_SHAPE = requested_shape(sys.argv[1:], os.environ)

logger = logging.getLogger(__name__)


def slo_option(text: str) -> str:
    """Validate --slo while the command line is parsed, so a typo is a usage error (exit code 2)."""
    try:
        parse_slo(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def duration_option(text: str) -> str:
    """Validate --step-time ("10s", "1m") while the command line is parsed (a usage error otherwise)."""
    try:
        parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


@events.init_command_line_parser.add_listener
def add_shape_options(parser: LocustArgumentParser) -> None:
    """Add --shape, --slo, --step-users and --step-time (each also read from a LOCUST_ variable)."""
    # Straight on the parser: only LocustArgumentParser.add_argument knows include_in_web_ui.
    shaped = bool(CHOSEN_SHAPE)
    parser.add_argument(
        "--shape",
        choices=SHAPES,
        default="",
        env_var="LOCUST_SHAPE",
        # The class is chosen at import time; changing it in the web UI could not take effect.
        include_in_web_ui=False,
        help="Load shape: steady, ramp, spike, step or soak. Default: none (plain -u/-r/-t).",
    )
    parser.add_argument(
        "--slo",
        type=slo_option,
        default="",
        env_var="LOCUST_SLO",
        include_in_web_ui=shaped,
        help='SLO the step shape stops at, e.g. "p95<200ms,errors<1%%" (terms: p<N>, avg, max in ms or s; '
        "errors in %% or as a ratio; rps).",
    )
    parser.add_argument(
        "--step-users",
        type=int,
        default=0,
        env_var="LOCUST_STEP_USERS",
        include_in_web_ui=shaped,
        help="Users added per step (step shape). Default: a tenth of -u, at least 1.",
    )
    parser.add_argument(
        "--step-time",
        type=duration_option,
        default=f"{DEFAULT_STEP_TIME_S:g}s",
        env_var="LOCUST_STEP_TIME",
        include_in_web_ui=shaped,
        help=f"How long each step lasts, e.g. 10s or 1m (step shape). Default: {DEFAULT_STEP_TIME_S:g}s.",
    )


@events.init.add_listener
def check_shape_choice(environment: Environment, **_kwargs: Any) -> None:
    """Refuse a shape named only where it is read too late to choose the class (e.g. a config file)."""
    options = environment.parsed_options
    named = getattr(options, "shape", "") or ""
    if named != CHOSEN_SHAPE:
        logger.error(
            "--shape %s must be given as --shape NAME on the command line or in LOCUST_SHAPE: Locust chooses "
            "the shape class before it reads config files (or expands abbreviated options)",
            named,
        )
        raise SystemExit(2)
    if named and not isinstance(environment.runner, WorkerRunner):
        logger.info("Load shape: %s", named)


class ProfileShape(LoadTestShape):
    """A shape that follows a profile from _shapes_math, reading -u, -r and -t as it goes."""

    abstract = True
    use_common_options = True
    profile: ClassVar[str]

    def load(self) -> Load:
        """Return -u, -r and -t as they stand now (the web UI may have changed them)."""
        options = self.runner.environment.parsed_options if self.runner else None
        users = getattr(options, "num_users", None) or 1
        spawn_rate = getattr(options, "spawn_rate", None) or 1.0
        run_time = getattr(options, "run_time", None) or None
        return Load(int(users), float(spawn_rate), float(run_time) if run_time else None)

    def tick(self) -> tuple[int, float] | None:
        """Return the profile's users and spawn rate for the time since the test started."""
        tick = PROFILES[self.profile](self.get_run_time(), self.load())
        return None if tick is None else (tick.users, tick.spawn_rate)


class SteadyShape(ProfileShape):
    """Hold -u users until -t."""

    abstract = CHOSEN_SHAPE != "steady"
    profile = "steady"


class RampShape(ProfileShape):
    """Raise users linearly from one to -u over -t."""

    abstract = CHOSEN_SHAPE != "ramp"
    profile = "ramp"


class SpikeShape(ProfileShape):
    """Hold a baseline, spike to -u in the middle of the run, fall back."""

    abstract = CHOSEN_SHAPE != "spike"
    profile = "spike"


class SoakShape(ProfileShape):
    """Hold -u users for a long -t (an hour by default)."""

    abstract = CHOSEN_SHAPE != "soak"
    profile = "soak"


class StepShape(LoadTestShape):
    """Add users step by step until the SLO breaks; report the last user count that held it."""

    abstract = CHOSEN_SHAPE != "step"
    use_common_options = True

    def __init__(self) -> None:
        super().__init__()
        self.search: StepSearch | None = None

    def reset_time(self) -> None:
        """Start a new search each time a test starts (the web UI can start several)."""
        super().reset_time()
        self.search = None

    def tick(self) -> tuple[int, float] | None:
        """Return the current step's users, or None once the search has its answer."""
        assert self.runner is not None
        options = self.runner.environment.parsed_options
        spawn_rate = float(getattr(options, "spawn_rate", None) or 1.0)
        if self.search is None:
            try:
                self.search = self._new_search(options, spawn_rate)
            except ValueError as exc:  # settings typed into the web UI skip the command line's checks
                logger.error("step shape cannot start: %s", exc)
                return None
        before = len(self.search.steps)
        users = self.search.tick(self.get_run_time(), self._totals())
        for step in self.search.steps[before:]:
            logger.info(
                "step at %d users: %d requests in %.1fs, %s",
                step.users,
                step.window.requests,
                step.window.seconds,
                ", ".join(verdict.describe() for verdict in step.verdicts) or "no SLO",
            )
        if users is None:
            self._report(self.search)
            return None
        return users, spawn_rate

    def _new_search(self, options: Any, spawn_rate: float) -> StepSearch:
        max_users = int(getattr(options, "num_users", None) or 1)
        step_users = int(getattr(options, "step_users", 0) or max(1, max_users // 10))
        checks = parse_slo(getattr(options, "slo", "") or "")
        if not checks:
            logger.warning("step shape without --slo/LOCUST_SLO: stepping up to -u with nothing to stop it")
        run_time = getattr(options, "run_time", None)
        return StepSearch(
            checks,
            step_users=step_users,
            step_time=parse_duration(str(getattr(options, "step_time", "") or DEFAULT_STEP_TIME_S)),
            max_users=max_users,
            spawn_rate=spawn_rate,
            run_time=float(run_time) if run_time else None,
        )

    def _totals(self) -> Totals:
        assert self.runner is not None
        total = self.runner.stats.total
        return Totals(
            requests=total.num_requests,
            failures=total.num_failures,
            total_response_time_ms=total.total_response_time,
            response_times=dict(total.response_times),
        )

    @staticmethod
    def _report(search: StepSearch) -> None:
        summary = search.summary()
        logger.info(
            "step search ended (%s): last passing users %s, first failing users %s",
            search.stop_reason,
            summary["last_passing_users"],
            summary["first_failing_users"],
        )
        # One line a prober can find in stdout: "step result: {...}".
        print("step result: " + json.dumps(summary), flush=True)
