"""What an on-call engineer reads: Kafka lag from offsets, micro-batch figures, the status page
and the alert rules, from fabricated progress (no cluster needed)."""

from __future__ import annotations

import json
import logging
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from configs.spark_config import PROJECT_ROOT, load_job_registry, load_settings
from supervisor import health
from supervisor.manager import Orchestrator
from supervisor.metrics import ProgressTracker, job_lag, render_metrics
from supervisor.page import render_page

LATEST = {"app_events": {0: 1000, 1: 900}}
EARLIEST = {"app_events": {0: 100, 1: 0}}


def record(batch: int, **extra) -> dict:
    return {"query_run_id": "r1", "batch_id": batch, "batch_duration_ms": 4000, "input_rows_per_second": 50.0,
            "processed_rows_per_second": 80.0, "logged_at": 1000.0, **extra}


def test_lag_is_latest_minus_committed_of_the_slowest_query_from_the_earliest_before_any_commit():
    progress = {"windows": record(3, end_offsets={"app_events": {"0": 1000, "1": 850}}),
                "quarantine": record(3, end_offsets={"app_events": {"0": 700, "1": 900}})}
    assert job_lag(["app_events"], progress, LATEST, EARLIEST) == {"app_events": 300}
    assert job_lag(["app_events"], {}, LATEST, EARLIEST) == {"app_events": 900 + 900}
    assert job_lag(["app_events"], progress, {}, {}) == {}, "no broker answer: unknown, not zero"


def test_each_micro_batch_is_counted_once_and_rates_kept_for_an_hour():
    tracker = ProgressTracker()
    for now, batch in ((0.0, 1), (1.0, 1), (2.0, 2), (3601.0, 3)):
        tracker.observe("event_aggregation", {"windows": record(batch)}, now)
    tracker.observe("event_aggregation", {"windows": record(9, carried_over=True)}, 3701.0)
    samples = {s.name: s.value for f in text_string_to_metric_families(
        render_metrics(status(), tracker).decode()) for s in f.samples if "micro_batch" in s.name}
    assert samples["orchestrator_streaming_micro_batch_duration_seconds_count"] == 3
    assert samples["orchestrator_streaming_micro_batch_duration_seconds_sum"] == 12.0
    assert [t for t, *_ in tracker.rates["event_aggregation"]] == [2.0, 3601.0]


def status(state: str = "RUNNING") -> dict:
    return {
        "healthy": True, "pid": 1, "uptime_seconds": 12.0, "time": "2026-11-29T18:00:00+00:00",
        "spark_master": {"alive_workers": 2, "cores": 12, "cores_used": 10, "cores_needed": 14,
                         "apps_waiting": ["data-platform-hourly_aggregate"]},
        "jobs": {
            "event_aggregation": {
                "kind": "streaming", "state": state, "starts": 2, "restarts": 1, "failures": 1,
                "uptime_seconds": 60.0, "last_progress": 1000.0, "lag": {"app_events": 300},
                "app_id": "app-1", "ui_url": "http://127.0.0.1:4040" if state == "RUNNING" else None,
                "standby": "ready", "standby_pid": 4321,
                "queries": {"windows": {"batch_id": 3, "input_rows_per_second": 50.0,
                                        "processed_rows_per_second": 80.0, "batch_duration_s": 4.0,
                                        "watermark": "2026-11-29T17:58:00.000Z", "watermark_delay_s": 120.0,
                                        "state_rows": 77, "logged_at": 990.0}}},
            "hourly_aggregate": {
                "kind": "batch", "state": "WAITING", "intervals": {"succeeded": 5, "failed": 1, "waiting": 2,
                                                                   "running": 0},
                "waiting": [{"interval": "2026-11-29T17:00:00+00:00", "reason": "watermark < needed"}],
                "last_run": {"interval_start": "2026-11-29T16:00:00+00:00", "status": "succeeded",
                             "duration_s": 3.5, "app_id": "app-2"},
                "last_success_at": 1700.0},
        }}


