"""Streaming benchmarks: the generator, each job against its topic's ceiling, where the time goes
(stages, JVM profiles), the JSON path step by step, sustained rates, a tuning sweep, start-up."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pyspark.sql import functions as F

from benchmarks.common import (
    MASTER,
    RECORDS_PER_APP_EVENT,
    PeakRss,
    batches_in,
    event_log_conf,
    job_env,
    logged_at,
    percentile,
    preload,
    records_in,
    run_available_now,
)
from configs.spark_config import PROJECT_ROOT, TOPICS, duration_seconds, load_settings
from tools import stack
from utils import transformations as X


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


def bench_topics(settings, n: int, topics: list[str], spark=None,
                 malformed_every: int = 0) -> tuple[dict[str, str], dict[str, float]]:
    """Topic names with n synthetic records in each of `topics` (kept between runs), and the
    seconds each empty one took to fill (with `spark`, or a session of its own when one is
    needed). Every job gets all four topics (data_enrichment also lands external data: it must
    exist, even empty). With `malformed_every`, about one record in that many is not JSON
    (topics of their own)."""
    suffix = f"_bad{malformed_every}" if malformed_every else ""
    names = {t: f"bench_{t}_{n}{suffix}" for t in TOPICS}
    stack.ensure_topics(settings.kafka_bootstrap_servers, settings.kafka_topic_partitions,
                        names=list(names.values()))
    held = {t: records_in(settings.kafka_bootstrap_servers, names[t]) for t in topics}
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
        from benchmarks.synthetic import with_unparseable

        return names, {t: preload(session, with_unparseable(_synthetic(t)(session, n), malformed_every), names[t],
                                  settings) for t in empty}
    finally:
        if spark is None:
            session.stop()


def bench_streaming(n: int, topics: list[str]) -> dict:
    from utils.spark_utils import create_spark_session, read_kafka_batch

    settings = load_settings()
    spark = create_spark_session("bench-streaming", settings, master=MASTER)
    names, preloaded = bench_topics(settings, n, topics, spark)
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
                r = run_available_now(job, names, MASTER, Path(tmp) / job)
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
    names, _ = bench_topics(settings, n, topics)
    out: dict = {"events": n, "jobs": {}}
    with tempfile.TemporaryDirectory(prefix="bench-stages-") as tmp:
        for job in [j for t in topics for j in STREAMING[t][1]]:
            events, recordings = Path(tmp) / job / "events", Path(tmp) / job / "jfr"
            recordings.mkdir(parents=True)
            conf = {**event_log_conf(events, settings),
                    # A folder as the file name: each executor JVM writes a recording of its own there.
                    "spark.executor.extraJavaOptions":
                        f"-XX:StartFlightRecording=settings=profile,dumponexit=true,filename={recordings}/"}
            r = run_available_now(job, names, MASTER, Path(tmp) / job,
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
    "rocksdb_no_row_count": ("RocksDB without its row count (no look-up before each write; state_rows reads 0)", {
        "SPARK_EXTRA_CONF": json.dumps({"spark.sql.streaming.stateStore.rocksdb.trackTotalNumberOfRows": "false"})}),
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
            preload(spark, as_kafka_records(app_events(spark, n)), topics[count], settings)
    spark.stop()
    runs = []
    with tempfile.TemporaryDirectory(prefix="bench-sweep-") as tmp:
        for round_ in range(1, rounds + 1):
            for sid in ids:
                r = run_available_now("event_aggregation", {"app_events": topics[partitions(sid)]}, MASTER,
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


def bench_sustained(rate: float, seconds: int) -> dict:
    """event_aggregation in continuous mode (default trigger) on the cluster while the generator
    produces `rate` records/s (all four topics) for `seconds`: does the job keep up, and how long
    are its micro-batches?"""
    from utils.launch import spark_submit_command

    settings = load_settings()
    prefix = f"benchrate{int(rate)}_{time.time_ns() % 10**6}_"
    root = Path(tempfile.mkdtemp(prefix="bench-rate-"))
    env = job_env(root, {t: prefix + t for t in TOPICS}, MASTER)
    stack.ensure_topics(settings.kafka_bootstrap_servers, settings.kafka_topic_partitions,
                        names=[prefix + t for t in TOPICS])
    (root / "users.csv").write_text("user_id,signup_date,country,plan\n")
    log_file = root / "logs" / "event_aggregation.log"

    def batches() -> list[dict]:
        return batches_in(log_file, "events_aggregated_realtime")

    cmd = spark_submit_command(PROJECT_ROOT / "jobs" / "streaming" / "event_aggregation.py", [], master=MASTER)
    with PeakRss(driver="jobs/streaming/event_aggregation.py", executor="CoarseGrainedExecutorBackend") as rss, \
            (root / "job.out").open("w") as out:
        job = subprocess.Popen(cmd, cwd=PROJECT_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                               start_new_session=True)
        try:
            deadline = time.monotonic() + 300
            while not batches() and time.monotonic() < deadline and job.poll() is None:
                time.sleep(2)
            app_events = int(rate * seconds / RECORDS_PER_APP_EVENT)
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
    during = [b for b in batches() if gen_start <= logged_at(b).timestamp() <= gen_end and b["input_rows"]]
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
        "batch_ms_p50": percentile(durations, 0.5), "batch_ms_p95": percentile(durations, 0.95),
        "peak_rss_mib": rss.mib(),
        "files_per_date_partition_per_hour": round(len(files) / hours / max(1, len({f.parent for f in files}))),
    }
