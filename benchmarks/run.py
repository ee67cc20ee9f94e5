"""Usage: python -m benchmarks.run [--events N] [--batch-events M] [--only a,b]

Benchmarks on the local stack (started if needed); figures are printed and appended, with the
machine and the git revision, to BENCHMARKS.md (raw numbers in benchmarks/results/latest.json).

  generator   events/s produced by tools.generate_events into the local broker
  streaming   N synthetic records preloaded to each of app_events, clickstream and cdc_changes;
              per topic the ceiling (read + the same parsing and validation + count) next to
              the jobs reading it (event_aggregation, data_enrichment, clickstream_analysis,
              cdc_transformation) in --available-now mode on the 2-worker cluster; start-up to
              the first micro-batch; peak RSS
  parsing     each step of the JSON path (parse, validation, extraction) over cached records
  stages      each streaming job again with Spark's event log and the executors under Java Flight
              Recorder: executor time per query and stage, and per component of the code
  sustained   event_aggregation in continuous mode at fixed generator rates
  sweep       event_aggregation once per tuning setting (not in the default --only: ~15 min)
  batch       M events as enriched_events Parquet; each batch job's computation vs DuckDB doing
              the same on the same files; session start-up separately
  backfill    an hourly backfill of 24 hours as one ranged run against 24 single-hour runs
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import psutil
from pyspark.sql import functions as F

from configs.spark_config import PROJECT_ROOT, TOPICS, duration_seconds, load_settings
from tools import stack
from utils import transformations as X

RESULTS = PROJECT_ROOT / "benchmarks" / "results"
MASTER = "spark://127.0.0.1:7077"


def machine() -> str:
    mem = psutil.virtual_memory().total / 2**30
    rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], check=False, cwd=PROJECT_ROOT, capture_output=True,
                         text=True).stdout.strip()
    return (f"{platform.node()} · {os.cpu_count()} cores · {mem:.0f} GiB · {platform.platform()} · "
            f"Python {platform.python_version()} · git {rev or 'uncommitted'}")


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


def bench_generator(n: int) -> dict:
    """Records/s into the local broker with each client, and generation alone, in one run."""
    def generate(*args: str) -> dict:
        prefix = f"benchgen{time.time_ns()}_"
        env = {**os.environ, **{f"TOPIC_{t.upper()}": prefix + t for t in TOPICS}}
        with tempfile.TemporaryDirectory() as tmp:
            out = subprocess.run([sys.executable, "-m", "tools.generate_events", "--app-events", str(n),
                                  "--user-master-path", tmp, *args], cwd=PROJECT_ROOT, env=env,
                                 capture_output=True, text=True, check=True)
        return json.loads(out.stdout.strip().splitlines()[-1])

    runs = {"librdkafka": generate("--client", "librdkafka"),
            "librdkafka_2_processes": generate("--client", "librdkafka", "--processes", "2"),
            "kafka-python": generate("--client", "kafka-python"), "no_kafka": generate("--no-kafka"),
            "no_kafka_2_processes": generate("--no-kafka", "--processes", "2")}
    return {"records": runs["librdkafka"]["records"],
            **{f"{name}_records_per_s": r["records_per_second"] for name, r in runs.items()}}


def _job_env(root: Path, topics: dict[str, str], master: str) -> dict[str, str]:
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


def run_streaming_job(job: str, topics: dict[str, str], master: str, root: Path,
                      settings_env: dict[str, str] | None = None) -> dict:
    from utils.launch import spark_submit_command

    root.mkdir(parents=True, exist_ok=True)
    (root / "users.csv").write_text("user_id,signup_date,country,plan\nuser_000001,2025-01-01,DE,basic\n")
    cmd = spark_submit_command(PROJECT_ROOT / "jobs" / "streaming" / f"{job}.py", ["--available-now"],
                               master=master)
    started = time.monotonic()
    with PeakRss(driver=f"jobs/streaming/{job}.py", executor="CoarseGrainedExecutorBackend") as rss, \
            (root / f"{job}.out").open("w") as log:
        env = {**_job_env(root, topics, master), **(settings_env or {})}
        code = subprocess.run(cmd, check=False, cwd=PROJECT_ROOT, env=env, stdout=log,
                              stderr=subprocess.STDOUT).returncode
    wall = time.monotonic() - started
    progress = [json.loads(line) for line in (root / "logs" / f"{job}.log").read_text().splitlines()]
    batches = [p for p in progress if p.get("message") == "batch progress" and p["query_name"] == MAIN_QUERY[job]]
    rows = sum(p["input_rows"] for p in batches)
    busy = sum(p["batch_duration_ms"] for p in batches) / 1000
    first_done = min(_logged_at(p) for p in batches)
    start_log = next(p for p in progress if p.get("message") == "starting")
    durations = sorted(p["batch_duration_ms"] for p in batches if p["input_rows"])
    return {"exit_code": code, "rows": rows, "wall_s": round(wall, 1), "batches": len(batches),
            "rows_per_s_wall": round(rows / wall), "rows_per_s_in_batches": round(rows / busy) if busy else None,
            "driver_start_to_first_batch_s": round((first_done - _logged_at(start_log)).total_seconds(), 1),
            "batch_ms_p50": durations[len(durations) // 2] if durations else None,
            "batch_ms_max": durations[-1] if durations else None, "peak_rss_mib": rss.mib()}


def _ceiling_json(spec: X.RecordSpec):
    """The valid rows of a JSON topic after the jobs' parsing and validation. Typed extraction is
    left out: a count does not need its columns, so the optimizer would drop it anyway."""
    def ceiling(raw):
        valid, _quarantine = X.parse_kafka_value_json(raw, spec)
        return valid
    return ceiling


def _ceiling_cdc_changes(raw):
    checked = raw.transform(X.validate_debezium)
    return checked.filter(~F.col("_tombstone") & F.col("_error").isNull())


def _preload(spark, records, topic: str, settings) -> float:
    """Write (key, value) records to a Kafka topic in large lz4 batches; seconds taken."""
    t = time.monotonic()
    (records.write.format("kafka").options(**settings.kafka_options()).option("topic", topic)
     .option("kafka.linger.ms", "50").option("kafka.batch.size", "1048576")
     .option("kafka.compression.type", "lz4").save())
    return round(time.monotonic() - t, 1)


def _synthetic(topic: str):
    from benchmarks import synthetic as S

    return {"app_events": lambda spark, n: S.as_kafka_records(S.app_events(spark, n)),
            "clickstream": S.clicks, "cdc_changes": S.cdc_changes}[topic]


# Per topic: the ceiling (read + the jobs' parsing and validation + count) and the jobs
# that read it.
STREAMING = {"app_events": (_ceiling_json(X.APP_EVENTS_SPEC),
                            ("event_aggregation", "data_enrichment")),
             "clickstream": (_ceiling_json(X.CLICKSTREAM_SPEC), ("clickstream_analysis",)),
             "cdc_changes": (_ceiling_cdc_changes, ("cdc_transformation",))}


def _bench_topics(settings, n: int, topics: list[str], spark=None) -> tuple[dict[str, str], dict[str, float]]:
    """Topic names with n synthetic records in each of `topics` (kept between runs), and the
    seconds each empty one took to fill (with `spark`, or a session of its own when one is
    needed). Every job gets all four topics (data_enrichment also lands external data: it must
    exist, even empty)."""
    names = {t: f"bench_{t}_{n}" for t in TOPICS}
    stack.ensure_topics(settings.kafka_bootstrap_servers, settings.kafka_topic_partitions,
                        names=list(names.values()))
    held = {t: _records_in(settings.kafka_bootstrap_servers, names[t]) for t in topics}
    wrong = [f"{names[t]} holds {h:,}" for t, h in held.items() if h not in (0, n)]
    if wrong:
        raise SystemExit(f"not {n:,} records (an interrupted preload?): {', '.join(wrong)}; delete and run again")
    # A run over other topics leaves a topic created but empty: fill it now.
    empty = [t for t, h in held.items() if h == 0]
    if not empty:
        return names, {}
    from utils.spark_utils import create_spark_session

    session = spark or create_spark_session("bench-preload", settings, master=MASTER)
    try:
        return names, {t: _preload(session, _synthetic(t)(session, n), names[t], settings) for t in empty}
    finally:
        if spark is None:
            session.stop()


def _records_in(bootstrap: str, topic: str) -> int:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        return sum(consumer.end_offsets(parts).values()) - sum(consumer.beginning_offsets(parts).values())
    finally:
        consumer.close()


def bench_streaming(n: int, topics: list[str]) -> dict:
    from utils.spark_utils import create_spark_session, read_kafka_batch

    settings = load_settings()
    spark = create_spark_session("bench-streaming", settings, master=MASTER)
    names, preloaded = _bench_topics(settings, n, topics, spark)
    out: dict = {"events": n, "topic_partitions": settings.kafka_topic_partitions, "topics": {}}
    for topic in topics:
        ceiling, _jobs = STREAMING[topic]
        res: dict = {"preload_s": preloaded[topic]} if topic in preloaded else {}
        t = time.monotonic()
        count = ceiling(read_kafka_batch(spark, names[topic], settings)).count()
        seconds = time.monotonic() - t
        res["ceiling"] = {"rows": count, "seconds": round(seconds, 1), "rows_per_s": round(count / seconds)}
        out["topics"][topic] = res
    spark.stop()
    with tempfile.TemporaryDirectory(prefix="bench-stream-") as tmp:
        for topic in topics:
            res = out["topics"][topic]
            for job in STREAMING[topic][1]:
                r = run_streaming_job(job, names, MASTER, Path(tmp) / job)
                # Both sides without session start-up: the ceiling is timed after its session started.
                r["ratio_to_ceiling"] = round(r["rows_per_s_in_batches"] / res["ceiling"]["rows_per_s"], 2)
                res[job] = r
    return out


def bench_stages(n: int, topics: list[str]) -> dict:
    """Each job of `topics` once more over n records, with Spark's event log on and the executors
    recording with Java Flight Recorder: executor time per query and stage (benchmarks/stages.py)
    and on what code it went (benchmarks/jfr.py), to show where a job's time goes."""
    from benchmarks import jfr
    from benchmarks.stages import stage_times

    settings = load_settings()
    names, _ = _bench_topics(settings, n, topics)
    out: dict = {"events": n, "jobs": {}}
    with tempfile.TemporaryDirectory(prefix="bench-stages-") as tmp:
        for job in [j for t in topics for j in STREAMING[t][1]]:
            events, recordings = Path(tmp) / job / "events", Path(tmp) / job / "jfr"
            events.mkdir(parents=True)
            recordings.mkdir()
            conf = {**settings.spark_extra_conf, "spark.eventLog.enabled": "true",
                    "spark.eventLog.dir": events.as_uri(), "spark.eventLog.compress": "false",
                    "spark.eventLog.rolling.enabled": "false",
                    # A folder as the file name: each executor JVM writes a recording of its own there.
                    "spark.executor.extraJavaOptions":
                        f"-XX:StartFlightRecording=settings=profile,dumponexit=true,filename={recordings}/"}
            r = run_streaming_job(job, names, MASTER, Path(tmp) / job,
                                  settings_env={"SPARK_EXTRA_CONF": json.dumps(conf)})
            (log,) = events.iterdir()
            components, running, gc = jfr.profile(sorted(recordings.glob("*.jfr")))
            out["jobs"][job] = {"exit_code": r["exit_code"], "rows": r["rows"], "wall_s": r["wall_s"],
                                "stages": stage_times(log), "components": dict(components.most_common()),
                                "gc_pause_s": round(gc, 1), "running_methods": running.most_common(12)}
    return out


