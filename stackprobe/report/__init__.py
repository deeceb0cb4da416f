"""The Report of a probe run and its renderings: JSON, a self-contained HTML page, a console summary."""

from stackprobe.report.console import render_console
from stackprobe.report.jsonfile import load_report, render_json
from stackprobe.report.model import Report
from stackprobe.report.page import render_html
from stackprobe.report.schema import load_schema
from stackprobe.report.verdict import judge

__all__ = ["Report", "judge", "load_report", "load_schema", "render_console", "render_html", "render_json"]
