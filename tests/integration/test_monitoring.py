"""What an on-call engineer sees, on the real stack: Kafka lag from the broker's end offsets,
micro-batch figures that agree with the jobs' own progress logs, the Spark History Server, and
the status page in a real headless browser (Debian's Chromium, driven by Selenium).

One platform run: a backlog is produced with the jobs stopped; the orchestrator starts them;
the lag is above zero, then falls to zero as they catch up; one job is stopped while events keep
arriving, and its lag grows; a batch run shows up completed in the History Server.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from configs.spark_config import PROJECT_ROOT, load_settings
from tests.integration.helpers import Orchestrator, Run

pytestmark = pytest.mark.integration
PORT = 18599
HISTORY = "http://127.0.0.1:18080"
JOBS = ("data_enrichment", "clickstream_analysis")
ARTIFACTS = PROJECT_ROOT / "logs" / "ui"


def metrics(port: int = PORT) -> dict[tuple, float]:
    text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for f in text_string_to_metric_families(text) for s in f.samples}


def lag(values: dict, job: str, topic: str) -> float | None:
    return values.get(("orchestrator_streaming_kafka_lag_records", (("job", job), ("topic", topic))))


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


def test_lag_rates_history_server_and_status_page(stack, tmp_path):
    run = Run(tmp_path / "mon", f"mo{uuid.uuid4().hex[:6]}_")
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=3)
    run.generate("--app-events", "3000", "--seed", "51", "--start", start.isoformat(), "--users", "200",
                 "--sessions-per-minute", f"{3000 / 8.5 / 120:.3f}", truth=run.root / "truth1")
    # Event logs where the stack's History Server reads them.
    events = load_settings().event_log_dir
    orch = Orchestrator(run, PORT, "--jobs", ",".join([*JOBS, "hourly_aggregate"]), batch=True,
                        env={"KAFKA_MAX_OFFSETS_PER_TRIGGER": "400", "TRIGGER_INTERVAL": "2 seconds",
                             "SPARK_EVENT_LOG_DIR": str(events), "ORCHESTRATOR_CATCHUP_HOURS": "4"},
                        registry_edits={"start_seconds: 30": "start_seconds: 10"}).start()
    try:
        # The backlog: lag above zero before the jobs have caught up...
        seen = []
        orch.wait_for(lambda s: seen.append(lag(metrics(), "data_enrichment", run.env["TOPIC_APP_EVENTS"]))
                      or (seen[-1] or 0) > 0, 300, "lag reported for the backlog")
        # ...and zero once they have.
        orch.wait_for(lambda s: lag(metrics(), "data_enrichment", run.env["TOPIC_APP_EVENTS"]) == 0
                      and lag(metrics(), "clickstream_analysis", run.env["TOPIC_CLICKSTREAM"]) == 0, 600,
                      "caught up: lag 0")
        assert max(v for v in seen if v is not None) > 1000

        # Every streaming query has its rows/s and micro-batch duration, equal to what the job logged.
        status = orch.status()
        values = metrics()
        for job in JOBS:
            queries = status["jobs"][job]["queries"]
            assert queries
            logged = {}
            for r in run.log_records(job):
                if r.get("message") == "batch progress":
                    logged[(r["query_name"], r["batch_id"])] = r
            for query, info in queries.items():
                labels = (("job", job), ("query", query))
                for metric in ("input_rows_per_second", "processed_rows_per_second", "batch_duration_seconds"):
                    assert (f"orchestrator_streaming_{metric}", labels) in values, (metric, labels)
                record = logged[(query, info["batch_id"])]
                assert info["batch_duration_s"] == record["batch_duration_ms"] / 1000
                assert info["input_rows_per_second"] == record["input_rows_per_second"]
            assert status["jobs"][job]["app_id"].startswith("app-")
            assert requests.get(status["jobs"][job]["ui_url"], timeout=5).ok, "the driver's Spark UI answers"
        count = values[("orchestrator_streaming_micro_batch_duration_seconds_count",
                        (("job", "data_enrichment"), ("query", "enriched_events")))]
        assert count >= 3

        # One job stopped while events keep arriving: its lag grows.
        assert orch.cli("stop", "clickstream_analysis").returncode == 0
        orch.wait_for(lambda s: s["jobs"]["clickstream_analysis"]["state"] == "STOPPED", 120, "stopped")
        topic = run.env["TOPIC_CLICKSTREAM"]
        before = lag(metrics(), "clickstream_analysis", topic)
        run.generate("--app-events", "1500", "--seed", "52", "--users", "200",
                     "--start", (start + timedelta(hours=2, minutes=5)).isoformat(), truth=run.root / "truth2")
        orch.wait_for(lambda s: (lag(metrics(), "clickstream_analysis", topic) or 0) > (before or 0) + 500, 120,
                      "the stopped job's lag grows")

        # The status page, in a real browser.
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        driver = browser()
        try:
            driver.get(f"http://127.0.0.1:{PORT}/")
            text = driver.find_element("tag name", "body").text
            for job in (*JOBS, "hourly_aggregate"):
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

        # A batch run of the orchestrator, listed as completed by the History Server.
        orch.wait_for(lambda s: s["jobs"]["hourly_aggregate"]["intervals"]["succeeded"] > 0, 300, "an hourly run")
        app = orch.status()["jobs"]["hourly_aggregate"]["last_run"]["app_id"]
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            apps = requests.get(f"{HISTORY}/api/v1/applications?status=completed", timeout=5).json()
            if any(a["id"] == app for a in apps):
                break
            time.sleep(2)
        else:
            raise AssertionError(f"{app} not completed in the History Server")
    finally:
        assert orch.stop() == 0
    assert Path(events).is_dir()