HDFS_STATE_STORE = "org.apache.spark.sql.execution.streaming.state.HDFSBackedStateStoreProvider"

# One setting changed per run against the defaults: id -> (what, the operator's environment).
SWEEP = {
    "defaults": ("defaults", {}),
    "shuffle4": ("SPARK_SHUFFLE_PARTITIONS=4", {"SPARK_SHUFFLE_PARTITIONS": "4"}),
    "kafka4": ("4 Kafka partitions", {"KAFKA_TOPIC_PARTITIONS": "4"}),
    "offsets50k": ("KAFKA_MAX_OFFSETS_PER_TRIGGER=50000", {"KAFKA_MAX_OFFSETS_PER_TRIGGER": "50000"}),
    "cores1x2": ("two 1-core executors (SPARK_EXECUTOR_CORES=1)", {"SPARK_EXECUTOR_CORES": "1"}),
    "memory2g": ("SPARK_EXECUTOR_MEMORY=2g", {"SPARK_EXECUTOR_MEMORY": "2g"}),
    "hdfs_state": ("HDFS-backed state store instead of RocksDB", {"SPARK_EXTRA_CONF": json.dumps(
        {"spark.sql.streaming.stateStore.providerClass": HDFS_STATE_STORE})}),
    "objagg_hash": ("collect_set aggregation hashes up to 1,000,000 keys before sorting", {
        "SPARK_EXTRA_CONF": json.dumps({"spark.sql.objectHashAggregate.sortBased.fallbackThreshold": "1000000"})}),
}


