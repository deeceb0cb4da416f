"""Benchmark the users service beside two baselines, each under the same strict 128 MiB limit.

    python bench/run.py [--duration 30s] [--users 20] [--only ours|tutorial|minimal] [--out reports/bench]
                        [--audit bundled|stand-in|none]

Each stack is run by `stackprobe run` (its own Compose project, the limit applied and checked, Locust
headless, the containers watched, everything torn down), one after the other with the same load from
bench/locustfile.py. The figures come from the report.json each run writes; this script prints them
side by side, with the ratios and the goals of the users service:

- ours: the bundled stack (docker-compose.yml at the repository's root);
- tutorial: the seed tutorial's app as the tutorial runs it (bench/baselines/tutorial);
- minimal: a hand-written Flask + psycopg 3 pool app with almost no validation (bench/baselines/minimal).

Then, unless --audit none, the write audit's own bench (bench/audit.py): 300,000 acknowledged writes read
back from the bundled stack, seeded to that many users (or, with --audit stand-in, from a stand-in service
that answers at once), with its seconds, writes/s, CPU seconds and heap against its goals.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
BASELINES = ROOT / "bench" / "baselines"
LOCUSTFILE = ROOT / "bench" / "locustfile.py"
AUDIT_BENCH = ROOT / "bench" / "audit.py"
MEMORY = "128m"
# Every request counts in the figures; the verdict of a run is not what the bench is about.
SLO = "errors<100%"
# What the baselines' compose files read from the environment (they have no .env of their own).
IMAGE_VARIABLES = ("POSTGRES_IMAGE", "PYTHON_IMAGE", "PIP_NO_INDEX")
# Locust at or above this share of one core is the bottleneck: its figures then understate the service.
GENERATOR_SATURATED_PERCENT = 90.0
# Host CPU busier than this (share of all cores) just before a run means other work was competing with it.
BUSY_HOST_PERCENT = 20.0
GOAL_VS_TUTORIAL = 10.0
GOAL_P99_MS = 100.0
GOAL_PEAK_BYTES = 96 * 2**20
# stackprobe's own cost while it watches, audits and reports one run, in percent of one core.
GOAL_PROBER_CPU_PERCENT = 3.0
MIB = 2**20


@dataclass(frozen=True)
class BenchStack:
    """One stack the bench runs: a compose file whose `app` service is loaded."""

    name: str
    title: str
    compose_file: Path
    # The folder whose requirements.txt is turned into wheels/ for builds with no package index.
    wheels_for: Path | None = None


STACKS = {
    "ours": BenchStack("ours", "users service", ROOT / "docker-compose.yml"),
    "tutorial": BenchStack("tutorial", "tutorial app", BASELINES / "tutorial" / "compose.yaml", BASELINES / "tutorial"),
    "minimal": BenchStack("minimal", "minimal app", BASELINES / "minimal" / "compose.yaml", BASELINES / "minimal"),
}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Return the command line's options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", default="30s", help="length of each run's load, e.g. 30s, 2m (default: 30s)")
    parser.add_argument("--users", type=int, default=20, help="Locust users, all started at once (default: 20)")
    parser.add_argument(
        "--only", action="append", choices=list(STACKS), help="run only this stack (repeatable; default: all three)"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "bench", help="folder for the reports")
    parser.add_argument(
        "--audit",
        choices=("bundled", "stand-in", "none"),
        default="bundled",
        help="then the write audit of 300,000 writes against the bundled stack (default), a stand-in, or not",
    )
    args = parser.parse_args(argv)
    if args.users < 1:
        parser.error("--users must be at least 1")
    return args


def read_env_file(path: Path) -> dict[str, str]:
    """Return the KEY=VALUE lines of a .env file (empty when there is none)."""
    values: dict[str, str] = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            key, sep, value = line.strip().partition("=")
            if sep and not key.startswith("#"):
                values[key.strip()] = value.strip().strip("'\"")
    return values


def image_environment() -> dict[str, str]:
    """Return the image variables, from the environment or else the root .env (as Compose reads them)."""
    dotenv = read_env_file(ROOT / ".env")
    return {key: os.environ.get(key, dotenv.get(key, "")) for key in IMAGE_VARIABLES}


def fetch_wheels(folder: Path) -> None:
    """Download the wheels a baseline's image installs where no package index answers, once per requirements."""
    requirements, wheels = folder / "requirements.txt", folder / "wheels"
    stamp = wheels / ".requirements.sha256"
    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()
    if stamp.is_file() and stamp.read_text().strip() == digest:
        return
    machine = platform.machine()
    print(f"Downloading wheels for {folder.relative_to(ROOT)} (cp311, {machine}) …", flush=True)
    for old in wheels.glob("*.whl"):
        old.unlink()
    # As provision/provision.sh fetches the users service's: wheels for the offline image's Python 3.11.
    command = [
        sys.executable, "-m", "pip", "download", "--quiet", "--dest", str(wheels), "--only-binary=:all:",
        "--python-version", "3.11", "--implementation", "cp", "--abi", "cp311", "--abi", "abi3", "--abi", "none",
        "--platform", f"manylinux2014_{machine}", "--platform", f"manylinux_2_28_{machine}", "--platform", "any",
        "-r", str(requirements),
    ]  # fmt: skip
    # The host's pip must reach the index even where the images' builds may not.
    host_env = {key: value for key, value in os.environ.items() if key != "PIP_NO_INDEX"}
    done = subprocess.run(command, env=host_env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"pip download failed for {requirements}:\n{done.stderr.strip()}")
    stamp.write_text(digest + "\n")


