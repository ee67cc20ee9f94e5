"""Clickstream sessions (CONTRACT §3)."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from utils.transforms.generic import require_columns


def calculate_session_duration(df: DataFrame, *, start_col: str = "session_start",
                               end_col: str = "session_end") -> DataFrame:
    """duration_seconds = end − start, in seconds with the fraction (double)."""
    require_columns(df, start_col, end_col)
    return df.withColumn(
        "duration_seconds",
        (F.unix_micros(F.col(end_col)) - F.unix_micros(F.col(start_col))) / F.lit(1_000_000.0),
    )


def sessionize_clicks(df: DataFrame, *, gap: str) -> DataFrame:
    """One row per session (session_id, closed after `gap` of inactivity), CONTRACT §3.

    Built on `session_window`: merging sessions and closing them by watermark happen in the JVM
    with the state in RocksDB, with no Python worker involved.
    """
    require_columns(df, "session_id", "user_id", "app_type", "page_url", "click_id", "event_timestamp")
    ordered = F.array_sort(F.collect_list(F.struct(
        F.col("event_timestamp").alias("t"), F.col("click_id").alias("c"), F.col("page_url").alias("p"))))
    sessions = (
        df.groupBy(F.session_window(F.col("event_timestamp"), gap).alias("sw"), "session_id")
        .agg(
            F.min("user_id").alias("user_id"),
            F.min("app_type").alias("app_type"),
            F.min("event_timestamp").alias("session_start"),
            F.max("event_timestamp").alias("session_end"),
            F.count(F.lit(1)).alias("click_count"),
            F.size(F.collect_set("page_url")).cast("long").alias("unique_pages"),
            ordered.alias("clicks"),
        )
    )
    return (
        sessions.transform(calculate_session_duration)
        .select(
            "session_id", "user_id", "app_type", "session_start", "session_end", "duration_seconds",
            "click_count", "unique_pages",
            F.col("clicks")[0]["p"].alias("entry_page"),
            F.element_at(F.col("clicks"), -1)["p"].alias("exit_page"),
            F.transform(F.col("clicks"), lambda c: c["p"]).alias("click_path"),
            F.to_date(F.col("session_start")).alias("session_date"),
        )
    )
