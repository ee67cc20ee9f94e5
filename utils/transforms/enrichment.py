"""App events joined with the user master and the latest user segments (CONTRACT §3)."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from utils.transforms.generic import require_columns


def prepare_user_master(users: DataFrame) -> DataFrame:
    """User master data reduced to the join columns (one row per user_id)."""
    require_columns(users, "user_id", "signup_date", "country", "plan")
    return users.select(
        F.col("user_id").cast("string").alias("user_id"),
        F.col("plan").cast("string").alias("plan"),
        F.to_date(F.col("signup_date")).alias("signup_date"),
        F.col("country").cast("string").alias("user_country"),
    ).dropDuplicates(["user_id"])


def latest_segments(segments: DataFrame) -> DataFrame:
    """Each user's segment from the most recent `as_of_date` of `user_segments`."""
    require_columns(segments, "user_id", "as_of_date", "segment")
    latest = segments.agg(F.max("as_of_date").alias("latest"))
    return (
        segments.join(latest, F.col("as_of_date") == F.col("latest"), how="inner")
        .select("user_id", "segment")
    )


def enrich_with_user_data(events: DataFrame, users: DataFrame) -> DataFrame:
    """Left join events to prepared user master rows; user_known flags the matches."""
    require_columns(events, "user_id")
    flagged = users.withColumn("_known", F.lit(True))
    return (
        events.join(flagged, on="user_id", how="left")
        .withColumn("user_known", F.coalesce(F.col("_known"), F.lit(False)))
        .drop("_known")
    )


def enrich_with_user_segment(events: DataFrame, segments: DataFrame | None) -> DataFrame:
    """Add `segment` from the latest segmentation (null for users it has not seen yet)."""
    if segments is None:
        return events.withColumn("segment", F.lit(None).cast("string"))
    return events.join(latest_segments(segments), on="user_id", how="left")


ENRICHED_COLUMNS = (
    "event_id", "event_type", "user_id", "session_id", "app_type", "event_timestamp",
    "device_type", "device_os", "device_model", "country", "city", "properties", "revenue",
    "user_known", "plan", "signup_date", "user_country", "segment",
    "kafka_topic", "kafka_partition", "kafka_offset", "kafka_timestamp", "event_date",
)


def finalize_enriched(df: DataFrame) -> DataFrame:
    """Order the enriched columns as documented and add the partition column."""
    return df.withColumn("event_date", F.to_date(F.col("event_timestamp"))).select(*ENRICHED_COLUMNS)