def host_busy_percent(seconds: float = 2.0) -> float | None:
    """Return the share of the host's CPU time spent busy over a short wait (None off Linux)."""

    def sample() -> tuple[int, int]:
        # /proc/stat's first line: user nice system idle iowait irq softirq steal ... in ticks.
        ticks = [int(field) for field in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
        return sum(ticks), ticks[3] + ticks[4]

    try:
        total_before, idle_before = sample()
        time.sleep(seconds)
        total_after, idle_after = sample()
    except (OSError, ValueError, IndexError):
        return None
    total = total_after - total_before
    return 100.0 * (1 - (idle_after - idle_before) / total) if total else None


@dataclass(frozen=True)
class Result:
    """One stack's run: its report (None when it could not run) and how busy the host was before it."""

    stack: BenchStack
    report: dict[str, Any] | None
    host_busy_percent: float | None


def run_stack(stack: BenchStack, args: argparse.Namespace, env: Mapping[str, str]) -> Result:
    """Run one stack with `stackprobe run` and return its result."""
    out = (args.out / stack.name).resolve()
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").unlink(missing_ok=True)
    command = [
        sys.executable, "-m", "stackprobe", "run",
        "--compose-file", str(stack.compose_file), "--service", "app", "--memory", MEMORY,
        "--users", str(args.users), "--spawn-rate", str(args.users), "--duration", args.duration,
        "--locustfile", str(LOCUSTFILE), "--slo", SLO, "--out", str(out),
    ]  # fmt: skip
    log = out / "stackprobe.log"
    host_busy = host_busy_percent()
    print(f"{stack.name}: stackprobe run on {stack.compose_file.relative_to(ROOT)} (log: {log}) …", flush=True)
    started = time.monotonic()
    with log.open("w") as output:
        done = subprocess.run(command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT, check=False)
    took = time.monotonic() - started
    # 0, 1 and 3 are a pass, a fail and an inconclusive verdict: all measured. Anything else measured nothing.
    if done.returncode not in (0, 1, 3) or not (out / "report.json").is_file():
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
        print(f"{stack.name}: stackprobe exited with code {done.returncode} after {took:.0f} s:\n{tail}", flush=True)
        return Result(stack, None, host_busy)
    print(f"{stack.name}: done in {took:.0f} s", flush=True)
    return Result(stack, json.loads((out / "report.json").read_text()), host_busy)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f} ms"


def _mib(value: int | None) -> str:
    return "-" if value is None else f"{value / MIB:.1f} MiB"


ROW_NAMES = (
    "requests/s",
    "p50",
    "p95",
    "p99",
    "requests",
    "failures",
    "peak memory",
    "limit (strict)",
    "OOM kills",
    "restarts",
    "Locust CPU",
    "prober CPU",
    "writes audited",
    "host CPU before",
)


def table_column(result: Result) -> list[str]:
    """Return one stack's column of the comparison table, in ROW_NAMES order."""
    report = result.report
    if report is None:
        return ["did not run", *([""] * (len(ROW_NAMES) - 1))]
    requests, latency, limits = report["requests"], report["latency_ms"], report["limits"]
    generator = report["cost"]["load_generator_cpu_percent"]
    return [
        f"{requests['rps']:,.1f}",
        _ms(latency["p50"]),
        _ms(latency["p95"]),
        _ms(latency["p99"]),
        f"{requests['total']:,}",
        f"{requests['failures']:,} ({100 * requests['failure_ratio']:.2f} %)",
        _mib(report["memory"]["peak_bytes"]),
        _mib(limits["memory_applied_bytes"]) + ("" if limits["applied_matches"] else " NOT as asked"),
        str(report["oom_kills"]),
        str(report["restarts"]),
        "-" if generator is None else f"{generator:.0f} % of a core",
        f"{report['cost']['prober_cpu_percent']:.1f} % of a core",
        _audited(report["writes"]),
        "-" if result.host_busy_percent is None else f"{result.host_busy_percent:.0f} % busy",
    ]


def _audited(writes: Mapping[str, Any]) -> str:
    """Return "12,483 (0 lost, 0 unverified)" from a report's writes, "-" when none were logged."""
    if not writes["applicable"]:
        return "-"
    return f"{writes['acknowledged']:,} ({writes['lost']} lost, {writes['unverified']} unverified)"


