"""What the benchmarks share: the machine, peak memory, a job run under spark-submit, log times."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime
from pathlib import Path

import psutil

from configs.spark_config import PROJECT_ROOT, settings_for_env

# Records the generator writes per app event, over all four topics (clicks, CDC changes and
# external data come with the events; measured on tools.generate_events' default mix).
RECORDS_PER_APP_EVENT = 1.72


def git_revision() -> str:
    return subprocess.run(["git", "rev-parse", "--short", "HEAD"], check=False, cwd=PROJECT_ROOT,
                          capture_output=True, text=True).stdout.strip() or "uncommitted"

MASTER = "spark://127.0.0.1:7077"


def _spin(loops: int) -> float:
    began = time.perf_counter()
    total = 0
    for i in range(loops):
        total += i * i % 7
    return time.perf_counter() - began


def cpu_probe(loops: int = 5_000_000) -> float:
    """Seconds for a fixed Python loop, run on every core at once (the slowest core's time).

    The machines are shared: the same code ran 10-30% slower on some nights. Taken before and after
    each area, it tells a reader whether two runs' figures were measured on an equally fast machine
    (0.35 s on an idle 2-core vm, 2026-12-01)."""
    with ProcessPoolExecutor(os.cpu_count() or 1) as pool:
        return round(max(pool.map(_spin, [loops] * (os.cpu_count() or 1))), 2)


def machine() -> str:
    mem = psutil.virtual_memory().total / 2**30
    rev = git_revision()
    return (f"{platform.node()} · {os.cpu_count()} cores · {mem:.0f} GiB · {platform.platform()} · "
            f"Python {platform.python_version()} · git {rev}")


class PeakRss:
    """Samples the RSS of processes whose command line matches, every 0.5 s."""

    def __init__(self, **patterns: str):
        self.patterns = patterns
        self.peak = dict.fromkeys(patterns, 0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            totals = dict.fromkeys(self.patterns, 0)
            for proc in psutil.process_iter(["cmdline", "memory_info"]):
                cmd = " ".join(proc.info["cmdline"] or [])
                for name, pattern in self.patterns.items():
                    if pattern in cmd and proc.info["memory_info"]:
                        totals[name] = max(totals[name], proc.info["memory_info"].rss)
            for name, value in totals.items():
                self.peak[name] = max(self.peak[name], value)
            self._stop.wait(0.5)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self._stop.set()
        self._thread.join()

    def mib(self) -> dict[str, float]:
        return {k: round(v / 2**20) for k, v in self.peak.items()}


def job_env(root: Path, topics: dict[str, str], master: str) -> dict[str, str]:
    """The job's environment: private folders, and `topics` (contract name -> Kafka topic)."""
    from utils.launch import spark_submit_env

    return spark_submit_env({**os.environ, "OUTPUT_ROOT": str(root / "outputs"),
                             "CHECKPOINT_ROOT": str(root / "checkpoints"), "STATE_ROOT": str(root / "state"),
                             "LOG_DIR": str(root / "logs"), "SPARK_MASTER_URL": master,
                             "USER_MASTER_PATH": str(root / "users.csv"),
                             **{f"TOPIC_{name.upper()}": topic for name, topic in topics.items()}})


# The query whose progress measures each job (the others of the job run beside it).
MAIN_QUERY = {"event_aggregation": "events_aggregated_realtime", "data_enrichment": "enriched_events",
              "clickstream_analysis": "clickstream_sessions", "cdc_transformation": "cdc_transformed"}


def event_log_conf(folder: Path, settings) -> dict[str, str]:
    """The job's extra Spark settings plus Spark's event log into `folder` (created), one plain
    file per application: executor time per stage is read from it after the job exits
    (benchmarks/stages.py)."""
    folder.mkdir(parents=True)
    return {**settings.spark_extra_conf, "spark.eventLog.enabled": "true", "spark.eventLog.dir": folder.as_uri(),
            "spark.eventLog.compress": "false", "spark.eventLog.rolling.enabled": "false"}


def batches_in(log: Path, query: str) -> list[dict]:
    """The `batch progress` records of one query in a job's JSON log, oldest first ([] before any)."""
    lines = log.read_text().splitlines() if log.exists() else []
    return [r for r in map(json.loads, lines) if r.get("message") == "batch progress" and r["query_name"] == query]


def run_available_now(job: str, topics: dict[str, str], master: str, root: Path,
                      settings_env: dict[str, str] | None = None) -> dict:
    """One streaming job under spark-submit with --available-now over `topics`, in folders of its own
    under `root`: its throughput, micro-batches, start-up and peak memory from its progress log."""
    from utils.launch import spark_submit_command

    root.mkdir(parents=True, exist_ok=True)
    (root / "users.csv").write_text("user_id,signup_date,country,plan\nuser_000001,2025-01-01,DE,basic\n")
    env = {**job_env(root, topics, master), **(settings_env or {})}
    cmd = spark_submit_command(PROJECT_ROOT / "jobs" / "streaming" / f"{job}.py", ["--available-now"],
                               master=master, settings=settings_for_env(env))
    started = time.monotonic()
    with PeakRss(driver=f"jobs/streaming/{job}.py", executor="CoarseGrainedExecutorBackend") as rss, \
            (root / f"{job}.out").open("w") as log:
        code = subprocess.run(cmd, check=False, cwd=PROJECT_ROOT, env=env, stdout=log,
                              stderr=subprocess.STDOUT).returncode
    wall = time.monotonic() - started
    progress = [json.loads(line) for line in (root / "logs" / f"{job}.log").read_text().splitlines()]
    batches = [p for p in progress if p.get("message") == "batch progress" and p["query_name"] == MAIN_QUERY[job]]
    rows = sum(p["input_rows"] for p in batches)
    busy = sum(p["batch_duration_ms"] for p in batches) / 1000
    first_done = min(logged_at(p) for p in batches)
    start_log = next(p for p in progress if p.get("message") == "starting")
    durations = sorted(p["batch_duration_ms"] for p in batches if p["input_rows"])
    by_query: dict[str, float] = {}
    for p in progress:
        if p.get("message") == "batch progress":
            by_query[p["query_name"]] = by_query.get(p["query_name"], 0) + p["batch_duration_ms"] / 1000
    return {"exit_code": code, "rows": rows, "wall_s": round(wall, 1), "batches": len(batches),
            "rows_per_s_wall": round(rows / wall), "rows_per_s_in_batches": round(rows / busy) if busy else None,
            "driver_start_to_first_batch_s": round((first_done - logged_at(start_log)).total_seconds(), 1),
            "batch_ms_p50": durations[len(durations) // 2] if durations else None,
            "batch_ms_max": durations[-1] if durations else None, "peak_rss_mib": rss.mib(),
            "batch_s_by_query": {k: round(v, 1) for k, v in by_query.items()}}


def records_in(bootstrap: str, topic: str) -> int:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        return sum(consumer.end_offsets(parts).values()) - sum(consumer.beginning_offsets(parts).values())
    finally:
        consumer.close()


def preload(spark, records, topic: str, settings) -> float:
    """Write (key, value) records to a Kafka topic in large lz4 batches; seconds taken."""
    t = time.monotonic()
    (records.write.format("kafka").options(**settings.kafka_options()).option("topic", topic)
     .option("kafka.linger.ms", "50").option("kafka.batch.size", "1048576")
     .option("kafka.compression.type", "lz4").save())
    return round(time.monotonic() - t, 1)


def percentile(values: list[float], q: float) -> float | None:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] if values else None


def logged_at(record: dict) -> datetime:
    """When a JSON log record was written (ISO 8601, UTC)."""
    return datetime.fromisoformat(record["asctime"])
