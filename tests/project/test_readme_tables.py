"""README tables copied from committed result files match those files (benchmarks/readme_tables.py)."""
from __future__ import annotations

import importlib.util
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("readme_tables", REPO / "benchmarks" / "readme_tables.py")
readme_tables = importlib.util.module_from_spec(spec)
spec.loader.exec_module(readme_tables)


def test_readme_tables_match_their_result_files():
    _, changed = readme_tables.render((REPO / "README.md").read_text(encoding="utf-8"))
    assert not changed, f"README tables differ from {changed}: run python benchmarks/readme_tables.py"


def test_a_changed_result_file_is_caught(tmp_path):
    (tmp_path / "r.md").write_text("# title\n| a | b |\n|---|---|\n| 1 | 2 |\n", encoding="utf-8")
    readme = "x\n<!-- table from r.md -->\n| a | b |\n|---|---|\n| 1 | 3 |\n<!-- end table -->\ny\n"
    fixed, changed = readme_tables.render(readme, tmp_path)
    assert changed == ["r.md"]
    assert "| 1 | 2 |" in fixed and "| 1 | 3 |" not in fixed
    assert readme_tables.render(fixed, tmp_path)[1] == []
