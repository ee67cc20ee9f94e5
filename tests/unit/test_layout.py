"""Modules a reader can hold in their head: none over 350 lines unless the README's layout table
says why."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LIMIT = 350


def test_no_module_over_the_limit_without_a_reason_in_the_readme():
    # The part of each layout row after "Over 350 lines:" names the long modules and why.
    rows = [line.split(f"Over {LIMIT} lines", 1)[1] for line in (ROOT / "README.md").read_text().splitlines()
            if line.startswith("| `") and f"Over {LIMIT} lines" in line]
    long = []
    for path in sorted(ROOT.glob("**/*.py")):
        rel = path.relative_to(ROOT)
        if rel.parts[0] in {".venv", "tests", "build", ".jars", "outputs", "state"} or rel.parts[0].startswith("."):
            continue
        if len(path.read_text().splitlines()) > LIMIT and not any(f"`{path.name}`" in r or f"`{rel}`" in r
                                                                   for r in rows):
            long.append(f"{rel} ({len(path.read_text().splitlines())} lines)")
    assert not long, f"split these, or say why in the README's layout table: {', '.join(long)}"
