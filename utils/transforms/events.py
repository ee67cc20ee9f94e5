"""Typed rows of the event topics from validated records (CONTRACT §3), and per-user windows."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from utils.transforms.generic import require_columns
from utils.transforms.records import APP_EVENTS, CLICKSTREAM, EXTERNAL_DATA
from utils.transforms.validation import get, kafka_meta, require_validated, text, time


def _optional(layout, name: str):
    """An optional field of a layout, extracted as its declared type."""
    return get(name, layout.field(name).ddl_type)


def extract_app_events(df: DataFrame) -> DataFrame:
    """Typed app events from validated rows; device and location flattened (CONTRACT §3)."""
    require_validated(df, APP_EVENTS.spec)
    device = _optional(APP_EVENTS, "device")
    location = _optional(APP_EVENTS, "location")
    return df.select(
        *(text(c).alias(c) for c in ("event_id", "event_type", "user_id", "session_id", "app_type")),
        time("event_timestamp").alias("event_timestamp"),
        device.getField("type").alias("device_type"),
        device.getField("os").alias("device_os"),
        device.getField("model").alias("device_model"),
        location.getField("country").alias("country"),
        location.getField("city").alias("city"),
        _optional(APP_EVENTS, "properties").alias("properties"),
        _optional(APP_EVENTS, "revenue").alias("revenue"),
        *kafka_meta(),
    )


def extract_clicks(df: DataFrame) -> DataFrame:
    require_validated(df, CLICKSTREAM.spec)
    return df.select(
        *(text(c).alias(c) for c in ("click_id", "session_id", "user_id", "page_url")),
        *(_optional(CLICKSTREAM, c).alias(c) for c in ("referrer_url", "element_id")),
        text("app_type").alias("app_type"),
        time("event_timestamp").alias("event_timestamp"),
        *kafka_meta(),
    )


def extract_external_data(df: DataFrame) -> DataFrame:
    require_validated(df, EXTERNAL_DATA.spec)
    return df.select(
        text("record_id").alias("record_id"),
        text("source").alias("source"),
        time("fetched_at").alias("fetched_at"),
        F.to_json(get("payload", "variant")).alias("payload_json"),
        F.to_date(time("fetched_at")).alias("fetch_date"),
        *kafka_meta(),
    )


def aggregate_by_user_window(df: DataFrame, *, time_col: str, window: str) -> DataFrame:
    """1-window × user × event_type × app_type: distinct events and their session ids."""
    require_columns(df, time_col, "user_id", "event_type", "app_type", "session_id", "event_id")
    return (
        df.groupBy(F.window(F.col(time_col), window).alias("w"), "user_id", "event_type", "app_type")
        .agg(
            F.count(F.lit(1)).alias("event_count"),
            F.array_sort(F.collect_set("session_id")).alias("session_ids"),
        )
        .select(
            F.col("w.start").alias("window_start"),
            F.col("w.end").alias("window_end"),
            "user_id", "event_type", "app_type", "event_count", "session_ids",
            F.to_date(F.col("w.start")).alias("event_date"),
        )
    )
