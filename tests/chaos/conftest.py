"""Chaos scenarios record their figures; the session writes them to logs/chaos/ as JSON and as
the Markdown table RELIABILITY.md quotes."""

from __future__ import annotations

import json
import platform
import subprocess
from datetime import UTC, datetime

import pytest

from configs.spark_config import PROJECT_ROOT

OUT = PROJECT_ROOT / "logs" / "chaos"
COLUMNS = ("scenario", "what was done", "records in", "records out", "lost", "duplicated",
           "recovery (s)", "result")


@pytest.fixture(scope="session")
def reliability():
    rows: dict[str, dict] = {}
    yield rows
    if not rows:
        return
    OUT.mkdir(parents=True, exist_ok=True)
    previous = json.loads((OUT / "results.json").read_text()) if (OUT / "results.json").exists() else {}
    revision = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=PROJECT_ROOT,
                              capture_output=True, text=True, check=False).stdout.strip()
    stamp = {"when": datetime.now(UTC).isoformat(timespec="seconds"), "revision": revision,
             "machine": f"{platform.node()} {platform.machine()} {platform.python_version()}"}
    merged = {**previous.get("scenarios", {}), **{k: {**v, **stamp} for k, v in rows.items()}}
    (OUT / "results.json").write_text(json.dumps({"scenarios": merged}, indent=2, default=str))
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for name in sorted(merged):
        row = merged[name]
        lines.append("| " + " | ".join(str(row.get(c, "")) for c in COLUMNS) + " |")
    (OUT / "results.md").write_text("\n".join(lines) + "\n")