def bench_sweep(n: int, settings_ids: list[str], rounds: int) -> dict:
    """event_aggregation --available-now over the same n app events once per setting and round,
    settings in turn within each round, all in one run: which default is worth changing here."""
    from benchmarks.synthetic import app_events, as_kafka_records
    from utils.spark_utils import create_spark_session

    settings = load_settings()
    ids = ["defaults", *[i for i in settings_ids if i != "defaults"]]

    def partitions(sid: str) -> int:
        return int(SWEEP[sid][1].get("KAFKA_TOPIC_PARTITIONS", settings.kafka_topic_partitions))

    spark = create_spark_session("bench-sweep-load", settings, master=MASTER)
    topics = {}
    for count in sorted({partitions(i) for i in ids}):
        topics[count] = f"bench_sweep_app_events_{n}_{count}p"
        if stack.ensure_topics(settings.kafka_bootstrap_servers, count, names=[topics[count]]):
            _preload(spark, as_kafka_records(app_events(spark, n)), topics[count], settings)
    spark.stop()
    runs = []
    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as tmp:
        for round_ in range(1, rounds + 1):
            for sid in ids:
                r = run_streaming_job("event_aggregation", {"app_events": topics[partitions(sid)]}, MASTER,
                                      Path(tmp) / f"{sid}-{round_}", settings_env=SWEEP[sid][1])
                runs.append({"setting": SWEEP[sid][0], "round": round_, **r})
    defaults = [r["rows_per_s_in_batches"] for r in runs if r["setting"] == "defaults"]
    for r in runs:
        r["vs_defaults"] = round(r["rows_per_s_in_batches"] / (sum(defaults) / len(defaults)), 2)
    return {"events": n, "runs": runs}


