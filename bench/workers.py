"""Requests per second from Locust's own distributed mode: 1 worker against 2, where the generator is the limit.

    python bench/workers.py [--workers 1,2] [--repeat 1] [--duration 30s] [--users 50] [--out reports/bench/workers]

Each run is `stackprobe run --workers N` on bench/static/compose.yaml: nginx serving one static page, which
costs it a few tens of microseconds per request, so one Locust worker (one process, one core at most)
is the limit, not the service. The figures come from each run's report.json: requests per second,
p95, each worker's CPU (its busiest 10 s, measured by stackprobe) and whether the generator was the
bottleneck, and the service's own CPU beside them. `--workers 0` adds a run of Locust as one process.
`--repeat N` runs every count N times, in interleaved rounds (1, 2, 1, 2, ...) so that other work on the
machine falls on each alike; each column then shows its median run, and every run's rate below.

On a 2-core machine the second worker shares the cores with the first, the master, nginx, the kernel's
NAT and stackprobe itself: expect less than twice the rate of one worker.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from run import host_busy_percent, read_env_file

ROOT = Path(__file__).resolve().parents[1]
STACK = ROOT / "bench" / "static" / "compose.yaml"
LOCUSTFILE = ROOT / "bench" / "static" / "locustfile.py"
# Every request counts in the figures; the verdict of a run is not what the bench is about.
SLO = "errors<100%"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Return the command line's options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", default="1,2", help="worker counts to run, e.g. 0,1,2 (0: one process)")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each count, interleaved (default: 1)")
    parser.add_argument("--duration", default="30s", help="length of each run's load (default: 30s)")
    parser.add_argument("--users", type=int, default=50, help="Locust users, all started at once (default: 50)")
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "bench" / "workers", help="report folder")
    args = parser.parse_args(argv)
    try:
        args.counts = [int(term) for term in args.workers.split(",")]
    except ValueError:
        parser.error(f"--workers {args.workers!r} is not a list of numbers, e.g. 1,2")
    if any(count < 0 for count in args.counts) or args.users < 1 or args.repeat < 1:
        parser.error("worker counts must be 0 or more, --users and --repeat at least 1")
    return args


def run_once(workers: int, round_: int, args: argparse.Namespace, env: dict[str, str]) -> dict[str, Any] | None:
    """Run `stackprobe run --workers N` on the static stack; return its report (None when it made none)."""
    out = (args.out / f"workers-{workers}" / f"run-{round_}").resolve()
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").unlink(missing_ok=True)
    command = [
        sys.executable, "-m", "stackprobe", "run",
        "--compose-file", str(STACK), "--service", "web", "--workers", str(workers),
        "--users", str(args.users), "--spawn-rate", str(args.users), "--duration", args.duration,
        "--locustfile", str(LOCUSTFILE), "--slo", SLO, "--out", str(out),
    ]  # fmt: skip
    log = out / "stackprobe.log"
    print(f"{workers} worker(s), run {round_}: stackprobe run (log: {log}) …", flush=True)
    started = time.monotonic()
    with log.open("w") as output:
        done = subprocess.run(command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT, check=False)
    if done.returncode not in (0, 1, 3) or not (out / "report.json").is_file():
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
        print(f"{workers} worker(s): stackprobe exited with code {done.returncode}:\n{tail}", flush=True)
        return None
    print(f"{workers} worker(s): done in {time.monotonic() - started:.0f} s", flush=True)
    return json.loads((out / "report.json").read_text())


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} %"


def _column(report: dict[str, Any] | None, first_rps: float | None, busy: float | None) -> list[str]:
    """Return one run's figures, in the order of ROWS."""
    if report is None:
        return ["no report"] + ["-"] * (len(ROWS) - 1)
    rps = report["requests"]["rps"]
    dist = report["load"]["distributed"]
    p95 = report["latency_ms"]["p95"]
    if dist is None:
        workers_cpu, master_cpu = "-", "-"
        single_cpu = _percent(report["cost"]["load_generator_cpu_percent"])
        bound = "yes" if any("Locust" in reason and "core" in reason for reason in report["reasons"]) else "no"
    else:
        workers_cpu = ", ".join(_percent(w["cpu_busiest_percent"]) for w in dist["workers"])
        master_cpu, single_cpu = _percent(dist["master_cpu_percent"]), "-"
        bound = "yes" if dist["generator_bound"] else "no"
    return [
        f"{rps:,.0f}",
        f"{rps / first_rps:.2f}x" if first_rps else "-",
        f"{report['requests']['total']:,}",
        "-" if p95 is None else f"{p95:.0f} ms",
        workers_cpu,
        master_cpu,
        single_cpu,
        bound,
        _percent(report["cpu"]["avg_percent"]),
        _percent(busy),
    ]


ROWS = (
    "requests/s",
    "against the first run",
    "requests",
    "p95",
    "each worker's CPU, busiest 10 s",
    "master's CPU",
    "Locust's CPU (one process)",
    "generator bound",
    "nginx's CPU, average",
    "host busy just before",
    "every run's requests/s",
)

Run = tuple[dict[str, Any] | None, float | None]


def median_run(runs: list[Run]) -> Run:
    """Return the run with the median rate (the lower middle one of an even count); a failed run counts as 0."""
    ranked = sorted(runs, key=lambda run: run[0]["requests"]["rps"] if run[0] is not None else 0.0)
    return ranked[(len(ranked) - 1) // 2]


def print_table(results: dict[int, list[Run]], console: Console) -> None:
    """Print one column per worker count (its median run), with its rate against the first count's."""
    table = Table(title="Locust workers against a static page (bench/static)", title_justify="left")
    table.add_column("figure")
    for workers in results:
        title = f"{workers} worker{'s' if workers != 1 else ''}" if workers else "one process"
        table.add_column(title, justify="right")
    medians = {workers: median_run(runs) for workers, runs in results.items()}
    first_rps = next((r["requests"]["rps"] for r, _ in medians.values() if r is not None), None)
    columns = []
    for workers, (report, busy) in medians.items():
        rates = [f"{r['requests']['rps']:,.0f}" if r is not None else "-" for r, _ in results[workers]]
        columns.append([*_column(report, first_rps, busy), " / ".join(rates)])
    for index, name in enumerate(ROWS):
        table.add_row(name, *(column[index] for column in columns))
    console.print(table)
    console.print(
        f"{os.cpu_count()} CPU cores on this machine. CPU in percent of one core, stackprobe's measure of each "
        "process (a worker's busiest 10 s, the master's and nginx's average); requests/s and p95 from Locust's "
        "totals in each report.json; host busy: share of all cores busy in the 2 s before each run."
    )


def main(argv: list[str] | None = None) -> int:
    """Run every worker count asked, then print the table."""
    args = parse_args(argv)
    dotenv = read_env_file(ROOT / ".env")
    # bench/static has no .env of its own: pass the machine's nginx image on, as Compose would read it.
    env = {**os.environ, "NGINX_IMAGE": os.environ.get("NGINX_IMAGE", dotenv.get("NGINX_IMAGE", ""))}
    if not env["NGINX_IMAGE"]:
        del env["NGINX_IMAGE"]
    results: dict[int, list[Run]] = {workers: [] for workers in args.counts}
    for round_ in range(1, args.repeat + 1):
        for workers in args.counts:
            busy = host_busy_percent()
            results[workers].append((run_once(workers, round_, args, env), busy))
    print_table(results, Console())
    return 0 if all(report is not None for runs in results.values() for report, _ in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