def goal_lines(reports: Mapping[str, dict[str, Any]]) -> list[str]:
    """Return the ratios to the baselines and the users service's goals, each marked met or not."""
    ours = reports.get("ours")
    if ours is None:
        return []
    rps, p99, peak = ours["requests"]["rps"], ours["latency_ms"]["p99"], ours["memory"]["peak_bytes"]
    lines = []
    if "tutorial" in reports:
        times = _times(rps, reports["tutorial"]["requests"]["rps"])
        goal = f"at least {GOAL_VS_TUTORIAL:.0f}x: {_met(times >= GOAL_VS_TUTORIAL)}"
        lines.append(f"ours/tutorial: {times:.2f}x the requests/s ({goal})")
    if "minimal" in reports:
        times = _times(rps, reports["minimal"]["requests"]["rps"])
        lines.append(f"ours/minimal: {times:.2f}x the requests/s (above 1x: {_met(times > 1)})")
    lines.append(f"ours p99: {_ms(p99)} (below {GOAL_P99_MS:.0f} ms: {_met(p99 is not None and p99 < GOAL_P99_MS)})")
    below = peak is not None and peak < GOAL_PEAK_BYTES
    lines.append(f"ours peak memory: {_mib(peak)} (below {_mib(GOAL_PEAK_BYTES)}: {_met(below)})")
    prober = ours["cost"]["prober_cpu_percent"]
    lines.append(
        f"prober CPU (watch + audit + report) over the load: {prober:.1f} % of a core "
        f"(at most {GOAL_PROBER_CPU_PERCENT:.0f} %: {_met(prober <= GOAL_PROBER_CPU_PERCENT)})"
    )
    return lines


def _times(ours: float, other: float) -> float:
    return ours / other if other else float("inf")


def _met(ok: bool) -> str:
    return "met" if ok else "NOT met"


def generator_line(reports: Mapping[str, dict[str, Any]]) -> str:
    """Say whether Locust's own CPU was the bottleneck of any run."""
    usage = {name: report["cost"]["load_generator_cpu_percent"] or 0.0 for name, report in reports.items()}
    saturated = [f"{name} ({value:.0f} %)" for name, value in usage.items() if value >= GENERATOR_SATURATED_PERCENT]
    if saturated:
        return (
            f"Load generator: the bottleneck in {', '.join(saturated)}: Locust was near 100 % of a core, "
            "so those figures understate what the service can do."
        )
    return f"Load generator: not the bottleneck (Locust used at most {max(usage.values()):.0f} % of a core)."


def print_results(results: Sequence[Result], args: argparse.Namespace) -> None:
    """Print the comparison table, the ratios, the goals and whether the load generator held them back."""
    console = Console()
    console.print(
        f"\n{args.users} users creating and listing the first page 1:1, {args.duration} per stack, "
        f"each app held to {MEMORY} with swap equal, one stack after the other on this machine:",
        highlight=False,
    )
    table = Table()
    table.add_column("")
    for result in results:
        table.add_column(f"{result.stack.name}\n{result.stack.title}", justify="right")
    columns = [table_column(result) for result in results]
    for index, row_name in enumerate(ROW_NAMES):
        table.add_row(row_name, *(column[index] for column in columns))
    console.print(table)
    measured = {result.stack.name: result.report for result in results if result.report is not None}
    lines = goal_lines(measured) + ([generator_line(measured)] if measured else [])
    if any((result.host_busy_percent or 0) > BUSY_HOST_PERCENT for result in results):
        lines.append(
            f"Host: other work kept the CPU over {BUSY_HOST_PERCENT:.0f} % busy before a run: "
            "those figures are contended; run again on a quiet machine."
        )
    for line in lines:
        console.print(line, highlight=False)
    console.print(f"Reports: {args.out}/<stack>/report.json and report.html", highlight=False)


def run_audit_bench(target: str, env: Mapping[str, str]) -> bool:
    """Run bench/audit.py against target, its output straight to the console; return whether it measured."""
    print(
        f"\nWrite audit: {AUDIT_BENCH.relative_to(ROOT)} --target {target} "
        "(300,000 acknowledged writes read back; goals: under 60 s, under 50 MiB of prober heap) …",
        flush=True,
    )
    done = subprocess.run([sys.executable, str(AUDIT_BENCH), "--target", target], cwd=ROOT, env=env, check=False)
    if done.returncode != 0:
        print(f"Write audit: bench/audit.py exited with code {done.returncode}", flush=True)
    return done.returncode == 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the chosen stacks one after the other and print their figures side by side, then the audit's."""
    args = parse_args(argv)
    images = image_environment()
    stacks = [stack for name, stack in STACKS.items() if name in (args.only or STACKS)]
    if images["PIP_NO_INDEX"]:
        for stack in stacks:
            if stack.wheels_for is not None:
                fetch_wheels(stack.wheels_for)
    env = {**os.environ, **images}
    results = [run_stack(stack, args, env) for stack in stacks]
    print_results(results, args)
    audited = args.audit == "none" or run_audit_bench(args.audit, env)
    return 0 if audited and all(result.report is not None for result in results) else 1


if __name__ == "__main__":
    sys.exit(main())
