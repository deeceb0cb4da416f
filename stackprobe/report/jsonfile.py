"""Write report.json and read it back."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from stackprobe.report.model import Report


def render_json(report: Report, path: str | Path) -> Path:
    """Write the report as JSON to `path`, whole or not at all, and return the path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    text = report.to_json() + "\n"
    # Write beside the target, then rename: a reader never sees half a report.
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def load_report(path: str | Path) -> Report:
    """Read a report.json written by render_json."""
    return Report.from_json(Path(path).read_text(encoding="utf-8"))
