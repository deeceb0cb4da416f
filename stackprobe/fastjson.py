"""JSON parsing for the prober's hot paths: the write log's lines and a listing's pages."""

from __future__ import annotations

import json
from typing import Any

import orjson


def loads(data: bytes | str) -> Any:
    """Parse JSON exactly as json.loads does (ValueError when it is not JSON), with orjson where orjson can.

    orjson parses the write log's short lines several times faster than json. It refuses some of what json
    takes (NaN, Infinity, integers past 64 bits): those go to json, so the result is always json's.
    """
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)
