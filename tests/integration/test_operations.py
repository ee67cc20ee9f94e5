"""Operating the platform on a backlog, on the real stack, in one run of the orchestrator: batch
readiness (issue: batch outputs from complete inputs only) and what an on-call engineer sees.

1. A backlog of several hours of generated events is on the topics before the orchestrator
   starts (fresh ledger). data_enrichment is held FATAL by a bad configuration (its user master
   is missing): the hourly and daily intervals wait, with the reason in the status; the Kafka
   lag of data_enrichment is the whole backlog.
2. The configuration is fixed and the job started (`orchestrator.py start data_enrichment`): it
   works through the backlog in small micro-batches, each hour runs as soon as the
   enriched_events watermark has passed its end, the lag falls to zero, and the micro-batch
   metrics equal what the jobs logged.
3. clickstream_analysis is stopped while events keep arriving: its lag grows. The status page,
   in a real headless browser, shows it stopped and links to the running job's Spark UI.
4. A batch run shows up completed in the Spark History Server. At the end every complete hour
   equals the independent oracle, and the ledger shows that no interval ran before its upstream
   watermark had passed its end.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from configs.spark_config import PROJECT_ROOT, load_settings
from supervisor.scheduler import Ledger
from tests import oracle
from tests.integration.helpers import Orchestrator, Run, merge_truth, read_progress
from utils.progress import parse_watermark

pytestmark = pytest.mark.integration
PORT = 18499
HOURS = 5
EVENTS = 4000
ENRICHMENT_WATERMARK = timedelta(minutes=10)
HISTORY = "http://127.0.0.1:18080"
ARTIFACTS = PROJECT_ROOT / "logs" / "ui"


def logged_at(record: dict) -> datetime:
    """A JSON log line's time (ISO 8601, UTC)."""
    return datetime.fromisoformat(record["asctime"])


def metrics() -> dict[tuple, float]:
    text = requests.get(f"http://127.0.0.1:{PORT}/metrics", timeout=5).text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for f in text_string_to_metric_families(text) for s in f.samples}


def lag(job: str, topic: str) -> float | None:
    return metrics().get(("orchestrator_streaming_kafka_lag_records", (("job", job), ("topic", topic))))


def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--window-size=1400,1000"):
        options.add_argument(flag)
    # The Debian package's driver, given explicitly: Selenium downloads nothing.
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