def bench_parsing(n: int) -> dict:
    """Where the CPU of the JSON path goes: each step over the same n cached app-event records in
    local[2] (no Kafka, no cluster, noop sink, best of two runs)."""
    from benchmarks.synthetic import app_events, as_kafka_records
    from utils.spark_utils import create_spark_session
    from utils.transforms.records import APP_EVENTS

    spark = create_spark_session("bench-parsing", load_settings(), master="local[2]")
    try:
        raw = (as_kafka_records(app_events(spark, n, partitions=2))
               .select(F.lit("app_events").alias("topic"), F.lit(0).alias("partition"),
                       F.monotonically_increasing_id().alias("offset"), F.current_timestamp().alias("timestamp"),
                       F.col("value").cast("binary").alias("value")).cache())
        raw.count()
        text = F.col("value").cast("string")
        parsed = raw.withColumn("_json", F.try_parse_json(text))
        checked = raw.transform(X.with_json_validation, X.APP_EVENTS_SPEC)
        steps = {
            "bytes to string": raw.select(text),
            "parse to VARIANT": parsed.select("_json"),
            "parse + type of the whole value (schema_of_variant, no longer on the valid path)":
                parsed.select(F.schema_of_variant("_json")),
            "parse + field look-ups + extraction, no checks":
                parsed.withColumns(X.field_lookups(F.col("_json"), X.APP_EVENTS_SPEC.required))
                .transform(X.extract_app_events),
            "parse + validation + quarantine rows (the quarantine query)": X.to_quarantine(checked),
            "parse + validation + extraction (the jobs' path)":
                checked.transform(X.filter_valid_records).transform(X.extract_app_events),
            "from_json with the contract schema, no per-field reasons (lower bound)":
                raw.select(F.from_json(text, APP_EVENTS.ddl()).alias("j")).select("j.*"),
        }
        out: dict = {"records": n, "steps": {}}
        for name, df in steps.items():
            best = float("inf")
            for _ in range(2):
                t = time.monotonic()
                df.write.format("noop").mode("overwrite").save()
                best = min(best, time.monotonic() - t)
            out["steps"][name] = {"seconds": round(best, 2), "rows_per_s": round(n / best)}
    finally:
        spark.stop()
    return out


def _percentile(values: list[float], q: float) -> float | None:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] if values else None


def bench_sustained(rate: float, seconds: int) -> dict:
    """event_aggregation in continuous mode (default trigger) on the cluster while the generator
    produces `rate` records/s (all four topics) for `seconds`: does the job keep up, and how long
    are its micro-batches?"""
    from utils.launch import spark_submit_command

    settings = load_settings()
    prefix = f"benchrate{int(rate)}_{time.time_ns() % 10**6}_"
    root = Path(tempfile.mkdtemp(prefix="bench-rate-"))
    env = _job_env(root, {t: prefix + t for t in TOPICS}, MASTER)
    stack.ensure_topics(settings.kafka_bootstrap_servers, settings.kafka_topic_partitions,
                        names=[prefix + t for t in TOPICS])
    (root / "users.csv").write_text("user_id,signup_date,country,plan\n")
    log_file = root / "logs" / "event_aggregation.log"

    def batches() -> list[dict]:
        lines = log_file.read_text().splitlines() if log_file.exists() else []
        return [r for r in map(json.loads, lines) if r.get("message") == "batch progress"
                and r["query_name"] == "events_aggregated_realtime"]

    cmd = spark_submit_command(PROJECT_ROOT / "jobs" / "streaming" / "event_aggregation.py", [], master=MASTER)
    with PeakRss(driver="jobs/streaming/event_aggregation.py", executor="CoarseGrainedExecutorBackend") as rss, \
            (root / "job.out").open("w") as out:
        job = subprocess.Popen(cmd, cwd=PROJECT_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                               start_new_session=True)
        try:
            deadline = time.monotonic() + 300
            while not batches() and time.monotonic() < deadline and job.poll() is None:
                time.sleep(2)
            # ~1.72 records per app event (clicks, CDC and external data come with them)
            app_events = int(rate * seconds / 1.72)
            gen_start = time.time()
            gen = subprocess.run([sys.executable, "-m", "tools.generate_events", "--app-events", str(app_events),
                                  "--rate", str(rate), "--start", "2026-11-20T00:00:00Z",
                                  "--user-master-path", str(root / "users")],
                                 cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, check=True)
            gen_end = time.time()
            produced = json.loads(gen.stdout.strip().splitlines()[-1])
            wanted = produced["counts"]["app_events:valid"] + produced["counts"].get("app_events:duplicate", 0)
            deadline = time.monotonic() + 600
            while sum(b["input_rows"] for b in batches()) < wanted and time.monotonic() < deadline:
                time.sleep(1)
            drained = time.time()
        finally:
            os.killpg(job.pid, signal.SIGTERM)
            job.wait(timeout=120)
    during = [b for b in batches() if gen_start <= _logged_at(b).timestamp() <= gen_end and b["input_rows"]]
    durations = [b["batch_duration_ms"] for b in during]
    in_window = sum(b["input_rows"] for b in during)
    # Small files: what continuous mode leaves in a date partition per hour of running.
    files = list((root / "outputs" / "events_aggregated_realtime").glob("event_date=*/*.parquet"))
    hours = (drained - gen_start) / 3600
    shutil.rmtree(root, ignore_errors=True)
    return {
        "target_records_per_s": rate, "seconds": round(gen_end - gen_start, 1),
        "generator_records_per_s": produced["records_per_second"],
        "app_events_per_s": round(wanted / (gen_end - gen_start)),
        "processed_app_events_per_s": round(in_window / (gen_end - gen_start)),
        "drained_s_after_generator": round(drained - gen_end, 1),
        "kept_up": drained - gen_end <= 2 * duration_seconds(settings.trigger_interval),
        "trigger_s": duration_seconds(settings.trigger_interval), "batches": len(during),
        "batch_ms_p50": _percentile(durations, 0.5), "batch_ms_p95": _percentile(durations, 0.95),
        "peak_rss_mib": rss.mib(),
        "files_per_date_partition_per_hour": round(len(files) / hours / max(1, len({f.parent for f in files}))),
    }


def _logged_at(record: dict) -> datetime:
    """When a JSON log record was written (ISO 8601, UTC)."""
    return datetime.fromisoformat(record["asctime"])