def test_metrics_have_the_documented_names_labels_and_units():
    families = {f.name: f for f in text_string_to_metric_families(render_metrics(status()).decode())}
    value = {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families.values() for s in f.samples}
    job, query = ("job", "event_aggregation"), ("query", "windows")
    assert value[("orchestrator_streaming_kafka_lag_records", (job, ("topic", "app_events")))] == 300
    assert value[("orchestrator_streaming_input_rows_per_second", (job, query))] == 50.0
    assert value[("orchestrator_streaming_processed_rows_per_second", (job, query))] == 80.0
    assert value[("orchestrator_streaming_batch_duration_seconds", (job, query))] == 4.0
    assert value[("orchestrator_streaming_watermark_delay_seconds", (job, query))] == 120.0
    assert value[("orchestrator_streaming_state_rows", (job, query))] == 77
    hourly = ("job", "hourly_aggregate")
    assert value[("orchestrator_batch_last_success_timestamp_seconds", (hourly,))] == 1700.0
    assert value[("orchestrator_batch_last_duration_seconds", (hourly,))] == 3.5
    assert value[("orchestrator_batch_intervals", (hourly, ("status", "waiting")))] == 2
    # Counters count and say so (Prometheus naming): *_total.
    assert value[("orchestrator_job_starts_total", (job,))] == 2
    assert families["orchestrator_job_starts"].type == "counter"
    assert value[("orchestrator_job_state", (job, ("state", "RUNNING")))] == 1
    assert value[("orchestrator_streaming_standby_ready", (job,))] == 1
    assert value[("orchestrator_spark_cores", (("kind", "total"),))] == 12
    assert value[("orchestrator_spark_cores", (("kind", "used"),))] == 10
    assert value[("orchestrator_spark_cores", (("kind", "needed"),))] == 14
    assert value[("orchestrator_spark_apps_waiting", ())] == 1


def test_status_page_shows_every_job_its_state_and_links_and_refreshes_itself():
    rates = {"event_aggregation": [(100.0, 50.0, 80.0), (200.0, 60.0, 60.0)]}
    page = render_page(status(), rates, master_ui="http://127.0.0.1:8080", history_ui="http://127.0.0.1:18080",
                       now=300.0)
    assert '<meta http-equiv="refresh"' in page and "<script" not in page
    assert "event_aggregation" in page and "hourly_aggregate" in page and ">RUNNING<" in page and ">WAITING<" in page
    assert '<a href="http://127.0.0.1:4040">Spark UI</a>' in page
    assert '<a href="http://127.0.0.1:18080/history/app-2/">app-2</a>' in page
    assert "2026-11-29T17:00:00+00:00: watermark &lt; needed" in page
    assert page.count("<polyline") == 2, "input and processed rows/s"
    assert '10 of 12 cores used (<span style="color:#cf222e">the supervised applications need 14</span>)' in page
    assert "1 application(s) waiting for cores: data-platform-hourly_aggregate" in page
    stopped = render_page(status("STOPPED"), {}, history_ui="http://127.0.0.1:18080", now=300.0)
    assert ">STOPPED<" in stopped and '<a href="http://127.0.0.1:18080/history/app-1/">app-1</a>' in stopped


def test_alert_rules_are_well_formed_and_use_exported_metrics():
    rules = yaml.safe_load((PROJECT_ROOT / "configs" / "prometheus" / "alerts.yml").read_text())
    exported = {s.name for f in text_string_to_metric_families(render_metrics(status(), ProgressTracker()).decode())
                for s in f.samples} | {"orchestrator_streaming_micro_batch_duration_seconds_bucket"}
    names = set()
    for group in rules["groups"]:
        for rule in group["rules"]:
            assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"} and rule["alert"] and rule["expr"]
            assert re.fullmatch(r"\d+[smh]", rule["for"])
            used = set(re.findall(r"orchestrator_[a-z_]+", rule["expr"]))
            assert used and used <= exported, used - exported
            names.add(rule["alert"])
    assert names == {"StreamingLagGrowing", "JobFatal", "HourlyAggregateStale", "MicroBatchSlowerThanTrigger",
                     "SparkApplicationWaitingForCores", "SparkCoresBelowNeed"}


