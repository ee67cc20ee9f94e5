"""Chaos scenarios record their figures; the session writes them to logs/chaos/ as JSON and as
the Markdown table RELIABILITY.md quotes.

Only this session's scenarios are written, each row stamped with this run's git revision and
time: a figure from an older run never stands in for a scenario that failed or did not run. A
scenario that started but recorded nothing (its test failed) is written as FAILED.
"""

from __future__ import annotations

import json
import platform
import subprocess
from datetime import UTC, datetime

import pytest

from configs.spark_config import PROJECT_ROOT

OUT = PROJECT_ROOT / "logs" / "chaos"
COLUMNS = ("scenario", "what was done", "records in", "records out", "lost", "duplicated",
           "recovery (s)", "result", "run")


class Reliability(dict):
    """scenario -> row; `start` marks a scenario as begun, so that a failure still shows."""

    def __init__(self) -> None:
        super().__init__()
        self.started: list[str] = []

    def start(self, scenario: str) -> None:
        self.started.append(scenario)


@pytest.fixture(scope="session")
def reliability():
    rows = Reliability()
    began = datetime.now(UTC)
    yield rows
    if not rows.started and not rows:
        return
    OUT.mkdir(parents=True, exist_ok=True)
    revision = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=PROJECT_ROOT,
                              capture_output=True, text=True, check=False).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=PROJECT_ROOT,
                           capture_output=True, text=True, check=False).stdout.strip()
    run = f"git {revision}{'+changes' if dirty else ''}, {began:%Y-%m-%d %H:%M} UTC"
    for scenario in rows.started:
        rows.setdefault(scenario, {"scenario": scenario, "result": "FAILED (see the test's output)"})
    stamped = {k: {**v, "run": run} for k, v in rows.items()}
    machine = f"{platform.node()} {platform.machine()} Python {platform.python_version()}"
    (OUT / "results.json").write_text(json.dumps({"run": run, "machine": machine, "scenarios": stamped},
                                                 indent=2, default=str))
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for name in sorted(stamped):
        lines.append("| " + " | ".join(str(stamped[name].get(c, "")) for c in COLUMNS) + " |")
    (OUT / "results.md").write_text("\n".join(lines) + "\n")
