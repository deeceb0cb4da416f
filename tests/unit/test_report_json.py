"""report.json on disk: written whole, read back equal."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
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


@pytest.mark.parametrize("name", sorted(p.name for p in DATA.glob("report_*.json")))
def test_every_report_fixture_is_valid_against_the_current_schema(name: str) -> None:
    # A fixture left at an older shape would test reports no run writes any more.
    schema = json.loads((Path(__file__).parents[2] / "stackprobe" / "report" / "schema.json").read_text())
    jsonschema.validate(json.loads((DATA / name).read_text()), schema)
