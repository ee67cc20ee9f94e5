"""Synthetic data for benchmarks, produced by Spark itself (fast enough for millions of rows).

App events, clicks and Debezium change events follow the contract exactly, so the jobs parse
them like real input; they are written to Kafka (streaming benchmarks), app events also as
`enriched_events` Parquet (batch benchmarks).
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, SparkSession
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


PAGES = ["/", "/search", "/product/1", "/product/2", "/cart", "/checkout", "/account"]


def _pick(values: list[str], *salt: int) -> Column:
    h = F.abs(F.xxhash64("id", *map(F.lit, salt)))
    return F.element_at(F.array(*map(F.lit, values)), (h % len(values) + 1).cast("int"))


def _iso(ts: Column) -> Column:
    return F.date_format(ts, "yyyy-MM-dd'T'HH:mm:ss.SSS'Z'")


def clicks(spark: SparkSession, n: int, *, start: str = "2026-11-20 00:00:00", users: int = 50_000,
           span_seconds: int = 86_400, partitions: int = 8) -> DataFrame:
    """n clickstream records as (key, value): sessions of 7 consecutive clicks, in event-time order."""
    ids = spark.range(0, n, numPartitions=partitions)
    session = (F.col("id") / 7).cast("long")
    ts = F.to_timestamp(F.lit(start)) + F.make_interval(secs=(F.col("id") * span_seconds / n))
    body = F.struct(
        F.expr("uuid()").alias("click_id"),
        F.format_string("s_%09d", session).alias("session_id"),
        F.format_string("user_%06d", F.abs(F.xxhash64(session)) % users).alias("user_id"),
        _pick(PAGES, 1).alias("page_url"),
        _pick(PAGES, 2).alias("referrer_url"),
        F.format_string("el-%d", F.col("id") % 50).alias("element_id"),
        _pick(APP_TYPES, 3).alias("app_type"),
        _iso(ts).alias("event_timestamp"),
    )
    return ids.select(F.format_string("s_%09d", session).alias("key"), F.to_json(body).alias("value"))


def cdc_changes(spark: SparkSession, n: int, *, start: str = "2026-11-20 00:00:00", span_seconds: int = 86_400,
                partitions: int = 8) -> DataFrame:
    """n Debezium change events on public.orders as (key, value): inserts, updates and deletes in
    turn, half of them in the {"schema", "payload"} wrapping, as the Postgres connector writes them."""
    ids = spark.range(0, n, numPartitions=partitions)
    order_id = (F.col("id") / 3).cast("long")
    op = F.element_at(F.array(F.lit("c"), F.lit("u"), F.lit("d")), (F.col("id") % 3 + 1).cast("int"))
    ts = F.to_timestamp(F.lit(start)) + F.make_interval(secs=(F.col("id") * span_seconds / n))
    ts_ms = F.unix_millis(ts)
    row = F.struct(order_id.alias("id"), F.format_string("user_%06d", order_id % 50_000).alias("user_id"),
                   F.round(F.abs(F.xxhash64(order_id)) % 40000 / 100.0, 2).alias("amount"))
    paid = row.withField("status", F.lit("paid"))
    source = F.struct(F.lit("2.7.0.Final").alias("version"), F.lit("postgresql").alias("connector"),
                      F.lit("shop").alias("name"), ts_ms.alias("ts_ms"), F.lit("false").alias("snapshot"),
                      F.lit("shop").alias("db"), F.lit("public").alias("schema"), F.lit("orders").alias("table"),
                      order_id.alias("txId"), (F.col("id") * 64).alias("lsn"))
    envelope = F.struct(
        F.when(op != "c", row.withField("status", F.lit("new"))).alias("before"),
        F.when(op == "c", row.withField("status", F.lit("new"))).when(op == "u", paid).alias("after"),
        source.alias("source"), op.alias("op"), (ts_ms + 120).alias("ts_ms"))
    wrapped = F.struct(F.struct(F.lit("struct").alias("type"),
                                F.lit("shop.public.orders.Envelope").alias("name")).alias("schema"),
                       envelope.alias("payload"))
    keep_nulls = {"ignoreNullFields": "false"}  # Debezium writes "before": null, not nothing
    value = F.when(F.col("id") % 2 == 0, F.to_json(wrapped, keep_nulls)).otherwise(F.to_json(envelope, keep_nulls))
    key = F.to_json(F.struct(order_id.alias("id")))
    return ids.select(key.alias("key"), value.alias("value"))


def as_kafka_records(events: DataFrame) -> DataFrame:
    """key = user_id, value = the contract's JSON (timestamps as ISO-8601 with Z)."""
    ts = F.date_format("event_timestamp", "yyyy-MM-dd'T'HH:mm:ss.SSS'Z'")
    body = events.withColumn("event_timestamp", ts)
    return body.select(F.col("user_id").alias("key"),
                       F.to_json(F.struct(*[F.col(c) for c in body.columns])).alias("value"))


def with_unparseable(records: DataFrame, every: int) -> DataFrame:
    """About one value in `every` (by a hash of it, so spread over the topic and every
    micro-batch) replaced by a text that is not JSON: a malformed record that the jobs quarantine
    and a plain `from_json` reader drops, so both still write the same rows."""
    if not every:
        return records
    bad = F.abs(F.xxhash64("value")) % every == 0
    return records.withColumn("value", F.when(F.col("value").isNotNull() & bad,
                                              F.concat(F.lit("not json: "), F.col("value"))).otherwise(F.col("value")))


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
