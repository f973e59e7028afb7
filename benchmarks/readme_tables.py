"""Copy the tables of committed result files into README.md, or check that README.md still matches them.

A README table that comes from a result file sits between two markers naming that file:

    <!-- table from benchmarks/results/fault_table.md -->
    | ... |
    <!-- end table -->

and holds exactly the table rows (lines starting with ``|``) of that file. ``python benchmarks/readme_tables.py``
rewrites every such block from its file; ``--check`` changes nothing and exits 1 naming each block that differs
(tests/project/test_readme_tables.py runs it, so a README table cannot drift from its source).
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"(<!-- table from (?P<source>\S+) -->\n)(?P<body>.*?)(<!-- end table -->)", re.DOTALL)


def table_rows(source: Path) -> str:
    """The markdown table lines of ``source``, newline-terminated."""
    rows = [line for line in source.read_text(encoding="utf-8").splitlines() if line.startswith("|")]
    if not rows:
        raise ValueError(f"{source}: no table rows")
    return "\n".join(rows) + "\n"


def render(readme: str, root: Path = REPO) -> tuple[str, list[str]]:
    """README text with every block refreshed, and the sources whose block changed."""
    changed: list[str] = []

    def refresh(match: re.Match) -> str:
        rows = table_rows(root / match["source"])
        if rows != match["body"]:
            changed.append(match["source"])
        return match.group(1) + rows + match.group(4)

    return BLOCK.sub(refresh, readme), changed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--readme", default=str(REPO / "README.md"))
    parser.add_argument("--check", action="store_true", help="only report blocks that differ from their files")
    args = parser.parse_args()
    path = Path(args.readme)
    text, changed = render(path.read_text(encoding="utf-8"))
    if args.check:
        for source in changed:
            print(f"{path}: the table from {source} differs from the file; run benchmarks/readme_tables.py",
                  file=sys.stderr)
        return 1 if changed else 0
    path.write_text(text, encoding="utf-8")
    print(f"{path}: {len(changed)} table(s) refreshed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