def bench_startup() -> dict:
    """spark-submit to the first completed micro-batch: cluster vs local, on a small topic."""
    from benchmarks.synthetic import app_events, as_kafka_records
    from utils.spark_utils import create_spark_session

    settings = load_settings()
    topic = "bench_startup_app_events"
    spark = create_spark_session("bench-startup-load", settings, master="local[2]")
    _preload(spark, as_kafka_records(app_events(spark, 20_000, partitions=2)), topic, settings)
    spark.stop()
    out = {}
    with tempfile.TemporaryDirectory(prefix="bench-start-") as tmp:
        for name, master in (("cluster", MASTER), ("local", "local[2]")):
            started = time.monotonic()
            res = run_streaming_job("event_aggregation", {"app_events": topic}, master, Path(tmp) / name)
            out[name] = {"submit_to_exit_s": round(time.monotonic() - started, 1),
                         "driver_start_to_first_batch_s": res["driver_start_to_first_batch_s"]}
    return out


# Deduplicated like the Spark jobs: the date/hour filter first, then one row per event_id.
BATCH_SQL = {
    "hourly_aggregate": """
        WITH e AS (SELECT DISTINCT ON (event_id) * FROM events
                   WHERE event_date = DATE '{day}' AND hour(event_timestamp) = 12)
        SELECT date_trunc('hour', event_timestamp) AS hour_start, event_type, app_type,
               count(*) AS event_count, count(DISTINCT user_id) AS unique_users,
               count(DISTINCT session_id) AS unique_sessions, sum(coalesce(revenue, 0)) AS revenue
        FROM e GROUP BY ALL""",
    "daily_summary": """
        WITH e AS (SELECT DISTINCT ON (event_id) * FROM events WHERE event_date = DATE '{day}'),
        per_user AS (SELECT k, user_id, count(*) AS n FROM e, unnest([app_type, 'all']) AS t(k) GROUP BY ALL),
        ek AS (SELECT k, sum(n) AS total_events, count(*) AS active_users,
                      quantile_cont(n, [0.5, 0.95]) AS epu FROM per_user GROUP BY k),
        s AS (SELECT k, count(*) AS total_sessions, avg(duration_seconds) AS avg_d,
                     quantile_cont(duration_seconds, [0.5, 0.95]) AS d, quantile_cont(click_count, [0.5, 0.95]) AS c
              FROM sessions, unnest([app_type, 'all']) AS t(k) WHERE session_date = DATE '{day}' GROUP BY k)
        SELECT * FROM ek FULL JOIN s USING (k)""",
    "user_segmentation": """
        WITH e AS (SELECT DISTINCT ON (event_id) * FROM events),
        a AS (SELECT user_id, count(*) AS total_events, count(DISTINCT event_date) AS active_days,
                     count(DISTINCT session_id) AS total_sessions, sum((event_type = 'purchase')::int) AS purchases,
                     sum(CASE WHEN event_type = 'purchase' THEN coalesce(revenue, 0) END) AS revenue,
                     max(event_timestamp) AS last_seen, mode(app_type) AS preferred_app_type,
                     mode(device_type) AS preferred_device
              FROM e GROUP BY user_id),
        d AS (SELECT user_id, avg(duration_seconds) AS avg_session_duration_s FROM sessions GROUP BY user_id)
        SELECT * FROM a LEFT JOIN d USING (user_id)""",
}


SCANNED = ["event_id", "user_id", "session_id", "app_type", "device_type", "event_type", "revenue",
           "event_timestamp"]


def bench_batch(n: int) -> dict:
    import duckdb

    from benchmarks.synthetic import app_events, as_enriched, sessions_from_events
    from utils import kpis
    from utils.spark_utils import create_spark_session

    settings = load_settings()
    t = time.monotonic()
    spark = create_spark_session("bench-batch", settings, master=MASTER)
    session_start = time.monotonic() - t
    data = Path(tempfile.mkdtemp(prefix="bench-batch-"))
    out: dict = {"events": n, "session_start_s": round(session_start, 1)}
    try:
        events = app_events(spark, n, start="2026-11-20 00:00:00", span_seconds=3 * 86_400)
        t = time.monotonic()
        as_enriched(events).write.partitionBy("event_date").parquet(str(data / "enriched_events"))
        enriched = spark.read.parquet(str(data / "enriched_events"))
        sessions_from_events(enriched).write.partitionBy("session_date").parquet(str(data / "sessions"))
        out["write_inputs_s"] = round(time.monotonic() - t, 1)
        sessions = spark.read.parquet(str(data / "sessions"))
        day = date(2026, 11, 21)
        runs = {
            "hourly_aggregate": lambda: kpis.hourly_aggregates(kpis.events_in_hour(
                enriched.filter(enriched.event_date == day), datetime(2026, 11, 21, 12, tzinfo=UTC))),
            "daily_summary": lambda: kpis.daily_summary(enriched.filter(enriched.event_date == day),
                                                        sessions.filter(sessions.session_date == day),
                                                        summary_date=day),
            "user_segmentation": lambda: kpis.user_segments(enriched, sessions, as_of_date=date(2026, 11, 22),
                                                            lookback_days=3, rules=kpis.load_segmentation_rules()),
        }
        con = duckdb.connect()
        con.execute(f"CREATE VIEW events AS SELECT * FROM read_parquet('{data}/enriched_events/*/*.parquet', "
                    "hive_partitioning = true)")
        con.execute(f"CREATE VIEW sessions AS SELECT * FROM read_parquet('{data}/sessions/*/*.parquet', "
                    "hive_partitioning = true)")
        # The floor under every Spark figure: reading the columns the jobs use, nothing else.
        t = time.monotonic()
        enriched.select(*SCANNED).write.format("noop").mode("overwrite").save()
        out["spark_scan_s"] = round(time.monotonic() - t, 2)
        for name, build in runs.items():
            target = data / "out" / name
            t = time.monotonic()
            build().write.mode("overwrite").parquet(str(target))
            spark_s = time.monotonic() - t
            t = time.monotonic()
            con.execute(f"COPY ({BATCH_SQL[name].format(day=day)}) TO '{data}/duck_{name}.parquet' (FORMAT parquet)")
            duck_s = time.monotonic() - t
            spark_rows = spark.read.parquet(str(target)).count()
            duck_rows = con.execute(f"SELECT count(*) FROM '{data}/duck_{name}.parquet'").fetchone()[0]
            out[name] = {"spark_s": round(spark_s, 2), "duckdb_s": round(duck_s, 2),
                         "ratio": round(spark_s / duck_s, 1), "rows": spark_rows, "rows_match": spark_rows == duck_rows}
    finally:
        spark.stop()
        shutil.rmtree(data, ignore_errors=True)
    return out


