"""stackprobe's listener runs inside Locust: read here as source, never imported (it imports Locust)."""

from __future__ import annotations

import ast
import sys

from stackprobe import load, locuststats

SOURCE = ast.parse(load.LISTENER.read_text(), filename=str(load.LISTENER))


def _constants() -> dict[str, object]:
    values = {}
    for node in SOURCE.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    values[target.id] = node.value.value
    return values


def test_the_listener_reads_the_variables_stackprobe_sets() -> None:
    constants = _constants()
    assert constants["WINDOWS_ENV"] == load.WINDOWS_ENV
    assert constants["ERRORS_ENV"] == load.ERRORS_ENV
    assert constants["RATE_ENV"] == load.RATE_ENV


def test_the_listener_writes_the_formats_stackprobe_reads() -> None:
    constants = _constants()
    assert constants["WINDOWS_FORMAT"] == locuststats.WINDOWS_FORMAT
    assert constants["ERRORS_FORMAT"] == locuststats.ERRORS_FORMAT


def test_the_listener_imports_nothing_but_the_standard_library_and_locust() -> None:
    # It runs in Locust's process, gevent-patched, wherever Locust is installed: stackprobe's modules
    # (Docker, rich) are neither wanted nor certain to be there.
    imported = set()
    for node in ast.walk(SOURCE):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert imported - sys.stdlib_module_names == {"locust", "gevent"}
