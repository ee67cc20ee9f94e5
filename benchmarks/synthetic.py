"""Synthetic data for benchmarks, produced by Spark itself (fast enough for millions of rows).

App events follow the contract exactly, so the jobs parse them like real input; they are
written to Kafka (streaming benchmarks) or as `enriched_events` Parquet (batch benchmarks).
"""

from __future__ import annotations

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

EVENT_TYPES = ["page_view", "page_view", "page_view", "click", "search", "add_to_cart", "purchase",
               "login", "logout", "error"]
APP_TYPES = ["web", "web", "ios", "android"]


def app_events(spark: SparkSession, n: int, *, start: str = "2026-11-20 00:00:00", users: int = 50_000,
               span_seconds: int = 86_400, partitions: int = 8) -> DataFrame:
    """n app events over `span_seconds` of event time, in event-time order, as typed columns."""
    ids = spark.range(0, n, numPartitions=partitions)
    h = F.xxhash64("id")
    event_type = F.element_at(F.array(*map(F.lit, EVENT_TYPES)), (F.abs(h) % len(EVENT_TYPES) + 1).cast("int"))
    app_type = F.element_at(F.array(*map(F.lit, APP_TYPES)), (F.abs(F.xxhash64("id", F.lit(1))) % 4 + 1).cast("int"))
    offset = F.make_interval(secs=(F.col("id") * span_seconds / n))
    device = F.struct(F.lit("mobile").alias("type"), F.lit("iOS").alias("os"), F.lit("iPhone 16").alias("model"))
    return ids.select(
        F.expr("uuid()").alias("event_id"),
        event_type.alias("event_type"),
        F.format_string("user_%06d", (F.abs(h) % users)).alias("user_id"),
        F.format_string("s_%09d", (F.col("id") / 7).cast("long")).alias("session_id"),
        app_type.alias("app_type"),
        (F.to_timestamp(F.lit(start)) + offset).alias("event_timestamp"),
        device.alias("device"),
        F.struct(F.lit("DE").alias("country"), F.lit("Berlin").alias("city")).alias("location"),
        F.when(F.abs(h) % len(EVENT_TYPES) == 6, F.round(F.abs(h) % 40000 / 100.0, 2)).alias("revenue"),
    )


def as_kafka_records(events: DataFrame) -> DataFrame:
    """key = user_id, value = the contract's JSON (timestamps as ISO-8601 with Z)."""
    ts = F.date_format("event_timestamp", "yyyy-MM-dd'T'HH:mm:ss.SSS'Z'")
    body = events.withColumn("event_timestamp", ts)
    return body.select(F.col("user_id").alias("key"),
                       F.to_json(F.struct(*[F.col(c) for c in body.columns])).alias("value"))


def as_enriched(events: DataFrame) -> DataFrame:
    """The enriched_events layout the batch jobs read."""
    return events.select(
        "event_id", "event_type", "user_id", "session_id", "app_type", "event_timestamp",
        F.col("device.type").alias("device_type"), F.col("device.os").alias("device_os"),
        F.col("device.model").alias("device_model"), F.col("location.country").alias("country"),
        F.col("location.city").alias("city"), F.lit(None).cast("map<string,string>").alias("properties"),
        "revenue", F.lit(True).alias("user_known"), F.lit("basic").alias("plan"),
        F.lit(None).cast("date").alias("signup_date"), F.lit("DE").alias("user_country"),
        F.lit(None).cast("string").alias("segment"), F.to_date("event_timestamp").alias("event_date"),
    )


def sessions_from_events(events: DataFrame) -> DataFrame:
    """clickstream_sessions-shaped rows derived from the events (one per session_id)."""
    return (
        events.groupBy("session_id").agg(
            F.min("user_id").alias("user_id"), F.min("app_type").alias("app_type"),
            F.min("event_timestamp").alias("session_start"), F.max("event_timestamp").alias("session_end"),
            F.count(F.lit(1)).alias("click_count"))
        .withColumn("duration_seconds",
                    (F.unix_micros("session_end") - F.unix_micros("session_start")) / 1e6)
        .withColumn("unique_pages", F.col("click_count"))
        .withColumn("session_date", F.to_date("session_start"))
    )
