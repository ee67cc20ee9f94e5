"""The price of correctness: each streaming job against a *plain peer*, the same computation as a
typical Spark user would write it from the design (`from_json` with the topic's schema, rows it
cannot parse dropped without a reason, no quarantine; the same windows, de-duplication and
output). The peer is a benchmark, not part of the product.

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

# The jobs that have a peer, and the query of the job it is compared with.
PEERS = ("event_aggregation", "data_enrichment")
# What each peer's output is compared on with the job's (dataset, sort keys, columns).
COMPARED = {"event_aggregation": ("events_aggregated_realtime", ["window_start", "user_id", "event_type", "app_type"],
                                  ["window_end", "event_count", "session_ids"]),
            "data_enrichment": ("enriched_events", ["event_id"],
                                ["user_id", "event_type", "app_type", "event_timestamp", "kafka_offset", "user_known"])}


def event_aggregation_peer(spark, settings):
    """1-minute windows per user, event type and app type over de-duplicated app events."""
    from pyspark.sql import functions as F

    from utils.spark_utils import read_kafka_stream
    from utils.transforms.records import APP_EVENTS

    events = (read_kafka_stream(spark, settings.topic_app_events, settings)
              .select(F.from_json(F.col("value").cast("string"), APP_EVENTS.ddl()).alias("e")).select("e.*")
              .withColumn("event_timestamp", F.to_timestamp("event_timestamp"))
              .where(F.col("event_id").isNotNull() & F.col("event_timestamp").isNotNull()
                     & F.col("user_id").isNotNull()))
    windows = (events.withWatermark("event_timestamp", settings.event_aggregation_watermark)
               .dropDuplicatesWithinWatermark(["event_id"])
               .groupBy(F.window("event_timestamp", settings.event_aggregation_window).alias("w"),
                        "user_id", "event_type", "app_type")
               .agg(F.count(F.lit(1)).alias("event_count"),
                    F.array_sort(F.collect_set("session_id")).alias("session_ids"))
               .select(F.col("w.start").alias("window_start"), F.col("w.end").alias("window_end"),
                       "user_id", "event_type", "app_type", "event_count", "session_ids",
                       F.to_date("w.start").alias("event_date")))
    return (windows.writeStream.format("parquet").partitionBy("event_date")
            .option("path", settings.dataset_path("events_aggregated_realtime"))
            .option("checkpointLocation", settings.checkpoint_path("peer", "events_aggregated_realtime"))
            .trigger(availableNow=True).start())


def data_enrichment_peer(spark, settings):
    """De-duplicated app events joined with the user master (left), flattened, by event_date."""
    from pyspark.sql import functions as F

    from utils.spark_utils import read_kafka_stream
    from utils.transforms.records import APP_EVENTS

    location = settings.user_master_path
    master = (spark.read.option("header", "true").csv(location) if location.endswith(".csv")
              else spark.read.parquet(location))
    users = master.select("user_id", "plan", F.to_date("signup_date").alias("signup_date"),
                          F.col("country").alias("user_country"), F.lit(True).alias("user_known")
                          ).dropDuplicates(["user_id"])
    events = (read_kafka_stream(spark, settings.topic_app_events, settings)
              .select(F.from_json(F.col("value").cast("string"), APP_EVENTS.ddl()).alias("e"),
                      F.col("topic").alias("kafka_topic"), F.col("partition").alias("kafka_partition"),
                      F.col("offset").alias("kafka_offset"), F.col("timestamp").alias("kafka_timestamp"))
              .select("e.*", "kafka_topic", "kafka_partition", "kafka_offset", "kafka_timestamp")
              .withColumn("event_timestamp", F.to_timestamp("event_timestamp"))
              .where(F.col("event_id").isNotNull() & F.col("event_timestamp").isNotNull()
                     & F.col("user_id").isNotNull()))
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
    return (enriched.writeStream.format("parquet").partitionBy("event_date")
            .option("path", settings.dataset_path("enriched_events"))
            .option("checkpointLocation", settings.checkpoint_path("peer", "enriched_events"))
            .trigger(availableNow=True).start())


def main(job: str) -> int:
    from utils.spark_utils import create_spark_session

    settings = load_settings()
    spark = create_spark_session(f"peer-{job}", settings, streaming=True)
    started = time.monotonic()
    query = {"event_aggregation": event_aggregation_peer, "data_enrichment": data_enrichment_peer}[job](spark, settings)
    query.awaitTermination()
    seconds = time.monotonic() - started
    progress = query.recentProgress
    print(json.dumps({"rows": sum(p.numInputRows for p in progress), "query_s": round(seconds, 1),
                      "batches": len(progress),
                      "batch_s": round(sum(p.durationMs.get("triggerExecution", 0) for p in progress) / 1000, 1)}))
    spark.stop()
    return 0


def _same_output(job: str, project: Path, peer: Path) -> bool:
    """Both wrote the same rows (the synthetic input has no malformed record)."""
    from utils import files

    dataset, keys, cols = COMPARED[job]
    frames = []
    for root in (project, peer):
        df = files.read_dataset(str(root / "outputs" / dataset), load_settings())[keys + cols]
        if "session_ids" in cols:
            df["session_ids"] = df["session_ids"].map(tuple)
        frames.append(df.sort_values(keys).reset_index(drop=True))
    return frames[0].equals(frames[1])


def bench_peer(n: int) -> dict:
    """Each job with a peer, then its peer, on the same preloaded topic of n app events, on the
    idle cluster; the ratio project/peer of their throughput (wall time, start-up included on
    both sides)."""
    from benchmarks.common import MASTER, job_env, run_available_now
    from benchmarks.streaming import bench_topics
    from utils.launch import spark_submit_command

    settings = load_settings()
    names, _ = bench_topics(settings, n, ["app_events"])
    out: dict = {"events": n}
    with tempfile.TemporaryDirectory(prefix="bench-peer-") as tmp:
        for job in PEERS:
            project = run_available_now(job, names, MASTER, Path(tmp) / job)
            root = Path(tmp) / f"{job}-peer"
            root.mkdir()
            # The same user master as the job's (run_available_now writes it in the job's folder).
            (root / "users.csv").write_text((Path(tmp) / job / "users.csv").read_text())
            env = job_env(root, names, MASTER)
            cmd = spark_submit_command(Path(__file__), [job], master=MASTER, settings=settings_for_env(env))
            started = time.monotonic()
            done = subprocess.run(cmd, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, check=False)
            if done.returncode:
                raise RuntimeError(f"the {job} peer failed (exit {done.returncode}): {done.stderr[-3000:]}")
            wall = time.monotonic() - started
            peer = {**json.loads(done.stdout.strip().splitlines()[-1]), "wall_s": round(wall, 1)}
            peer["rows_per_s_wall"] = round(peer["rows"] / wall)
            out[job] = {"project": project, "peer": peer,
                        "ratio_wall": round(peer["wall_s"] / project["wall_s"], 2),
                        "same_output": _same_output(job, Path(tmp) / job, root)}
    return out


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
