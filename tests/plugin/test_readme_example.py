"""The README's pytest example is the one in examples/pytest/, which test_example_e2e.py runs."""

from __future__ import annotations

import pytest

from tests.conftest import ROOT


@pytest.mark.parametrize("name", ["conftest.py", "test_users_memory.py"])
def test_readme_shows_the_example_file_whole(name: str) -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## From pytest") :]
    example = (ROOT / "examples" / "pytest" / name).read_text()
    assert f"```python\n{example}```\n" in section