def test_batches_wait_for_complete_inputs_and_operators_see_lag_rates_and_pages(stack, tmp_path):
    run = Run(tmp_path / "ops", f"op{uuid.uuid4().hex[:6]}_")
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=HOURS)
    # Late records arrive 150 minutes behind: further than two micro-batches of 600 offsets
    # (~45 minutes of event time each) behind the watermark, so the oracle can drop all of them.
    # (A micro-batch filters late rows by the previous batch's watermark.)
    run.generate("--app-events", str(EVENTS), "--sessions-per-minute", f"{EVENTS / 8.5 / (HOURS * 60):.3f}",
                 "--users", "200", "--seed", "41", "--start", start.isoformat(), "--malformed-rate", "0.01",
                 "--duplicate-rate", "0.02", "--late-rate", "0.01", "--late-delay-minutes", "150",
                 truth=run.root / "truth1")
    master, held = run.root / "user_master", run.root / "user_master.held"
    master.rename(held)  # the bad configuration: data_enrichment cannot start
    app_topic, click_topic = run.env["TOPIC_APP_EVENTS"], run.env["TOPIC_CLICKSTREAM"]

    orch = Orchestrator(
        run, PORT, "--jobs", "data_enrichment,clickstream_analysis,hourly_aggregate,daily_summary", batch=True,
        # Event logs where the stack's History Server reads them.
        env={"KAFKA_MAX_OFFSETS_PER_TRIGGER": "600", "TRIGGER_INTERVAL": "2 seconds",
             "ORCHESTRATOR_CATCHUP_HOURS": "24", "SPARK_EVENT_LOG_DIR": str(load_settings().event_log_dir)},
        registry_edits={"start_seconds: 30": "start_seconds: 10", "backoff_initial_seconds: 5 ":
                        "backoff_initial_seconds: 2 ", "max_consecutive_failures: 5 ": "max_consecutive_failures: 2 "},
    ).start()
    try:
        # 1. Held FATAL: the intervals wait and say why; the lag is the whole backlog.
        held_fatal = orch.wait_for(lambda s: s["jobs"]["data_enrichment"]["state"] == "FATAL", 400,
                                   "data_enrichment FATAL on its missing user master")
        hourly = held_fatal["jobs"]["hourly_aggregate"]
        assert hourly["state"] == "WAITING" and hourly["intervals"]["succeeded"] == 0, hourly
        assert "(data_enrichment is FATAL)" in hourly["waiting"][0]["reason"], hourly["waiting"]
        shown = orch.cli("status")
        assert shown.returncode == 1, "a FATAL job makes the status command fail"
        assert "WAITING" in shown.stdout and "data_enrichment is FATAL" in shown.stdout, shown.stdout
        produced = sum(1 for r in oracle.load(run.root / "truth1", "app_events"))
        orch.wait_for(lambda s: lag("data_enrichment", app_topic) == produced, 60, "lag = the whole backlog")

        # 2. Fixed and started: the backlog is worked through; hours run as their watermarks pass.
        held.rename(master)
        started = orch.cli("start", "data_enrichment")
        assert started.returncode == 0, started.stderr

        def settled(final: datetime):
            def check(status: dict) -> bool:
                query = read_progress(run, "data_enrichment").get("enriched_events", {})
                wm = parse_watermark(query.get("watermark"))
                return (bool(query.get("idle")) and wm is not None and wm >= final - timedelta(seconds=1)
                        and all(status["jobs"][j]["state"] != "RUNNING" and not status["jobs"][j]["ready_pending"]
                                for j in ("hourly_aggregate", "daily_summary")))
            return check

        final = oracle.max_event_time(run.root / "truth1", "app_events", "event_timestamp") - ENRICHMENT_WATERMARK
        orch.wait_for(settled(final), 900, "the backlog processed and every ready interval run")
        orch.wait_for(lambda s: lag("data_enrichment", app_topic) == 0
                      and lag("clickstream_analysis", click_topic) == 0, 60, "caught up: lag 0")

        # Every streaming query has its rows/s and micro-batch duration, equal to what the job logged.
        status, values = orch.status(), metrics()
        for job in ("data_enrichment", "clickstream_analysis"):
            logged = {(r["query_name"], r["batch_id"]): r for r in run.log_records(job)
                      if r.get("message") == "batch progress"}
            queries = status["jobs"][job]["queries"]
            assert queries
            for query, info in queries.items():
                labels = (("job", job), ("query", query))
                for metric in ("input_rows_per_second", "processed_rows_per_second", "batch_duration_seconds"):
                    assert (f"orchestrator_streaming_{metric}", labels) in values, (metric, labels)
                record = logged[(query, info["batch_id"])]
                assert info["batch_duration_s"] == record["batch_duration_ms"] / 1000
                assert info["input_rows_per_second"] == record["input_rows_per_second"]
            assert status["jobs"][job]["app_id"].startswith("app-")
            assert requests.get(status["jobs"][job]["ui_url"], timeout=5).ok, "the driver's Spark UI answers"
        # The real master's /json read right: two jobs hold SPARK_CORES_MAX cores each, none waits.
        master = status["spark_master"]
        assert master["alive_workers"] == 2 and master["apps_waiting"] == [], master
        assert master["cores"] >= master["cores_used"] >= 2 * 2, master
        assert values[("orchestrator_spark_cores", (("kind", "total"),))] == master["cores"]
        # Two streaming jobs and one batch run at SPARK_CORES_MAX=2 each, which the workers cover.
        assert master["cores_needed"] == 2 * 3 <= master["cores"], master
        assert values[("orchestrator_spark_cores", (("kind", "needed"),))] == 6
        assert values[("orchestrator_spark_apps_waiting", ())] == 0
        assert values[("orchestrator_streaming_micro_batch_duration_seconds_count",
                       (("job", "data_enrichment"), ("query", "enriched_events")))] >= 5
        # The status command links each running job to its Spark application and UI, and each
        # batch job to its last run's application (for the History Server).
        shown = orch.cli("status").stdout
        for job in ("data_enrichment", "clickstream_analysis"):
            assert status["jobs"][job]["app_id"] in shown and status["jobs"][job]["ui_url"] in shown, shown
        assert status["jobs"]["hourly_aggregate"]["last_run"]["app_id"] in shown, shown

        # 3. One job stopped while events keep arriving: its lag grows.
        assert orch.cli("stop", "clickstream_analysis").returncode == 0
        orch.wait_for(lambda s: s["jobs"]["clickstream_analysis"]["state"] == "STOPPED", 120, "stopped")
        before = lag("clickstream_analysis", click_topic)
        later = oracle.max_event_time(run.root / "truth1", "app_events", "event_timestamp") + timedelta(minutes=1)
        run.generate("--app-events", "1500", "--seed", "42", "--users", "200", "--start", later.isoformat(),
                     truth=run.root / "truth2")
        orch.wait_for(lambda s: (lag("clickstream_analysis", click_topic) or 0) > (before or 0) + 500, 120,
                      "the stopped job's lag grows")

        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        driver = browser()
        try:
            driver.get(f"http://127.0.0.1:{PORT}/")
            text = driver.find_element("tag name", "body").text
            for job in ("data_enrichment", "clickstream_analysis", "hourly_aggregate", "daily_summary"):
                assert job in text
            rows = {r.find_element("tag name", "td").text: r.text for r in driver.find_elements("css selector", "tr")
                    if r.find_elements("tag name", "td")}
            assert "STOPPED" in rows["clickstream_analysis"] and "RUNNING" in rows["data_enrichment"], rows
            links = [a.get_attribute("href") for a in driver.find_elements("link text", "Spark UI")]
            assert links and all(requests.get(url, timeout=5).ok for url in links), links
            assert driver.find_elements("css selector", "svg polyline"), "the rates chart is drawn"
            shot = ARTIFACTS / "status-page.png"
            driver.save_screenshot(str(shot))
            assert shot.stat().st_size > 10_000
        finally:
            driver.quit()

        # 4. A batch run, listed as completed by the History Server.
        app = orch.status()["jobs"]["hourly_aggregate"]["last_run"]["app_id"]
        deadline = time.monotonic() + 120
        while not any(a["id"] == app for a in requests.get(f"{HISTORY}/api/v1/applications?status=completed",
                                                            timeout=5).json()):
            assert time.monotonic() < deadline, f"{app} not completed in the History Server"
            time.sleep(2)

        truth = merge_truth(run, [run.root / "truth1", run.root / "truth2"])
        final = oracle.max_event_time(truth, "app_events", "event_timestamp") - ENRICHMENT_WATERMARK
        orch.wait_for(settled(final), 600, "part 2 processed and every ready interval run")
        waiting_after = orch.status()["jobs"]["hourly_aggregate"]
    finally:
        assert orch.stop() == 0

    watermark = parse_watermark(read_progress(run, "data_enrichment")["enriched_events"]["watermark"])
    ledger = Ledger(run.root / "state" / "orchestrator" / "ledger.sqlite")
    hours = {datetime.fromisoformat(r["interval_start"]): r for r in ledger.rows("hourly_aggregate")}
    complete = sorted(h for h in hours if h + timedelta(hours=1) <= watermark)
    assert len(complete) >= HOURS, sorted(hours)

    # When each hour became ready, by the job's own progress log: its first committed micro-batch
    # whose watermark passed the hour's end. No interval ran before.
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

    expected = {k: v for k, v in oracle.hourly(truth).items() if k[0] in complete}
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
        inputs = oracle.daily_inputs(truth, day.date(), gap=timedelta(minutes=30), watermark=timedelta(minutes=5))
        mine = summaries[summaries.summary_date.astype(str) == day.date().isoformat()] if len(summaries) else summaries
        assert {r.app_type: (r.total_events, r.total_sessions) for r in mine.itertuples()} == {
            app: (sum(v["events_per_user"].values()), len(v["sessions"])) for app, v in inputs.items()}
