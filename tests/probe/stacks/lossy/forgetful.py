"""A users service that acknowledges every create but keeps users only in memory: a restart forgets them.

It speaks the bundled service's API as loadtests/registrar.py uses it: POST /users (201, Location),
GET /users?limit=&after=&name= (keyset pages, `next`), GET /users/<id> (404 when unknown), GET /healthz.
A test kills it mid-run; its restart policy brings it back empty, and the audit must find the loss.
"""

import json
import os
import signal
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, quote, urlsplit

lock = threading.Lock()
users: dict[int, dict] = {}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def answer(self, status: int, document: object, headers: dict[str, str] | None = None) -> None:
        body = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        if parts.path == "/users":
            query = {key: values[0] for key, values in parse_qs(parts.query).items()}
            limit, after, name = int(query.get("limit", "50")), int(query.get("after", "0")), query.get("name")
            with lock:
                found = [u for i, u in sorted(users.items()) if i > after and (name is None or u["name"] == name)]
            page, more = found[:limit], len(found) > limit
            named = "" if name is None else f"&name={quote(name, safe='')}"
            next_url = f"/users?limit={limit}{named}&after={page[-1]['id']}" if more else None
            self.answer(200, {"items": page, "next": next_url})
        elif parts.path.startswith("/users/") and parts.path[7:].isdigit():
            with lock:
                user = users.get(int(parts.path[7:]))
            self.answer(200, user) if user else self.answer(404, {"error": {"code": "user_not_found"}})
        else:
            self.answer(200, {"status": "ok"})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        document = json.loads(self.rfile.read(length) or b"{}")
        with lock:
            user = {"id": len(users) + 1, "name": document["name"], "created_at": datetime.now(UTC).isoformat()}
            users[user["id"]] = user
        self.answer(201, user, {"Location": f"/users/{user['id']}"})

    def log_message(self, format: str, *args: object) -> None:
        pass


if __name__ == "__main__":
    # PID 1 ignores SIGTERM without a handler: the teardown would wait out Docker's 10 s for nothing.
    signal.signal(signal.SIGTERM, lambda signum, frame: os._exit(0))
    server = ThreadingHTTPServer(("0.0.0.0", 8000), Handler)
    server.daemon_threads = True
    server.serve_forever()
