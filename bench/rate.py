"""The open model on the bundled stack: the arrival rate asked for against the rate Locust delivered.

    .venv/bin/python bench/rate.py [--rate 100] [--duration 60s] [--users N] [--via auto|stackprobe|compose]
                         [--out reports/bench-rate]

Goal (issue 8): for a rate the stack can serve, the achieved rate is within 2 % of the target over 60 s.
Two ways to run it, and the output says which one ran:

- stackprobe: `stackprobe run --rate R` on the bundled stack (limit applied, containers watched, torn
  down); the figures come from its report.json (`load.arrival_rate`, `load.achieved_rate`).
- compose: the stack brought up here with `docker compose -p <own project> up -d --wait` (its app on a
  free 127.0.0.1 port, its own volume), Locust run on it with stackprobe.load (LoadPlan.rate: the
  bundled loadtests/ paced by stackprobe's listener), then `docker compose -p <project> down --volumes`.

`auto` (the default) uses stackprobe when its `run` takes --rate, else compose.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from stackprobe.load import LoadPlan, default_pool_size, run_load
from stackprobe.locuststats import read_arrivals, read_totals, read_windows
from stackprobe.spec import parse_duration
from stackprobe.stack import free_ports, unique_project_name

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yml"
LOADTESTS = ROOT / "loadtests"
GOAL_SHARE = 0.02
READY_TIMEOUT_S = 600


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Return the command line's options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=100.0, help="arrivals per second (default: 100)")
    parser.add_argument("--duration", default="60s", help="length of the load, e.g. 60s, 2m (default: 60s)")
    parser.add_argument("--users", type=int, default=None, help="the pool of users (default: stackprobe's rule)")
    parser.add_argument("--via", choices=["auto", "stackprobe", "compose"], default="auto", help="how to run it")
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "bench-rate", help="folder for the files")
    args = parser.parse_args(argv)
    if not args.rate > 0:
        parser.error("--rate must be above 0")
    args.duration_s = parse_duration(args.duration)
    args.pool = args.users or default_pool_size(args.rate)
    return args


def stackprobe_takes_rate() -> bool:
    """Return whether `stackprobe run` has a --rate option (wired by the CLI)."""
    done = subprocess.run(
        [sys.executable, "-m", "stackprobe", "run", "--help"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    return done.returncode == 0 and "--rate" in done.stdout


def via_stackprobe(args: argparse.Namespace) -> dict[str, Any]:
    """Run `stackprobe run --rate` on the bundled stack; return its figures."""
    out = args.out / "stackprobe"
    out.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable, "-m", "stackprobe", "run", "--rate", f"{args.rate:g}", "--duration", args.duration,
        "--users", str(args.pool), "--spawn-rate", str(args.pool), "--out", str(out),
    ]  # fmt: skip
    print(f"how: {' '.join(command[2:])} (figures from {out / 'report.json'})", flush=True)
    log = out / "stackprobe.log"
    with log.open("w") as output:
        done = subprocess.run(command, cwd=ROOT, stdout=output, stderr=subprocess.STDOUT, check=False)
    report_path = out / "report.json"
    if not report_path.is_file():
        raise SystemExit(f"stackprobe exited with code {done.returncode} and wrote no report (log: {log})")
    report = json.loads(report_path.read_text())
    load = report["load"]
    return {
        "arrival_rate": load.get("arrival_rate"),
        "achieved_rate": load.get("achieved_rate"),
        "p95_ms": report["latency_ms"].get("p95"),
        "requests": report["requests"]["total"],
        "failures": report["requests"]["failures"],
        "generator_cpu_percent": report["cost"].get("load_generator_cpu_percent"),
        "verdict": f"{report['verdict']} ({'; '.join(report.get('reasons') or []) or 'no reasons'})",
    }


def compose(project: str, env: dict[str, str], *args: str, timeout_s: float = READY_TIMEOUT_S) -> None:
    """Run `docker compose -p project -f docker-compose.yml ARGS`; raise SystemExit with its words on failure."""
    command = ["docker", "compose", "-p", project, "-f", str(COMPOSE_FILE), *args]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout_s, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr.strip()[-2000:]}")


def via_compose(args: argparse.Namespace) -> dict[str, Any]:
    """Bring the bundled stack up under a project of its own, load it at the rate, tear it down."""
    project = unique_project_name("sprate")
    port = free_ports(1)[0]
    env = {**os.environ, "APP_PORT": str(port)}
    print(
        f"how: Locust driven by stackprobe.load (LoadPlan.rate={args.rate:g}, pool {args.pool} users, loadtests/) "
        f"against `docker compose -p {project} up -d --wait` on http://127.0.0.1:{port}",
        flush=True,
    )
    try:
        compose(project, env, "up", "--detach", "--wait")
        plan = LoadPlan(
            locustfile=LOADTESTS,
            host=f"http://127.0.0.1:{port}",
            users=args.pool,
            spawn_rate=args.pool,
            duration_s=args.duration_s,
            # loadtests/ takes a shape name (not ""); steady: the pool, started at once, until --duration.
            shape="steady",
            slo="",
            out=args.out / "compose",
            rate=args.rate,
        )
        result = run_load(plan)
    finally:
        compose(project, env, "down", "--volumes", "--remove-orphans", "--timeout", "10")
        print(f"torn down: docker compose -p {project} down --volumes", flush=True)
    arrivals = read_arrivals(plan.errors)
    totals = read_totals(plan.csv_prefix)
    windows = read_windows(plan.windows, start=0.0)
    return {
        "arrival_rate": result.arrival_rate,
        "achieved_rate": result.achieved_rate,
        "arrivals": arrivals,
        "p95_ms": totals.latency.p95,
        "worst_window_p95_ms": max((p for p in windows.p95_ms if p is not None), default=None),
        "requests": totals.requests.total,
        "failures": totals.requests.failures,
        "generator_cpu_percent": result.cpu_percent,
        "cpu_warning": result.cpu_warning,
    }


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} ms"


def print_figures(figures: dict[str, Any], took_s: float) -> None:
    """Print target against achieved, and what surrounds it."""
    target, achieved = figures["arrival_rate"], figures["achieved_rate"]
    print(f"target      {target:g} arrivals/s" if target else "target      - (the run reported no arrival rate)")
    if target and achieved is not None:
        share = achieved / target
        met = abs(share - 1) <= GOAL_SHARE
        goal = f"goal: within {GOAL_SHARE:.0%}: {'met' if met else 'NOT met'}"
        print(f"achieved    {achieved:.2f} arrivals/s ({share:.1%} of the target; {goal})")
    else:
        print("achieved    - (no figure: the listener left no summary)")
    arrivals = figures.get("arrivals")
    if arrivals is not None:
        print(
            f"arrivals    {arrivals.started} started of {arrivals.due} due over {arrivals.load_s:.1f} s, "
            f"{arrivals.waiting_at_end} waiting at the end"
        )
        print(
            f"lateness    p50 {_ms(arrivals.lateness_p50_ms)}, p95 {_ms(arrivals.lateness_p95_ms)}, "
            f"max {_ms(arrivals.lateness_max_ms)} (start after due)"
        )
    if "worst_window_p95_ms" in figures:
        print(
            f"latency     p95 {_ms(figures['p95_ms'])} over the run (Locust's, from sending); worst second's "
            f"p95 {_ms(figures['worst_window_p95_ms'])} (from due)"
        )
    else:
        print(f"latency     p95 {_ms(figures['p95_ms'])} over the run")
    print(f"requests    {figures['requests']} ({figures['failures']} failed)")
    cpu = figures.get("generator_cpu_percent")
    warning = " (Locust warned its CPU was above 90 %)" if figures.get("cpu_warning") else ""
    print(f"Locust CPU  {'-' if cpu is None else f'{cpu:.0f} % of a core'}{warning}")
    if "verdict" in figures:
        print(f"verdict     {figures['verdict']}")
    print(f"took        {took_s:.0f} s")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    via = args.via
    if via == "auto":
        via = "stackprobe" if stackprobe_takes_rate() else "compose"
        if via == "compose":
            print("`stackprobe run` takes no --rate yet: running the stack with docker compose here", flush=True)
    print(f"bench/rate.py: {args.rate:g} arrivals/s for {args.duration_s:g} s on the bundled stack", flush=True)
    started = time.monotonic()
    figures = via_stackprobe(args) if via == "stackprobe" else via_compose(args)
    print_figures(figures, time.monotonic() - started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