def bench_backfill(hours: int, events: int) -> dict:
    """An hourly backfill of `hours` hours: one ranged run (one Spark application) against one
    run per hour (today's scheduling before ranges), on the same enriched_events, in one run; the
    two outputs must be identical."""
    import pandas as pd

    from benchmarks.synthetic import app_events, as_enriched
    from utils.launch import spark_submit_command, spark_submit_env
    from utils.spark_utils import create_spark_session

    settings = load_settings()
    root = Path(tempfile.mkdtemp(prefix="bench-backfill-"))
    first = datetime(2026, 11, 20, tzinfo=UTC)
    try:
        spark = create_spark_session("bench-backfill-load", settings, master=MASTER)
        (as_enriched(app_events(spark, events, start="2026-11-20 00:00:00", span_seconds=hours * 3600))
         .write.partitionBy("event_date").parquet(str(root / "enriched_events")))
        spark.stop()

        def run(name: str, *args: str) -> None:
            out = root / name
            (out / "outputs").mkdir(parents=True, exist_ok=True)
            link = out / "outputs" / "enriched_events"
            if not link.exists():
                link.symlink_to(root / "enriched_events")
            env = spark_submit_env({**os.environ, "OUTPUT_ROOT": str(out / "outputs"),
                                    "STATE_ROOT": str(out / "state"), "LOG_DIR": str(out / "logs"),
                                    "SPARK_EVENT_LOG_ENABLED": "false"})
            cmd = spark_submit_command(PROJECT_ROOT / "jobs" / "batch" / "hourly_aggregate.py", [*args, "--force"],
                                       master=MASTER, streaming=False)
            subprocess.run(cmd, check=True, cwd=PROJECT_ROOT, env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)

        label = "%Y-%m-%d %H:00:00"
        t = time.monotonic()
        last = first + timedelta(hours=hours - 1)
        run("range", "--from-hour", first.strftime(label), "--to-hour", last.strftime(label))
        range_s = time.monotonic() - t
        t = time.monotonic()
        for h in range(hours):
            run("single", "--target-hour", (first + timedelta(hours=h)).strftime(label))
        singles_s = time.monotonic() - t

        def read(name: str) -> pd.DataFrame:
            df = pd.read_parquet(root / name / "outputs" / "hourly_aggregates")
            return df.sort_values(["hour_start", "event_type", "app_type"]).reset_index(drop=True)

        same = read("range").astype(str).equals(read("single").astype(str))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return {"hours": hours, "events": events, "range_s": round(range_s, 1), "singles_s": round(singles_s, 1),
            "speedup": round(singles_s / range_s, 1), "outputs_identical": same}


def _md_backfill(b: dict) -> list[str]:
    return [f"\n- **Hourly backfill** of {b['hours']} hours ({b['events']:,} events as enriched_events Parquet), "
            "spark-submit on the 2-worker cluster, `--force` (no streaming watermarks here):\n",
            "| how | wall s |\n|---|---|",
            f"| one ranged run (`--from-hour … --to-hour …`, one application) | {b['range_s']} |",
            f"| one run per hour ({b['hours']} applications, as before ranges) | {b['singles_s']} |",
            f"\nThe range took 1/{b['speedup']} of the time; outputs identical: "
            f"{'yes' if b['outputs_identical'] else 'NO'}."]


def _rss(run: dict) -> str:
    return f"{run['peak_rss_mib']['driver']} / {run['peak_rss_mib']['executor']}"


def _md_generator(g: dict) -> list[str]:
    lines: list[str] = []
    lines.append(f"- **Generator** ({g['records']:,} records, acks=all, idempotent, snappy), records/s "
                 f"into the local broker: librdkafka {g['librdkafka_records_per_s']:,.0f} (1 process), "
                 f"{g['librdkafka_2_processes_records_per_s']:,.0f} (2 processes); kafka-python "
                 f"{g['kafka-python_records_per_s']:,.0f}; generation alone (no Kafka) "
                 f"{g['no_kafka_records_per_s']:,.0f} (1 process), {g['no_kafka_2_processes_records_per_s']:,.0f} "
                 "(2 processes).")
    return lines


