"""The demo says, per batch job, what the job logged it wrote (or why it wrote nothing)."""

from __future__ import annotations

import json

from tools.demo import outcomes


def test_outcomes_are_read_from_the_job_log_after_the_offset(tmp_path):
    log = tmp_path / "daily_summary.log"
    earlier = json.dumps({"message": "date written", "target_date": "2026-11-20", "rows": 9}) + "\n"
    log.write_text(earlier)
    offset = log.stat().st_size
    with log.open("a") as f:
        for record in ({"message": "starting", "target_date": "2026-11-26"},
                       {"message": "date written", "target_date": "2026-11-26", "rows": 1234},
                       {"message": "no input for the date: nothing written", "target_date": "2026-11-27"}):
            f.write(json.dumps(record) + "\n")
        f.write("Exception in thread main: not a JSON line\n")
    assert outcomes(log, offset) == ["2026-11-26: date written, 1,234 rows",
                                     "2026-11-27: no input for the date: nothing written"]


def test_outcomes_of_a_job_that_never_logged_are_empty(tmp_path):
    assert outcomes(tmp_path / "missing.log", 0) == []
