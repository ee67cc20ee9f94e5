"""What an on-call engineer reads off the orchestrator: Kafka lag from the broker's real end
offsets, and the streaming jobs' micro-batches as the progress files report them.

Most series are rebuilt from the status snapshot at each scrape (no stale series for a job that
went away). The micro-batch duration histogram must remember every batch, so it lives in the
`ProgressTracker`, which reads each job's progress file once per orchestrator tick, counts each
micro-batch once, and keeps an hour of input/processed rates for the status page.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

log = logging.getLogger("orchestrator.metrics")

BATCH_BUCKETS = (0.5, 1, 2, 5, 10, 15, 20, 30, 60, 120, 300)


class ProgressTracker:
    """New micro-batches per (job, query): the duration histogram and an hour of rates per job."""

    def __init__(self, history_seconds: float = 3600.0):
        self.registry = CollectorRegistry()
        self.durations = Histogram(
            "orchestrator_streaming_micro_batch_duration_seconds",
            "duration of each micro-batch (trigger execution) seen in the jobs' progress", ["job", "query"],
            buckets=BATCH_BUCKETS, registry=self.registry)
        self.history_seconds = history_seconds
        self.rates: dict[str, deque[tuple[float, float, float]]] = {}
        self._seen: dict[tuple[str, str], tuple] = {}

    def observe(self, job: str, progress: dict[str, dict], now: float) -> None:
        new = False
        for query, record in progress.items():
            mark = (record.get("query_run_id"), record.get("batch_id"))
            if record.get("batch_id") is None or record.get("carried_over") or self._seen.get((job, query)) == mark:
                continue
            self._seen[(job, query)] = mark
            new = True
            if record.get("batch_duration_ms") is not None:
                self.durations.labels(job, query).observe(record["batch_duration_ms"] / 1000.0)
        if new:
            # The busiest query stands for the job (several queries may read the same topic).
            rates = self.rates.setdefault(job, deque())
            rates.append((now, max((r.get("input_rows_per_second") or 0.0) for r in progress.values()),
                          max((r.get("processed_rows_per_second") or 0.0) for r in progress.values())))
            while rates and rates[0][0] < now - self.history_seconds:
                rates.popleft()


class KafkaOffsets:
    """The broker's latest and earliest offsets of the topics the jobs read, refreshed in a
    thread of its own every `refresh_seconds` (a broker that does not answer never blocks the
    orchestrator's loop nor a scrape)."""

    def __init__(self, bootstrap: str, topics: Iterable[str], refresh_seconds: float = 5.0,
                 client_options: dict[str, str] | None = None):
        self.bootstrap = bootstrap
        self.topics = sorted(set(topics))
        self.refresh_seconds = refresh_seconds
        self.options = client_options or {}
        self.latest: dict[str, dict[int, int]] = {}
        self.earliest: dict[str, dict[int, int]] = {}
        self.updated_at: float | None = None
        self._stop = threading.Event()
        self._consumer = None
        self._failing = False

    def start(self) -> KafkaOffsets:
        threading.Thread(target=self._loop, name="kafka-offsets", daemon=True).start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.refresh()
                self._failing = False
            except Exception as exc:  # the broker is down or unreachable: lag becomes unknown
                if not self._failing:  # once per outage, not every 5 s
                    log.warning("kafka offsets unavailable, lag unknown: %s", exc)
                self._failing = True
                self.latest, self.updated_at = {}, None
                self._close()
            self._stop.wait(self.refresh_seconds)

    def _close(self) -> None:
        if self._consumer is not None:
            with contextlib.suppress(Exception):
                self._consumer.close()
            self._consumer = None

    def refresh(self) -> None:
        from kafka import KafkaConsumer, TopicPartition

        if self._consumer is None:
            self._consumer = KafkaConsumer(bootstrap_servers=self.bootstrap.split(","), client_id="orchestrator-lag",
                                           enable_auto_commit=False, request_timeout_ms=5000, **self.options)
        partitions = [TopicPartition(t, p) for t in self.topics for p in (self._consumer.partitions_for_topic(t) or ())]
        latest = self._consumer.end_offsets(partitions)
        earliest = self._consumer.beginning_offsets(partitions)
        self.latest = {t: {tp.partition: o for tp, o in latest.items() if tp.topic == t} for t in self.topics}
        self.earliest = {t: {tp.partition: o for tp, o in earliest.items() if tp.topic == t} for t in self.topics}
        self.updated_at = time.time()


def job_lag(topics: Iterable[str], progress: dict[str, dict], latest: dict[str, dict[int, int]],
            earliest: dict[str, dict[int, int]]) -> dict[str, int]:
    """Records on each topic not yet processed by the job: the broker's latest offsets minus the
    offsets the job's queries committed, summed over partitions; the slowest query counts. A
    query that has committed nothing yet starts from the earliest offset."""
    out = {}
    for topic in topics:
        if topic not in latest:
            continue
        committed = [r["end_offsets"][topic] for r in progress.values() if topic in (r.get("end_offsets") or {})]
        if not committed:
            committed = [{str(p): o for p, o in earliest.get(topic, {}).items()}]
        out[topic] = max(sum(max(end - int(c.get(str(p), earliest.get(topic, {}).get(p, 0))), 0)
                             for p, end in latest[topic].items()) for c in committed)
    return out


def _gauge(registry: CollectorRegistry, name: str, doc: str, labels: list[str]) -> Gauge:
    return Gauge(name, doc, labels, registry=registry)


def _master_gauges(r: CollectorRegistry, master: dict) -> None:
    """The cluster as the master reports it, and the cores the supervised applications need."""
    _gauge(r, "orchestrator_spark_alive_workers", "ALIVE workers reported by the Spark master", []).set(
        master.get("alive_workers") or 0)
    cores = _gauge(r, "orchestrator_spark_cores", "cores of the ALIVE workers, all and used (Spark master), and "
                   "those the supervised applications need at once (SPARK_CORES_MAX each)", ["kind"])
    for kind, key in (("total", "cores"), ("used", "cores_used"), ("needed", "cores_needed")):
        if master.get(key) is not None:
            cores.labels(kind).set(master[key])
    _gauge(r, "orchestrator_spark_apps_waiting",
           "Spark applications given no executor yet: the free cores do not cover them", []).set(
        len(master.get("apps_waiting") or []))


def render_metrics(status: dict, tracker: ProgressTracker | None = None) -> bytes:
    """Prometheus text from one status snapshot, plus the tracker's histogram."""
    r = CollectorRegistry()
    up = _gauge(r, "orchestrator_healthy", "1 when no job is FATAL and the Spark master answers", [])
    state = _gauge(r, "orchestrator_job_state", "1 for the job's current state", ["job", "state"])
    starts = Counter("orchestrator_job_starts", "process starts since the orchestrator started", ["job"], registry=r)
    failures = Counter("orchestrator_job_failures", "unexpected exits and failed starts", ["job"], registry=r)
    uptime = _gauge(r, "orchestrator_job_uptime_seconds", "seconds since the current process started", ["job"])
    progress = _gauge(r, "orchestrator_job_last_progress_timestamp_seconds", "last streaming progress", ["job"])
    standby = _gauge(r, "orchestrator_streaming_standby_ready",
                     "1 when the job's warm standby waits, ready to take over (standby: true)", ["job"])
    lag = _gauge(r, "orchestrator_streaming_kafka_lag_records",
                 "records on the topic not yet processed by the job (broker end offsets - committed)", ["job", "topic"])
    q = {name: _gauge(r, f"orchestrator_streaming_{name}", doc, ["job", "query"]) for name, doc in (
        ("input_rows_per_second", "rows/s arriving in the last micro-batch"),
        ("processed_rows_per_second", "rows/s processed in the last micro-batch"),
        ("batch_duration_seconds", "duration of the last micro-batch"),
        ("watermark_delay_seconds", "now minus the query's event-time watermark"),
        ("state_rows", "rows held in the query's state stores"))}
    intervals = _gauge(r, "orchestrator_batch_intervals", "batch intervals in the ledger by status", ["job", "status"])
    last_ok = _gauge(r, "orchestrator_batch_last_success_timestamp_seconds",
                     "when the job's last successful interval finished", ["job"])
    last_took = _gauge(r, "orchestrator_batch_last_duration_seconds", "duration of the job's last finished interval",
                       ["job"])
    up.set(1 if status["healthy"] else 0)
    _master_gauges(r, status["spark_master"])
    for name, job in status["jobs"].items():
        state.labels(name, job["state"]).set(1)
        if job["kind"] == "batch":
            for s, n in job["intervals"].items():
                intervals.labels(name, s).set(n)
            if job.get("last_success_at") is not None:
                last_ok.labels(name).set(job["last_success_at"])
            if (job.get("last_run") or {}).get("duration_s") is not None:
                last_took.labels(name).set(job["last_run"]["duration_s"])
            continue
        starts.labels(name).inc(job["starts"])
        failures.labels(name).inc(job["failures"])
        uptime.labels(name).set(job.get("uptime_seconds") or 0)
        if "standby" in job:
            standby.labels(name).set(1 if job["standby"] == "ready" else 0)
        if job.get("last_progress"):
            progress.labels(name).set(job["last_progress"])
        for topic, n in (job.get("lag") or {}).items():
            lag.labels(name, topic).set(n)
        for query, info in (job.get("queries") or {}).items():
            for metric, key in (("input_rows_per_second", "input_rows_per_second"),
                                ("processed_rows_per_second", "processed_rows_per_second"),
                                ("batch_duration_seconds", "batch_duration_s"),
                                ("watermark_delay_seconds", "watermark_delay_s"), ("state_rows", "state_rows")):
                if info.get(key) is not None:
                    q[metric].labels(name, query).set(info[key])
    text = generate_latest(r)
    return text + (generate_latest(tracker.registry) if tracker else b"")


def query_summary(progress: dict[str, dict], now: float,
                  parse_watermark: Callable[[str | None], object]) -> dict[str, dict]:
    """Per query of a job: the figures of its last micro-batch, for /status and /metrics."""
    out = {}
    for query, rec in progress.items():
        wm = parse_watermark(rec.get("watermark"))
        out[query] = {
            "batch_id": rec.get("batch_id"), "input_rows_per_second": rec.get("input_rows_per_second"),
            "processed_rows_per_second": rec.get("processed_rows_per_second"),
            "batch_duration_s": None if rec.get("batch_duration_ms") is None else rec["batch_duration_ms"] / 1000.0,
            "watermark": rec.get("watermark"),
            "watermark_delay_s": None if wm is None else round(now - wm.timestamp(), 1),
            "state_rows": rec.get("state_rows"), "idle": rec.get("idle"), "logged_at": rec.get("logged_at"),
        }
    return out
