"""The orchestrator's batch scheduling with an injected clock, a fake process factory and
fabricated progress files: due intervals wait for their inputs, consecutive ready ones run as one
range, and every interval's outcome lands in the ledger."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from configs.spark_config import load_job_registry, load_settings
from supervisor.manager import Orchestrator
from supervisor.process import State


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@dataclass
class FakeRun:
    pid: int
    args: list[str]
    exit_code: int | None = None

    def poll(self) -> int | None:
        return self.exit_code

    def reap_group(self) -> None:
        pass

    def signal_group(self, sig: int) -> None:
        self.exit_code = -sig

    @property
    def result_file(self) -> Path:
        return Path(self.args[self.args.index("--result-file") + 1])

    def finish(self, code: int, intervals: list[str], status: str = "written") -> None:
        """What utils/batch_job.py reports for each interval it got through."""
        with self.result_file.open("a") as f:
            for interval in intervals:
                f.write(json.dumps({"interval": interval, "status": status, "rows_read": 10, "rows_written": 4,
                                    "duration_s": 1.0, "forced": False, "reason": "not ready (job)",
                                    "watermarks": {}, "app_id": "app-1"}) + "\n")
        self.exit_code = code


class Fixture:
    def __init__(self, tmp_path: Path, now: str, jobs: list[str]):
        self.state = tmp_path / "state"
        self.now = at(now).timestamp()
        self.runs: list[FakeRun] = []
        settings = load_settings(state_root=self.state, log_dir=tmp_path / "logs", spark_master_url="local[1]")
        self.orch = Orchestrator(settings, load_job_registry(), streaming=[], batch=jobs, clock=lambda: self.now,
                                 spawner=self.spawn)

    def spawn(self, spec, args) -> FakeRun:
        run = FakeRun(1000 + len(self.runs), list(args))
        self.runs.append(run)
        return run

    def progress(self, job: str, **watermarks: str) -> None:
        folder = self.state / "progress"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{job}.json").write_text(json.dumps({q: {"watermark": w} for q, w in watermarks.items()}))

    def ledger(self, job: str) -> dict[str, tuple]:
        return {r["interval_start"][:16]: (r["status"], r["attempts"])
                for r in self.orch.ledger.rows(job)}


@pytest.fixture
def hourly(tmp_path):
    return Fixture(tmp_path, "2026-11-25 14:30", ["hourly_aggregate"])


def test_due_hours_wait_until_the_watermark_passes_then_run_as_one_range(hourly):
    assert hourly.orch.status()["jobs"]["hourly_aggregate"]["checked_at"] is None
    hourly.orch.tick()
    assert hourly.runs == [], "no progress yet: nothing runs"
    status = hourly.orch.status()["jobs"]["hourly_aggregate"]
    assert status["state"] == "WAITING" and status["intervals"]["waiting"] == 24
    assert status["checked_at"] == "2026-11-25T14:30:00+00:00", "when the watermarks were last read"
    assert status["waiting"][0] == {"interval": "2026-11-24T14:00:00+00:00", "reason":
                                    "data_enrichment/enriched_events watermark none yet < needed 2026-11-24T15:00:00Z"}

    hourly.progress("data_enrichment", enriched_events="2026-11-25T10:05:00.000Z")
    hourly.orch.tick()
    [run] = hourly.runs
    assert run.args[:4] == ["--from-hour", "2026-11-24 14:00:00", "--to-hour", "2026-11-25 09:00:00"]
    assert "--force" not in run.args
    ledger = hourly.ledger("hourly_aggregate")
    assert ledger["2026-11-25T09:00"] == ("running", 0) and ledger["2026-11-25T10:00"] == ("waiting", 0)

    run.finish(0, [f"2026-11-24T{h:02d}:00:00+00:00" for h in range(14, 24)]
               + [f"2026-11-25T{h:02d}:00:00+00:00" for h in range(10)])
    hourly.orch.tick()
    ledger = hourly.ledger("hourly_aggregate")
    assert sum(s == ("succeeded", 1) for s in ledger.values()) == 20
    assert [k for k, s in ledger.items() if s == ("waiting", 0)] == [f"2026-11-25T{h}:00" for h in (10, 11, 12, 13)]
    row = next(r for r in hourly.orch.ledger.rows("hourly_aggregate")
               if r["interval_start"].startswith("2026-11-25T09"))
    assert (row["rows_read"], row["rows_written"], row["app_id"], row["forced"]) == (10, 4, "app-1", False)
    assert row["watermarks"] == {"data_enrichment/enriched_events": "2026-11-25T10:05:00Z"}
    assert len(hourly.runs) == 1, "the rest still waits"

    hourly.progress("data_enrichment", enriched_events="2026-11-25T12:00:00.000Z")
    hourly.orch.tick()
    assert hourly.runs[1].args[:4] == ["--from-hour", "2026-11-25 10:00:00", "--to-hour", "2026-11-25 11:00:00"]


def test_a_run_that_fails_half_way_keeps_what_it_wrote(hourly):
    hourly.progress("data_enrichment", enriched_events="2026-11-25T14:00:00.000Z")
    hourly.orch.tick()
    hourly.runs[0].finish(1, ["2026-11-24T14:00:00+00:00", "2026-11-24T15:00:00+00:00"])
    hourly.orch.tick()
    ledger = hourly.ledger("hourly_aggregate")
    assert ledger["2026-11-24T15:00"] == ("succeeded", 1)
    assert ledger["2026-11-24T16:00"] == ("failed", 1)
    assert hourly.orch.batches.failed == 22
    assert hourly.orch.status()["jobs"]["hourly_aggregate"]["state"] == "BACKOFF"
    # Retried after the job's backoff, from the first failed hour on.
    hourly.now += 61
    hourly.orch.tick()
    assert hourly.runs[1].args[1] == "2026-11-24 16:00:00"
    states = {job["state"] for job in hourly.orch.status()["jobs"].values()}
    assert states <= {s.value for s in State}, "every job's state is a state of the state machine"


def test_a_job_that_finds_its_input_incomplete_sends_the_interval_back_to_waiting(hourly):
    hourly.progress("data_enrichment", enriched_events="2026-11-25T14:00:00.000Z")
    hourly.orch.tick()
    hourly.runs[0].finish(75, ["2026-11-24T14:00:00+00:00"], status="not_ready")
    hourly.orch.tick()
    ledger = hourly.ledger("hourly_aggregate")
    assert ledger["2026-11-24T14:00"] == ("waiting", 0), "neither a failure nor an attempt"
    assert ledger["2026-11-24T15:00"] == ("waiting", 0)
    assert hourly.orch.batches.failed == 0
    hourly.orch.tick()
    assert len(hourly.runs) == 1, "held for a while before looking again"


def test_daily_jobs_wait_for_the_sessions_margin(tmp_path):
    daily = Fixture(tmp_path, "2026-11-25 00:50", ["daily_summary", "user_segmentation"])
    daily.orch.scheduler.catchup = timedelta(hours=1)
    daily.progress("data_enrichment", enriched_events="2026-11-25T00:20:00.000Z")
    daily.progress("clickstream_analysis", clickstream_sessions="2026-11-25T00:35:00.000Z")
    daily.orch.tick()
    assert daily.runs == []
    status = daily.orch.status()["jobs"]["daily_summary"]
    assert "clickstream_analysis/clickstream_sessions watermark 2026-11-25T00:35:00Z < needed " \
           "2026-11-25T01:00:00Z" in status["waiting"][-1]["reason"]
    daily.progress("clickstream_analysis", clickstream_sessions="2026-11-25T01:00:00.000Z")
    daily.orch.tick()
    assert [r.args[-4:-2] for r in daily.runs] == [["--to-date", "2026-11-24"]] * 2
    assert daily.runs[1].args[:2] == ["--lookback-days", "30"]