def test_master_summary_counts_cores_and_names_the_applications_waiting_for_them():
    # The shape of the standalone master's /json (Spark 4), trimmed to what is read.
    state = {"status": "ALIVE", "cores": 12, "coresused": 12,
             "workers": [{"state": "ALIVE"}, {"state": "ALIVE"}, {"state": "DEAD"}],
             "activeapps": [{"name": "data-platform-event_aggregation", "state": "RUNNING"},
                            {"name": "data-platform-event_aggregation", "state": "WAITING"},
                            {"name": "data-platform-daily_summary", "state": "WAITING"}]}
    summary = health.master_summary(state)
    assert summary["alive_workers"] == 2 and (summary["cores"], summary["cores_used"]) == (12, 12)
    assert summary["apps_waiting"] == ["data-platform-daily_summary", "data-platform-event_aggregation"]
    assert health.master_summary({})["apps_waiting"] == [] and health.master_summary({})["cores"] is None


def test_the_cores_needed_count_every_job_standby_and_one_batch_run_and_a_shortfall_says_so():
    assert health.cores_needed(2, streaming=4, standbys=0, batch=True) == 10
    assert health.cores_needed(2, streaming=4, standbys=2, batch=True) == 14
    assert health.cores_needed(3, streaming=0, standbys=0, batch=True) == 3
    assert health.core_shortfall({"cores": 12}, 12) is None
    assert health.core_shortfall({"reachable": None}, 99) is None, "local[*]: the master does not say"
    short = health.core_shortfall({"cores": 12}, 14)
    assert "need 14 cores" in short and "offer 12" in short
    fits = dict(status()["spark_master"], cores_needed=12)
    assert "(the supervised applications need 12)" in render_page({**status(), "spark_master": fits}, {}, now=300.0)


@pytest.fixture
def master_json(monkeypatch):
    """A real HTTP server answering /json/ like a standalone master with two workers of 6 cores."""
    state = {"status": "ALIVE", "cores": 12, "coresused": 4, "activeapps": [],
             "workers": [{"state": "ALIVE"}, {"state": "ALIVE"}]}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200 if self.path == "/json/" else 404)
            self.end_headers()
            self.wfile.write(json.dumps(state).encode())

        def log_message(self, *args):
            """Quiet: no request lines in the test output."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("SPARK_MASTER_WEBUI_PORT", str(server.server_address[1]))
    yield state
    server.shutdown()


def test_the_orchestrator_counts_its_applications_cores_and_warns_when_the_workers_cannot_hold_them(
        tmp_path, master_json, caplog):
    registry = load_job_registry()
    settings = load_settings(state_root=tmp_path / "state", log_dir=tmp_path / "logs",
                             spark_master_url="spark://127.0.0.1:7077", spark_cores_max=2)
    streaming = ["event_aggregation", "clickstream_analysis", "cdc_transformation", "data_enrichment"]

    def orchestrator(standbys: list[str]) -> Orchestrator:
        jobs = {n: s.model_copy(update={"standby": n in standbys}) for n, s in registry.items()}
        return Orchestrator(settings, jobs, streaming=streaming, batch=["hourly_aggregate", "daily_summary"],
                            spawner=lambda spec, args: pytest.fail("nothing is started here"))

    fits = orchestrator(["event_aggregation"])
    with caplog.at_level(logging.WARNING, logger="orchestrator"):
        fits.check_cores()
    assert fits.cores_needed == 12 and caplog.records == [], "4 jobs, 1 standby, 1 batch run: 12 of 12"
    assert fits.status()["spark_master"] | {"cores": 12, "cores_needed": 12} == fits.status()["spark_master"]
    short = orchestrator(["event_aggregation", "data_enrichment"])
    with caplog.at_level(logging.WARNING, logger="orchestrator"):
        short.check_cores()
    assert short.cores_needed == 14
    warned = [r.getMessage() for r in caplog.records]
    assert any("need 14 cores" in m and "offer 12" in m for m in warned), warned
    # Before any worker registered (compose starts them together), the start says nothing: the
    # master line shows no worker alive, and the page and the alert take over once they count.
    caplog.clear()
    master_json.update(cores=0, workers=[])
    with caplog.at_level(logging.WARNING, logger="orchestrator"):
        short.check_cores()
    assert caplog.records == []
