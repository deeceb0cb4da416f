"""The JSON Schema (draft 2020-12) of report.json, shipped beside the model."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any


def load_schema() -> dict[str, Any]:
    """Return report.json's JSON Schema as a dict."""
    return json.loads((resources.files("stackprobe.report") / "schema.json").read_text(encoding="utf-8"))
