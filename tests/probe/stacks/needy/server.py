"""A test-only HTTP service whose memory need is known: what it holds at start plus a share per request.

At start it allocates and keeps HOLD_AT_START_MIB; each GET /work holds PER_REQUEST_MIB more for
HOLD_FOR_S seconds, then lets it go. With N concurrent requests its need is about 9 MiB (the interpreter)
+ HOLD_AT_START_MIB + N x PER_REQUEST_MIB; under a smaller limit the kernel OOM-kills it.
"""

import json
import mmap
import os
import signal
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MIB = 2**20
HOLD_AT_START_MIB = int(os.environ.get("HOLD_AT_START_MIB", "28"))
PER_REQUEST_MIB = int(os.environ.get("PER_REQUEST_MIB", "8"))
HOLD_FOR_S = float(os.environ.get("HOLD_FOR_S", "0.1"))

# bytes filled with a value touch every page, so the cgroup is charged for all of it.
held = b"x" * (HOLD_AT_START_MIB * MIB)


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path.split("?")[0] == "/work":
            # Its own mapping, every page touched, unmapped at once: the C allocator would keep freed heap
            # memory for the next request, and the need would drift from run to run.
            share = mmap.mmap(-1, PER_REQUEST_MIB * MIB)
            for offset in range(0, len(share), mmap.PAGESIZE):
                share[offset] = 1
            time.sleep(HOLD_FOR_S)
            share.close()
        body = json.dumps({"held_mib": HOLD_AT_START_MIB}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


if __name__ == "__main__":
    # As PID 1 the interpreter ignores SIGTERM: without this, every teardown waits out Docker's 10 s.
    signal.signal(signal.SIGTERM, lambda signum, frame: os._exit(0))
    ThreadingHTTPServer(("0.0.0.0", 8000), Handler).serve_forever()
