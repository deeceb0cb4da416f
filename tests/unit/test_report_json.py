"""report.json on disk: written whole, read back equal."""

from __future__ import annotations

from pathlib import Path

import pytest

from stackprobe.report import Report, load_report, render_json

DATA = Path(__file__).parent / "data"


def test_render_json_writes_a_report_that_loads_back_equal(tmp_path: Path) -> None:
    report = load_report(DATA / "report_oom.json")
    path = render_json(report, tmp_path / "out" / "report.json")
    assert path == tmp_path / "out" / "report.json"
    assert load_report(path) == report


def test_render_json_leaves_no_temporary_file(tmp_path: Path) -> None:
    render_json(Report(), tmp_path / "report.json")
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


def test_render_json_cleans_up_when_the_file_cannot_be_replaced(tmp_path: Path) -> None:
    (tmp_path / "report.json").mkdir()  # a folder where the file should go
    with pytest.raises(IsADirectoryError):
        render_json(Report(), tmp_path / "report.json")
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


def test_load_report_refuses_another_schema_version(tmp_path: Path) -> None:
    path = tmp_path / "report.json"
    path.write_text('{"schema_version": 99}')
    with pytest.raises(ValueError, match="schema_version 99"):
        load_report(path)
