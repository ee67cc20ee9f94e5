"""Batch intervals run only on complete inputs, on the real stack.

A backlog of several hours of generated events is on the topics before the orchestrator starts,
with a fresh ledger. data_enrichment is held FATAL by a bad configuration (its user master is
missing), so the hourly and daily intervals wait, with the reason in the status. Once the
configuration is fixed and the job is started again (`orchestrator.py start data_enrichment`),
it works through the backlog in small micro-batches, each hour runs as soon as the
enriched_events watermark has passed its end, and every complete hour equals the independent
oracle. The ledger shows that no interval ran before its upstream watermark had passed its end.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from supervisor.scheduler import Ledger
from tests import oracle
from tests.integration.helpers import Orchestrator, Run, read_progress
from utils.progress import parse_watermark

pytestmark = pytest.mark.integration
PORT = 18499
HOURS = 5
EVENTS = 4000
ENRICHMENT_WATERMARK = timedelta(minutes=10)


def at_hour(value: datetime) -> datetime:
    return value.replace(minute=0, second=0, microsecond=0)


def logged_at(record: dict) -> datetime:
    """A JSON log line's time (asctime is the local time of the process, which is this one's)."""
    return datetime.strptime(record["asctime"], "%Y-%m-%d %H:%M:%S,%f").astimezone(UTC)


def test_intervals_wait_for_their_inputs_then_equal_the_oracle(stack, tmp_path):
    run = Run(tmp_path / "ready", f"rd{uuid.uuid4().hex[:6]}_")
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=HOURS)
    # Late records arrive 150 minutes behind: further than two micro-batches of 600 offsets
    # (~45 minutes of event time each) behind the watermark, so the oracle can drop all of them.
    # (A micro-batch filters late rows by the previous batch's watermark.)
    run.generate("--app-events", str(EVENTS), "--sessions-per-minute", f"{EVENTS / 8.5 / (HOURS * 60):.3f}",
                 "--users", "200", "--seed", "41", "--start", start.isoformat(), "--malformed-rate", "0.01",
                 "--duplicate-rate", "0.02", "--late-rate", "0.01", "--late-delay-minutes", "150")
    master, held = run.root / "user_master", run.root / "user_master.held"
    master.rename(held)  # the bad configuration: data_enrichment cannot start

    orch = Orchestrator(
        run, PORT, "--jobs", "data_enrichment,clickstream_analysis,hourly_aggregate,daily_summary", batch=True,
        env={"KAFKA_MAX_OFFSETS_PER_TRIGGER": "600", "TRIGGER_INTERVAL": "2 seconds",
             "ORCHESTRATOR_CATCHUP_HOURS": "24"},
        registry_edits={"start_seconds: 30": "start_seconds: 10", "backoff_initial_seconds: 5 ":
                        "backoff_initial_seconds: 2 ", "max_consecutive_failures: 5 ": "max_consecutive_failures: 2 "},
    ).start()
    try:
        held_fatal = orch.wait_for(lambda s: s["jobs"]["data_enrichment"]["state"] == "FATAL", 400,
                                   "data_enrichment FATAL on its missing user master")
        hourly = held_fatal["jobs"]["hourly_aggregate"]
        assert hourly["state"] == "WAITING" and hourly["intervals"]["succeeded"] == 0, hourly
        assert "(data_enrichment is FATAL)" in hourly["waiting"][0]["reason"], hourly["waiting"]
        shown = orch.cli("status")
        assert shown.returncode == 1, "a FATAL job makes the status command fail"
        assert "WAITING" in shown.stdout and "data_enrichment is FATAL" in shown.stdout, shown.stdout

        held.rename(master)  # the fix
        started = orch.cli("start", "data_enrichment")
        assert started.returncode == 0, started.stderr
        final = oracle.max_event_time(run.truth, "app_events", "event_timestamp") - ENRICHMENT_WATERMARK

        def settled(status: dict) -> bool:
            query = read_progress(run, "data_enrichment").get("enriched_events", {})
            wm = parse_watermark(query.get("watermark"))
            return (bool(query.get("idle")) and wm is not None and wm >= final - timedelta(seconds=1)
                    and all(status["jobs"][j]["state"] != "RUNNING" and not status["jobs"][j]["ready_pending"]
                            for j in ("hourly_aggregate", "daily_summary")))

        orch.wait_for(settled, 900, "the backlog processed and every ready interval run")
        waiting_after = orch.status()["jobs"]["hourly_aggregate"]
    finally:
        assert orch.stop() == 0

    watermark = parse_watermark(read_progress(run, "data_enrichment")["enriched_events"]["watermark"])
    ledger = Ledger(run.root / "state" / "orchestrator" / "ledger.sqlite")
    hours = {datetime.fromisoformat(r["interval_start"]): r for r in ledger.rows("hourly_aggregate")}
    complete = sorted(h for h in hours if h + timedelta(hours=1) <= watermark)
    assert len(complete) >= HOURS, sorted(hours)

    # When each hour became ready, by the job's own progress log: its first committed micro-batch
    # whose watermark passed the hour's end.
    progress = [(logged_at(r), parse_watermark(r["watermark"])) for r in run.log_records("data_enrichment")
                if r.get("message") == "batch progress" and r.get("query_name") == "enriched_events"]
    runs = set()
    for hour, row in hours.items():
        end = hour + timedelta(hours=1)
        if hour not in complete:
            assert row["status"] == "waiting" and "enriched_events watermark" in row["reason"], row
            continue
        assert (row["status"], row["attempts"], row["forced"]) == ("succeeded", 1, False), row
        ran_against = parse_watermark(row["watermarks"]["data_enrichment/enriched_events"])
        assert ran_against >= end, row
        passed_at = min(t for t, wm in progress if wm and wm >= end)
        assert datetime.fromisoformat(row["started_at"]) >= passed_at, (row, passed_at)
        runs.add(row["run_id"])
    assert len(runs) < len(complete), "consecutive ready hours ran as ranges"
    assert waiting_after["intervals"]["waiting"] == len(hours) - len(complete)

    expected = {k: v for k, v in oracle.hourly(run.truth).items() if k[0] in complete}
    df = run.dataset("hourly_aggregates")
    got = {(pd.Timestamp(h, tz="UTC").to_pydatetime(), t, a): (n, u, s)
           for h, t, a, n, u, s in zip(df.hour_start, df.event_type, df.app_type, df.event_count,
                                       df.unique_users, df.unique_sessions, strict=True)}
    assert got == expected
    assert sum(r["rows_written"] for h, r in hours.items() if h in complete) == len(expected)

    # The daily intervals: run only once both upstreams had passed the day's end (+1 hour for
    # sessions), and then equal to the oracle's totals (a day without events wrote nothing).
    days = ledger.rows("daily_summary")
    assert days
    summaries = run.dataset("daily_summaries")
    for row in days:
        day = datetime.fromisoformat(row["interval_start"])
        if row["status"] != "succeeded":
            assert row["status"] == "waiting", row
            continue
        marks = {k: parse_watermark(v) for k, v in row["watermarks"].items()}
        assert marks["data_enrichment/enriched_events"] >= day + timedelta(days=1), row
        assert marks["clickstream_analysis/clickstream_sessions"] >= day + timedelta(days=1, hours=1), row
        inputs = oracle.daily_inputs(run.truth, day.date(), gap=timedelta(minutes=30), watermark=timedelta(minutes=5))
        mine = summaries[summaries.summary_date.astype(str) == day.date().isoformat()] if len(summaries) else summaries
        assert {r.app_type: (r.total_events, r.total_sessions) for r in mine.itertuples()} == {
            app: (sum(v["events_per_user"].values()), len(v["sessions"])) for app, v in inputs.items()}
