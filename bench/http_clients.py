"""What an HTTP request costs the prober's own CPU, by client: why its hot paths use the clients they do.

    python bench/http_clients.py [--gets 5000] [--seconds 10]

Against a stand-in server in a child process on 127.0.0.1 (asyncio, a fixed JSON answer at once), so that
only the client's cost is measured:
- the write audit's reads (stackprobe/audit.py): CPU milliseconds per GET, kept-alive, in this process,
  through http.client (what the audit uses), a requests.Session and, when installed, an httpx.Client;
- the load generator (loadtests/): CPU milliseconds per request of a Locust process (from its first user's
  start to its stop, its own start-up left out), one user with no wait for --seconds, as FastHttpUser
  (geventhttpclient, what loadtests/ use) and as HttpUser (requests).

CPU time, not wall time: the figures hold on a machine busy with other work, where wall time would not.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

_SERVER = r"""
import asyncio, sys
BODY = b'{"id": 1, "name": "bench-000001", "created_at": "2026-11-30T09:00:00+00:00"}'
ANSWER = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(BODY), BODY)

async def serve(reader, writer):
    try:
        while True:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(ANSWER)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        writer.close()

async def serve_forever():
    server = await asyncio.start_server(serve, "127.0.0.1", int(sys.argv[1]))
    print("ready", flush=True)
    await server.serve_forever()

asyncio.run(serve_forever())
"""

# The CPU the Locust process spends from the first user's start to the stop.
_LOCUSTFILE = """
import json, os, resource
from locust import {base}, constant, events, task

def cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime

started = []

@events.test_start.add_listener
def on_start(environment, **kwargs):
    started.append(cpu())

@events.test_stop.add_listener
def on_stop(environment, **kwargs):
    with open(os.environ["BENCH_CPU_FILE"], "w") as out:
        json.dump({{"cpu_s": cpu() - started[0], "requests": environment.stats.total.num_requests}}, out)

class Reader({base}):
    wait_time = constant(0)

    @task
    def read(self):
        self.client.get("/users/1", name="/users/<id>")
"""


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _getter(client: str, port: int) -> Callable[[int], object]:
    """Return a function that GETs /users/<i> over one kept-alive connection of `client` and parses the JSON."""
    if client == "http.client":
        import http.client

        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)

        def get(i: int) -> object:
            connection.request("GET", f"/users/{i}")
            return json.loads(connection.getresponse().read())

        return get
    if client == "requests":
        import requests

        session = requests.Session()
        return lambda i: session.get(f"http://127.0.0.1:{port}/users/{i}", timeout=5).json()
    import httpx

    httpx_client = httpx.Client(timeout=5)
    return lambda i: httpx_client.get(f"http://127.0.0.1:{port}/users/{i}").json()


def audit_clients(port: int, gets: int) -> dict[str, float]:
    """Return CPU milliseconds per GET for each client, after 200 GETs of warm-up (httpx only if installed)."""
    figures = {}
    clients = ["http.client", "requests"] + (["httpx"] if importlib.util.find_spec("httpx") else [])
    for client in clients:
        get = _getter(client, port)
        for i in range(200):
            get(i)
        before = _cpu_seconds()
        for i in range(gets):
            get(i)
        figures[client] = (_cpu_seconds() - before) / gets * 1000
    return figures


def locust_users(port: int, seconds: int) -> dict[str, tuple[int, float]]:
    """Return (requests, CPU milliseconds per request) of a Locust process per User class."""
    figures = {}
    for base in ("FastHttpUser", "HttpUser"):
        with tempfile.TemporaryDirectory(prefix="bench-http-") as folder:
            locustfile = Path(folder) / "locustfile.py"
            locustfile.write_text(_LOCUSTFILE.format(base=base))
            cpu_file = Path(folder) / "cpu.json"
            argv = [
                sys.executable, "-m", "locust", "-f", str(locustfile), "--headless", "-u", "1", "-r", "1",
                "-t", f"{seconds}s", "--host", f"http://127.0.0.1:{port}", "--only-summary",
            ]  # fmt: skip
            env = {**os.environ, "BENCH_CPU_FILE": str(cpu_file)}
            subprocess.run(argv, capture_output=True, check=True, timeout=seconds + 60, env=env)
            measured = json.loads(cpu_file.read_text())
        figures[base] = (measured["requests"], measured["cpu_s"] / max(measured["requests"], 1) * 1000)
    return figures


def main() -> int:
    """Measure and print both tables; exit 0."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gets", type=int, default=5000, help="GETs per audit client (default: 5000)")
    parser.add_argument("--seconds", type=int, default=10, help="length of each Locust run (default: 10)")
    args = parser.parse_args()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    server = subprocess.Popen([sys.executable, "-c", _SERVER, str(port)], stdout=subprocess.PIPE)
    try:
        assert server.stdout is not None
        server.stdout.readline()
        print(f"write audit: CPU per GET, kept-alive, {args.gets} GETs each")
        for client, ms in audit_clients(port, args.gets).items():
            print(f"  {client:<12} {ms:.3f} ms")
        print(f"load generator: a Locust process, 1 user, no wait, {args.seconds} s each")
        for base, (count, ms) in locust_users(port, args.seconds).items():
            print(f"  {base:<12} {ms:.3f} ms per request ({count} requests)")
    finally:
        server.kill()
        server.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