def _md_streaming(s: dict) -> list[str]:
    lines: list[str] = []
    lines.append(f"- **Streaming**, {s['events']:,} synthetic records per topic on "
                 f"{s['topic_partitions']}-partition topics, 2-worker cluster, `--available-now`; each job "
                 "against the ceiling of its topic:")
    lines.append("\n| topic | query | rows | wall s | rows/s (wall) | rows/s (in batches) | "
                 "ratio to ceiling (in batches) | batches | batch p50 / max ms | start→first batch s | "
                 "peak RSS driver / executor MiB |")
    lines.append("|---|---|---|---|---|---|---|---|---|---|---|")
    for topic, res in s["topics"].items():
        c = res["ceiling"]
        lines.append(f"| {topic} | ceiling: read + same parsing and validation + count | {c['rows']:,} | "
                     f"{c['seconds']} | {c['rows_per_s']:,} | | 1.00 | | | | |")
        for job in STREAMING[topic][1]:
            if job not in res:
                continue
            r = res[job]
            failed = f" (exit {r['exit_code']})" if r["exit_code"] else ""
            lines.append(f"| {topic} | {job}{failed} | {r['rows']:,} | {r['wall_s']} | {r['rows_per_s_wall']:,} | "
                         f"{r['rows_per_s_in_batches']:,} | {r['ratio_to_ceiling']} | {r['batches']} | "
                         f"{r['batch_ms_p50']} / {r['batch_ms_max']} | "
                         f"{r['driver_start_to_first_batch_s']} | {_rss(r)} |")
    return lines


def _md_sustained(runs: list) -> list[str]:
    lines: list[str] = []
    lines.append("\n- **Sustained rate**, event_aggregation in continuous mode on the cluster while the "
                 "generator produces at a fixed rate (all four topics; the job reads app_events):\n")
    lines.append("| target records/s | generator records/s | app events/s in | processed app events/s | "
                 "drained after generator stop s | kept up | batches | batch p50 / p95 ms (trigger s) | "
                 "peak RSS driver / executor MiB | Parquet files per date partition per hour |")
    lines.append("|---|---|---|---|---|---|---|---|---|---|")
    for r in runs:
        lines.append(f"| {r['target_records_per_s']:,.0f} | {r['generator_records_per_s']:,.0f} | "
                     f"{r['app_events_per_s']:,} | {r['processed_app_events_per_s']:,} | "
                     f"{r['drained_s_after_generator']} | {'yes' if r['kept_up'] else 'no'} | {r['batches']} | "
                     f"{r['batch_ms_p50']} / {r['batch_ms_p95']} ({r['trigger_s']:.0f}) | "
                     f"{_rss(r)} | {r.get('files_per_date_partition_per_hour', '')} |")
    return lines


def _md_stages(st: dict) -> list[str]:
    lines = [f"\n- **Where the time goes**, each job once more over {st['events']:,} records with Spark's "
             "event log on and the executors under Java Flight Recorder; task times summed per query and "
             "per stage of its micro-batches (1/3: the first of three stages, which reads the topic; later "
             "stages read the shuffle before them):\n",
             "| job | query | stage | tasks | executor run s | share of the job | CPU s | shuffle records "
             "read / written | executor µs per record |", "|---|---|---|---|---|---|---|---|---|"]
    profiles: list[str] = []
    for job, r in st["jobs"].items():
        failed = f" (exit {r['exit_code']})" if r["exit_code"] else ""
        for s in r["stages"]:
            per_record = f"{s['run_s'] * 1e6 / r['rows']:.1f}" if r["rows"] else "(no rows read)"
            lines.append(f"| {job}{failed} | {s['query']} | {s['stage']} | {s['tasks']} | {s['run_s']} | "
                         f"{s['share']:.0%} | {s['cpu_s']} | {s['shuffle_read_records']:,} / "
                         f"{s['shuffle_write_records']:,} | {per_record} |")
        total = sum(r.get("components", {}).values())
        if total:
            profiles.append(
                f"\n{job} ({r['wall_s']} s wall, executor GC pauses {r.get('gc_pause_s')} s), {total:,} samples "
                "of its task threads (benchmarks/jfr.py), by component: "
                + ", ".join(f"{name} {n / total:.1%}" for name, n in r["components"].items())
                + "; most often running: " + ", ".join(f"`{m}` {n / total:.1%}" for m, n in r["running_methods"][:8]))
    return lines + profiles


def _md_parsing(p: dict) -> list[str]:
    lines: list[str] = []
    lines.append(f"\n- **JSON path**, {p['records']:,} cached app-event records, local[2], noop sink, "
                 "best of two:\n")
    lines.append("| step | s | records/s |\n|---|---|---|")
    for name, r in p["steps"].items():
        lines.append(f"| {name} | {r['seconds']} | {r['rows_per_s']:,} |")
    return lines


def _md_sweep(w: dict) -> list[str]:
    lines: list[str] = []
    lines.append(f"\n- **Tuning sweep**, event_aggregation `--available-now` over {w['events']:,} app events, "
                 "one setting changed per run, settings in turn within each round (vs defaults: against "
                 "the mean of the defaults' runs):\n")
    lines.append("| setting | round | rows/s (in batches) | vs defaults | wall s | batches | batch p50 / max ms | "
                 "peak RSS driver / executor MiB |\n|---|---|---|---|---|---|---|---|")
    for r in w["runs"]:
        failed = f" (exit {r['exit_code']})" if r["exit_code"] else ""
        lines.append(f"| {r['setting']}{failed} | {r['round']} | {r['rows_per_s_in_batches']:,} | {r['vs_defaults']} | "
                     f"{r['wall_s']} | {r['batches']} | {r['batch_ms_p50']} / {r['batch_ms_max']} | {_rss(r)} |")
    return lines


