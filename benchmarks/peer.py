"""The price of correctness: each streaming job against a *plain peer*, the same computation as a
typical Spark user would write it from the design (`from_json` with the topic's schema, rows it
cannot parse dropped without a reason, no quarantine; the same windows, de-duplication, queries
and outputs). Where a job's aggregation is a pure function of typed rows (the sessions, the CDC
summary), the peer calls the same function: what is compared is the reading, the validation and
the quarantine. The peer is a benchmark, not part of the product.

Run by the bench (`make bench --only peer`) as `spark-submit benchmarks/peer.py <job>` with the
job's own settings and sizing; it prints one JSON line with its rows and times.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from configs.spark_config import PROJECT_ROOT, load_settings, settings_for_env

# Per job with a peer: the topic it is measured on, and what its output is compared on with the
# job's: (dataset, sort keys, columns) per output. cdc_transformed's before/after JSON texts are
# left out: the job writes VARIANT's canonical JSON, the peer its maps' (numbers as strings).
PEERS = {
    "event_aggregation": ("app_events", [
        ("events_aggregated_realtime", ["window_start", "user_id", "event_type", "app_type"],
         ["window_end", "event_count", "session_ids"])]),
    "data_enrichment": ("app_events", [
        ("enriched_events", ["event_id"],
         ["user_id", "event_type", "app_type", "event_timestamp", "kafka_offset", "user_known"])]),
    "clickstream_analysis": ("clickstream", [
        ("clickstream_sessions", ["session_id", "session_start"],
         ["user_id", "app_type", "session_end", "click_count", "unique_pages", "entry_page", "exit_page",
          "click_path"])]),
    "cdc_transformation": ("cdc_changes", [
        ("cdc_transformed", ["kafka_partition", "kafka_offset"],
         ["table_name", "operation", "primary_key", "changed_columns", "source_ts", "lsn", "tx_id",
          "capture_lag_ms", "op", "is_snapshot", "source_db"]),
        ("cdc_table_summary", ["window_start", "table_name"],
         ["inserts", "updates", "deletes", "snapshots", "total_changes"])]),
}


def _parsed(spark, settings, topic: str, ddl: str, *kafka_columns: str):
    """`topic`'s records parsed with `from_json` into the columns of `ddl`, plus the Kafka columns
    named (each as kafka_<name>)."""
    from pyspark.sql import functions as F

    from utils.spark_utils import read_kafka_stream

    return (read_kafka_stream(spark, settings.topics[topic], settings)
            .select(F.from_json(F.col("value").cast("string"), ddl).alias("r"),
                    *(F.col(c).alias(f"kafka_{c}") for c in kafka_columns))
            .select("r.*", *(f"kafka_{c}" for c in kafka_columns)))


def _typed(df, required: list[str]):
    """The event time parsed, and rows missing a required field dropped."""
    from pyspark.sql import functions as F

    typed = df.withColumn("event_timestamp", F.to_timestamp("event_timestamp"))
    return typed.where(" AND ".join(f"{c} IS NOT NULL" for c in required))


def _write(df, settings, dataset: str, *partition: str):
    return (df.writeStream.format("parquet").partitionBy(*partition)
            .option("path", settings.dataset_path(dataset))
            .option("checkpointLocation", settings.checkpoint_path("peer", dataset))
            .trigger(availableNow=True).start())


def event_aggregation_peer(spark, settings):
    """1-minute windows per user, event type and app type over de-duplicated app events."""
    from pyspark.sql import functions as F

    from utils.transforms.records import APP_EVENTS

    events = _typed(_parsed(spark, settings, "app_events", APP_EVENTS.ddl()),
                    ["event_id", "event_timestamp", "user_id"])
    windows = (events.withWatermark("event_timestamp", settings.event_aggregation_watermark)
               .dropDuplicatesWithinWatermark(["event_id"])
               .groupBy(F.window("event_timestamp", settings.event_aggregation_window).alias("w"),
                        "user_id", "event_type", "app_type")
               .agg(F.count(F.lit(1)).alias("event_count"),
                    F.array_sort(F.collect_set("session_id")).alias("session_ids"))
               .select(F.col("w.start").alias("window_start"), F.col("w.end").alias("window_end"),
                       "user_id", "event_type", "app_type", "event_count", "session_ids",
                       F.to_date("w.start").alias("event_date")))
    return [_write(windows, settings, "events_aggregated_realtime", "event_date")]


def data_enrichment_peer(spark, settings):
    """De-duplicated app events joined with the user master (left), flattened, by event_date; and
    external data landed by source and fetch date, as the job does."""
    from pyspark.sql import functions as F

    from utils.transforms.records import APP_EVENTS

    location = settings.user_master_path
    master = (spark.read.option("header", "true").csv(location) if location.endswith(".csv")
              else spark.read.parquet(location))
    users = master.select("user_id", "plan", F.to_date("signup_date").alias("signup_date"),
                          F.col("country").alias("user_country"), F.lit(True).alias("user_known")
                          ).dropDuplicates(["user_id"])
    kafka = ("topic", "partition", "offset", "timestamp")
    events = _typed(_parsed(spark, settings, "app_events", APP_EVENTS.ddl(), *kafka),
                    ["event_id", "event_timestamp", "user_id"])
    enriched = (events.withWatermark("event_timestamp", settings.enrichment_watermark)
                .dropDuplicatesWithinWatermark(["event_id"])
                .join(users, "user_id", "left")
                .select("event_id", "event_type", "user_id", "session_id", "app_type", "event_timestamp",
                        F.col("device.type").alias("device_type"), F.col("device.os").alias("device_os"),
                        F.col("device.model").alias("device_model"), F.col("location.country").alias("country"),
                        F.col("location.city").alias("city"), "properties", "revenue",
                        F.coalesce("user_known", F.lit(False)).alias("user_known"), "plan", "signup_date",
                        "user_country", F.lit(None).cast("string").alias("segment"), "kafka_topic",
                        "kafka_partition", "kafka_offset", "kafka_timestamp",
                        F.to_date("event_timestamp").alias("event_date")))
    external = (_parsed(spark, settings, "external_data",
                        "record_id string, source string, fetched_at string, payload string", *kafka)
                .withColumn("fetched_at", F.to_timestamp("fetched_at"))
                .where("record_id IS NOT NULL AND source IS NOT NULL AND fetched_at IS NOT NULL")
                .select("record_id", "source", "fetched_at", F.col("payload").alias("payload_json"),
                        F.to_date("fetched_at").alias("fetch_date"), "kafka_topic", "kafka_partition",
                        "kafka_offset", "kafka_timestamp"))
    return [_write(enriched, settings, "enriched_events", "event_date"),
            _write(external, settings, "external_data", "source", "fetch_date")]


def clickstream_analysis_peer(spark, settings):
    """Sessions (the job's `sessionize_clicks`) over de-duplicated clicks."""
    from utils.transforms.records import CLICKSTREAM
    from utils.transforms.sessions import sessionize_clicks

    clicks = _typed(_parsed(spark, settings, "clickstream", CLICKSTREAM.ddl()),
                    ["click_id", "session_id", "user_id", "page_url", "app_type", "event_timestamp"])
    deduped = (clicks.withWatermark("event_timestamp", settings.clickstream_watermark)
               .dropDuplicatesWithinWatermark(["click_id"]))
    return [_write(sessionize_clicks(deduped, gap=settings.clickstream_session_gap), settings,
                   "clickstream_sessions", "session_date")]


def cdc_transformation_peer(spark, settings):
    """Debezium changes (bare or in the {"schema", "payload"} wrapping) as rows, and the changes
    per minute and table (the job's `summarize_cdc`): two queries, as the job has."""
    from pyspark.sql import functions as F

    from utils.transforms.cdc import OPERATIONS, summarize_cdc

    source = "struct<ts_ms:bigint,db:string,schema:string,table:string,txId:bigint,lsn:bigint,snapshot:string>"
    fields = {"before": "map<string,string>", "after": "map<string,string>", "source": source,
              "op": "string", "ts_ms": "bigint"}
    # One parse for both forms: the envelope's fields at the top, and under `payload`.
    ddl = ", ".join(f"`{n}` {t}" for n, t in fields.items()) + \
        ", payload struct<" + ",".join(f"{n}:{t}" for n, t in fields.items()) + ">"

    def changes():
        raw = _parsed(spark, settings, "cdc_changes", ddl, "topic", "partition", "offset", "timestamp")
        e = F.coalesce(F.col("payload"), F.struct(*(F.col(n) for n in fields)))
        rows = raw.select(e.alias("e"), "kafka_topic", "kafka_partition", "kafka_offset", "kafka_timestamp")
        rows = rows.where(F.col("e.op").isin(*OPERATIONS) & F.col("e.source.table").isNotNull())
        op, before, after = F.col("e.op"), F.col("e.before"), F.col("e.after")
        source_ts = F.timestamp_millis("e.source.ts_ms")
        changed = F.filter(F.array_sort(F.map_keys(after)),
                           lambda k: F.array_contains(F.map_keys(before), k) & ~before[k].eqNullSafe(after[k]))
        return rows.select(
            F.concat_ws(".", "e.source.schema", "e.source.table").alias("table_name"),
            F.create_map(*[F.lit(x) for kv in OPERATIONS.items() for x in kv])[op].alias("operation"),
            F.when(op == "d", before["id"]).otherwise(after["id"]).alias("primary_key"),
            F.to_json(before).alias("before_json"), F.to_json(after).alias("after_json"),
            F.when((op == "u") & (F.size(F.map_keys(before)) > 1), changed).alias("changed_columns"),
            source_ts.alias("source_ts"), F.col("e.source.lsn").alias("lsn"), F.col("e.source.txId").alias("tx_id"),
            (F.col("e.ts_ms") - F.col("e.source.ts_ms")).alias("capture_lag_ms"), op.alias("op"),
            (~F.lower(F.coalesce("e.source.snapshot", F.lit("false"))).isin("false", "")).alias("is_snapshot"),
            F.col("e.source.db").alias("source_db"), "kafka_topic", "kafka_partition", "kafka_offset",
            "kafka_timestamp", F.to_date(source_ts).alias("change_date"))

    summary = summarize_cdc(changes().withWatermark("source_ts", settings.cdc_watermark),
                            window=settings.cdc_summary_window)
    return [_write(changes(), settings, "cdc_transformed", "change_date"),
            _write(summary, settings, "cdc_table_summary", "summary_date")]


def main(job: str) -> int:
    from utils.spark_utils import create_spark_session

    settings = load_settings()
    spark = create_spark_session(f"peer-{job}", settings, streaming=True)
    started = time.monotonic()
    queries = globals()[f"{job}_peer"](spark, settings)
    for query in queries:
        query.awaitTermination()
    seconds = time.monotonic() - started
    progress = [p for q in queries for p in q.recentProgress]
    main_progress = queries[0].recentProgress
    print(json.dumps({"rows": sum(p.numInputRows for p in main_progress), "query_s": round(seconds, 1),
                      "batches": len(main_progress),
                      "batch_s": round(sum(p.durationMs.get("triggerExecution", 0) for p in progress) / 1000, 1)}))
    spark.stop()
    return 0


def _comparable(df, keys: list[str], cols: list[str]):
    df = df[keys + cols].copy()
    for col in cols:  # arrays (numpy) -> tuples, which compare by value
        df[col] = df[col].map(lambda v: tuple(v) if v is not None and hasattr(v, "__len__") and not isinstance(v, str)
                              else v)
    return df.sort_values(keys).reset_index(drop=True)


def _same_output(job: str, project: Path, peer: Path) -> bool:
    """Both wrote the same rows in every compared output (a malformed record is one that is not
    JSON: the job quarantines it, the peer drops it)."""
    from utils import files

    for dataset, keys, cols in PEERS[job][1]:
        frames = [files.read_dataset(str(root / "outputs" / dataset), load_settings()) for root in (project, peer)]
        if any(f is None for f in frames) or not _comparable(frames[0], keys, cols).equals(
                _comparable(frames[1], keys, cols)):
            return False
    return True


def bench_peer(n: int, jobs: list[str] | None = None, malformed_every: int = 0) -> dict:
    """Each job with a peer, then its peer, on the same preloaded topic of n records, on the idle
    cluster; the ratio project/peer of their throughput (wall time, start-up included on both
    sides), and of the executors' CPU time (from Spark's event log: steadier than the wall time
    on a shared machine, and what a busier cluster would feel). With `malformed_every`, about one
    record in that many is not JSON: every micro-batch then has some, and the job's quarantine
    follower rereads each one's offsets (the peer drops them)."""
    from benchmarks.common import MASTER, event_log_conf, job_env, run_available_now
    from benchmarks.stages import executor_cpu_s
    from benchmarks.streaming import bench_topics
    from utils.launch import spark_submit_command

    jobs = jobs or list(PEERS)
    settings = load_settings()
    names, _ = bench_topics(settings, n, sorted({PEERS[j][0] for j in jobs}), malformed_every=malformed_every)
    out: dict = {"events": n, "malformed_every": malformed_every}
    with tempfile.TemporaryDirectory(prefix="bench-peer-") as tmp:
        for job in jobs:
            logs = {side: Path(tmp) / f"{job}-{side}-events" for side in ("project", "peer")}
            conf = {side: {"SPARK_EXTRA_CONF": json.dumps(event_log_conf(f, settings))} for side, f in logs.items()}
            project = run_available_now(job, names, MASTER, Path(tmp) / job, settings_env=conf["project"])
            project["executor_cpu_s"] = executor_cpu_s(logs["project"])
            root = Path(tmp) / f"{job}-peer"
            root.mkdir()
            # The same user master as the job's (run_available_now writes it in the job's folder).
            (root / "users.csv").write_text((Path(tmp) / job / "users.csv").read_text())
            env = {**job_env(root, names, MASTER), **conf["peer"]}
            cmd = spark_submit_command(Path(__file__), [job], master=MASTER, settings=settings_for_env(env))
            started = time.monotonic()
            done = subprocess.run(cmd, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, check=False)
            if done.returncode:
                raise RuntimeError(f"the {job} peer failed (exit {done.returncode}): {done.stderr[-3000:]}")
            wall = time.monotonic() - started
            peer = {**json.loads(done.stdout.strip().splitlines()[-1]), "wall_s": round(wall, 1)}
            peer["rows_per_s_wall"] = round(peer["rows"] / wall)
            peer["executor_cpu_s"] = executor_cpu_s(logs["peer"])
            out[job] = {"topic": PEERS[job][0], "project": project, "peer": peer,
                        "ratio_wall": round(peer["wall_s"] / project["wall_s"], 2),
                        "ratio_cpu": round(peer["executor_cpu_s"] / project["executor_cpu_s"], 2),
                        "same_output": _same_output(job, Path(tmp) / job, root)}
    return out


if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in PEERS:
        sys.exit(f"usage: benchmarks/peer.py JOB, JOB one of {', '.join(PEERS)}; got {sys.argv[1:]}")
    sys.exit(main(sys.argv[1]))
