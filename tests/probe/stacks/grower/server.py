"""A test-only HTTP service that keeps the memory each request asks for, so a small limit OOM-kills it."""

import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CHUNK = 4 * 1024 * 1024
held: list[bytes] = []


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path.startswith("/grow"):
            # bytes filled with a value touch every page, so the cgroup is charged for all of it.
            held.append(b"x" * CHUNK)
        body = json.dumps({"held_bytes": len(held) * CHUNK}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


if __name__ == "__main__":
    ThreadingHTTPServer(("0.0.0.0", 8000), Handler).serve_forever()