def _md_startup(st: dict) -> list[str]:
    lines: list[str] = []
    lines.append(f"\n- **Start-up** (spark-submit → first completed micro-batch, 20k events): cluster "
                 f"{st['cluster']['driver_start_to_first_batch_s']} s after driver start "
                 f"({st['cluster']['submit_to_exit_s']} s submit to exit); local[2] "
                 f"{st['local']['driver_start_to_first_batch_s']} s ({st['local']['submit_to_exit_s']} s).")
    return lines


def _md_batch(b: dict) -> list[str]:
    lines: list[str] = []
    lines.append(f"\n- **Batch**, {b['events']:,} events (3 days) as Parquet; Spark on the 2-worker cluster "
                 f"(session start {b['session_start_s']} s, not included) vs DuckDB on the same files:\n")
    lines.append("| job | Spark s | DuckDB s | ratio | output rows (same in both) |\n|---|---|---|---|---|")
    for name in BATCH_SQL:
        r = b[name]
        lines.append(f"| {name} | {r['spark_s']} | {r['duckdb_s']} | {r['ratio']} | {r['rows']:,} "
                     f"({'yes' if r['rows_match'] else 'NO'}) |")
    lines.append(f"\nBoth sides de-duplicate on event_id, as the jobs do. Spark reading the "
                 f"{len(SCANNED)} columns the jobs use from all {b['events']:,} rows, and nothing else, "
                 f"takes {b['spark_scan_s']} s.")
    return lines


SECTIONS = {"generator": _md_generator, "parsing": _md_parsing, "streaming": _md_streaming,
            "stages": _md_stages, "sustained": _md_sustained, "sweep": _md_sweep, "startup": _md_startup,
            "batch": _md_batch, "backfill": _md_backfill}


def to_markdown(results: dict) -> str:
    lines = [f"\n## Run of {results['when']}\n", f"Machine: {results['machine']}\n",
             f"Command: `{results['command']}`\n"]
    for name, section in SECTIONS.items():
        if name in results:
            lines += section(results[name])
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n\n")[1])
    parser.add_argument("--events", type=int, default=int(os.environ.get("BENCH_EVENTS", "5000000")))
    parser.add_argument("--batch-events", type=int, default=int(os.environ.get("BENCH_BATCH_EVENTS", "10000000")))
    parser.add_argument("--generator-events", type=int, default=100_000)
    parser.add_argument("--sustained-rates", default="5000,15000",
                        help="generator records/s for the sustained-rate runs (comma-separated)")
    parser.add_argument("--sustained-seconds", type=int, default=300)
    parser.add_argument("--streaming-topics", default=",".join(STREAMING),
                        help="topics (and so jobs) of the streaming part (comma-separated)")
    parser.add_argument("--parsing-events", type=int, default=1_000_000)
    parser.add_argument("--stages-events", type=int, default=1_000_000)
    parser.add_argument("--sweep-events", type=int, default=1_000_000)
    parser.add_argument("--sweep-settings", default=",".join(SWEEP), help=f"among {', '.join(SWEEP)}")
    parser.add_argument("--sweep-rounds", type=int, default=1)
    parser.add_argument("--backfill-hours", type=int, default=24)
    parser.add_argument("--backfill-events", type=int, default=1_000_000)
    parser.add_argument("--only", default="generator,parsing,streaming,stages,sustained,startup,batch,backfill")
    args = parser.parse_args(argv)
    stack.up()
    results: dict = {"when": datetime.now(UTC).isoformat(timespec="seconds"), "machine": machine(),
                     "command": "make bench " + " ".join(argv or sys.argv[1:])}
    wanted = args.only.split(",")
    steps = {"generator": lambda: bench_generator(args.generator_events),
             "streaming": lambda: bench_streaming(args.events, args.streaming_topics.split(",")),
             "stages": lambda: bench_stages(args.stages_events, args.streaming_topics.split(",")),
             "sustained": lambda: [bench_sustained(float(r), args.sustained_seconds)
                                   for r in args.sustained_rates.split(",")],
             "parsing": lambda: bench_parsing(args.parsing_events),
             "sweep": lambda: bench_sweep(args.sweep_events, args.sweep_settings.split(","), args.sweep_rounds),
             "startup": bench_startup,
             "batch": lambda: bench_batch(args.batch_events),
             "backfill": lambda: bench_backfill(args.backfill_hours, args.backfill_events)}
    for name, step in steps.items():
        if name in wanted:
            print(f"bench: {name} ...", flush=True)
            results[name] = step()
            print(json.dumps(results[name], indent=1), flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "latest.json").write_text(json.dumps(results, indent=2))
    bench_md = PROJECT_ROOT / "BENCHMARKS.md"
    if not bench_md.exists():
        bench_md.write_text("# Benchmarks\n\nWritten by `make bench` (benchmarks/run.py); newest run last.\n")
    with bench_md.open("a") as f:
        f.write(to_markdown(results))
    print(to_markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
