"""A pytest plugin for the plugin's own tests: say, once the session ends, which heavy modules it imported.

Loaded with `-p _modules_seen` (its folder on PYTHONPATH) into a pytest subprocess.
"""

from __future__ import annotations

import sys
from typing import Any

# Locust monkey-patches the process with gevent when imported; the Docker SDK and the prober cost time.
WATCHED = ("locust", "gevent", "docker", "stackprobe.probe")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for name in WATCHED:
        terminalreporter.write_line(f"module {name}: {'imported' if name in sys.modules else 'not imported'}")
