"""A small batch job run beside a streaming job's start-up, so that the executors' first tasks
are not the first micro-batch's.

A fresh executor's first tasks pay for loading classes, deserialising closures and compiling
generated code (3 s each on the local stack; benchmarks/history.md). While the driver builds the
streaming queries, the executors are idle: this job gives them the same kind of work (JSON into
VARIANT, field look-ups, a timestamp parse, a shuffle into an aggregation) over a few generated
rows, written nowhere (the `noop` format). It runs in a daemon thread, in its own job group (the
Spark UI shows it as "warm-up"); a failure is logged and changes nothing else.
"""

from __future__ import annotations

import threading

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from configs.logging_config import ContextLogger

GROUP = "warm-up"
ROWS = 2_000


def warm_up_plan(spark: SparkSession, partitions: int):
    """The warm-up's DataFrame: generated JSON records through the operators the jobs use."""
    ids = spark.range(0, ROWS, 1, partitions)
    records = ids.select(F.format_string(
        '{"event_id":"e%d","user_id":"u%d","ts":"2026-01-01T00:%02d:00Z","n":%d}',
        "id", F.col("id") % 50, F.col("id") % 60, "id").alias("value"))
    parsed = (records.withColumn("_json", F.try_parse_json("value"))
              .withColumn("_type", F.schema_of_variant(F.try_variant_get("_json", "$.n", "variant")))
              .withColumn("user_id", F.try_variant_get("_json", "$.user_id", "string"))
              .withColumn("ts", F.to_timestamp(F.try_variant_get("_json", "$.ts", "string"))))
    return (parsed.where(F.col("_type").isNotNull())
            .groupBy(F.window("ts", "1 minute"), "user_id")
            .agg(F.count(F.lit(1)).alias("n"), F.collect_set("_type").alias("types")))


def start_warm_up(spark: SparkSession, partitions: int, log: ContextLogger) -> threading.Thread:
    """Run the warm-up job in the background; returns its (daemon) thread."""

    def run() -> None:
        try:
            spark.sparkContext.setJobGroup(GROUP, "warm-up of the executors before the first micro-batch")
            warm_up_plan(spark, partitions).write.format("noop").mode("overwrite").save()
            log.info("warm-up done")
        except Exception as exc:  # noqa: BLE001 - a warm-up never stops a job
            log.warning("warm-up failed (no effect on the job)", extra={"error": str(exc)})

    thread = threading.Thread(target=run, name="warm-up", daemon=True)
    thread.start()
    return thread
