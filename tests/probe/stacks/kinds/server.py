"""A test-only HTTP service with one fault at a time, chosen by environment variables (see the compose files).

Only requests to PREFIX/work count towards the *_ON_REQUEST triggers, so the healthcheck and stackprobe's
wait for the URL never set a fault off before the load starts.

PREFIX             serve under this path (e.g. /api); "" by default
LISTEN_AFTER_S     sleep this long before listening (a service without a healthcheck that starts slowly)
HOLD_AT_START_MIB  allocate and keep this much before listening (a limit too small to start under)
EXIT_ON_REQUEST    on the Nth /work request exit at once with EXIT_CODE (default 3)
SPIKE_ON_REQUEST   on the Nth /work request hold SPIKE_MIB for 200 ms, once
WORKERS_ON_REQUEST on the Nth /work request start WORKERS children, one after the other, each growing
                   until the OOM killer takes it; PID 1 keeps serving
Besides PREFIX/work: POST PREFIX/items stores the JSON body and answers 201 with the record;
GET PREFIX/items/<id> answers it (404 if unknown); GET PREFIX/workers says how the workers ended.
"""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PREFIX = os.environ.get("PREFIX", "")
LISTEN_AFTER_S = float(os.environ.get("LISTEN_AFTER_S", "0"))
HOLD_AT_START_MIB = int(os.environ.get("HOLD_AT_START_MIB", "0"))
EXIT_ON_REQUEST = int(os.environ.get("EXIT_ON_REQUEST", "0"))
EXIT_CODE = int(os.environ.get("EXIT_CODE", "3"))
SPIKE_ON_REQUEST = int(os.environ.get("SPIKE_ON_REQUEST", "0"))
SPIKE_MIB = int(os.environ.get("SPIKE_MIB", "100"))
WORKERS_ON_REQUEST = int(os.environ.get("WORKERS_ON_REQUEST", "0"))
WORKERS = int(os.environ.get("WORKERS", "2"))
# A worker: 8 MiB more every 50 ms, every page touched, until the OOM killer ends it.
GROW = "import time\nb = []\nwhile True:\n    b.append(b'x' * (8 * 2**20))\n    time.sleep(0.05)\n"

lock = threading.Lock()
work_requests = 0
items: dict[int, dict] = {}
worker_codes: list[int] = []


def run_workers() -> None:
    for _ in range(WORKERS):
        code = subprocess.run([sys.executable, "-c", GROW]).returncode
        with lock:
            worker_codes.append(code)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def answer(self, status: int, document: object) -> None:
        body = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        global work_requests
        path = self.path.split("?")[0]
        if not path.startswith(PREFIX):
            self.answer(404, {"error": "not under " + PREFIX})
            return
        path = path[len(PREFIX) :]
        if path == "/work":
            with lock:
                work_requests += 1
                number = work_requests
            if number == EXIT_ON_REQUEST:
                os._exit(EXIT_CODE)
            if number == SPIKE_ON_REQUEST:
                spike = b"x" * (SPIKE_MIB * 2**20)
                time.sleep(0.2)
                del spike
            if number == WORKERS_ON_REQUEST:
                threading.Thread(target=run_workers, daemon=True).start()
            self.answer(200, {"request": number})
        elif path.startswith("/items/"):
            with lock:
                record = items.get(int(path.rsplit("/", 1)[1])) if path.rsplit("/", 1)[1].isdigit() else None
            self.answer(200, record) if record else self.answer(404, {"error": "no such item"})
        elif path == "/workers":
            with lock:
                self.answer(200, {"exit_codes": list(worker_codes)})
        else:
            self.answer(200, {"ok": True})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        document = json.loads(self.rfile.read(length) or b"{}")
        if self.path != PREFIX + "/items" or not isinstance(document, dict):
            self.answer(404, {"error": "POST only to " + PREFIX + "/items"})
            return
        with lock:
            record = {**document, "id": len(items) + 1}
            items[record["id"]] = record
        self.answer(201, record)

    def log_message(self, format: str, *args: object) -> None:
        pass


def stop(signum: int, frame: object) -> None:
    # PID 1 ignores SIGTERM without a handler: the teardown would wait out Docker's 10 s for nothing.
    os._exit(0)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, stop)
    held = b"x" * (HOLD_AT_START_MIB * 2**20)
    time.sleep(LISTEN_AFTER_S)
    server = ThreadingHTTPServer(("0.0.0.0", 8000), Handler)
    server.daemon_threads = True
    server.serve_forever()
