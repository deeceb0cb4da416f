"""A small HTTP server for the ownership stacks: answers GET with its container's hostname.

Environment: PORT (default 8000) and BIND (default 0.0.0.0) to listen on; SIGTERM_FILE, a file to write the
time a SIGTERM arrived; LINGER_S, how long to keep serving after it (default 0) before exiting. As PID 1
Python would ignore SIGTERM: the handler is what makes the container stop when told to.
"""

import os
import signal
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = socket.gethostname().encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def on_sigterm(signum: int, frame: object) -> None:
    path = os.environ.get("SIGTERM_FILE")
    if path:
        with open(path, "w") as out:
            out.write(repr(time.time()))
    threading.Timer(float(os.environ.get("LINGER_S", "0")), os._exit, args=(0,)).start()


signal.signal(signal.SIGTERM, on_sigterm)
ThreadingHTTPServer((os.environ.get("BIND", "0.0.0.0"), int(os.environ.get("PORT", "8000"))), Handler).serve_forever()
