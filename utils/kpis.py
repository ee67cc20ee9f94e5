"""Pure roll-ups for the batch jobs: hourly aggregates, daily KPIs and user segments.

Plans stay linear in the input: distinct counts come from grouping on the distinct key first
(or from exploding one row into its grouping keys), never from several COUNT(DISTINCT) in one
aggregation, which makes Spark Expand the input once per distinct column.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from configs.spark_config import PROJECT_ROOT
from utils.transforms.generic import require_columns

PERCENTILE_ACCURACY = 10_000  # rank error <= 1/10000, well inside the contract's 1%
ALL_APPS = "all"


# --- hourly ----------------------------------------------------------------------------------------


def events_in_hour(events: DataFrame, hour: datetime) -> DataFrame:
    """The events whose event_timestamp falls in the UTC hour starting at `hour` (an aware datetime).

    The bound is given to Spark as an instant: a naive datetime would be read in the Python
    process's local time zone, and the job would silently aggregate another hour wherever TZ
    is not UTC.
    """
    if hour.tzinfo is None:
        raise ValueError(f"hour must be time-zone aware, got {hour!r}")
    start = hour.astimezone(UTC)
    return events.filter((F.col("event_timestamp") >= F.lit(start))
                         & (F.col("event_timestamp") < F.lit(start + timedelta(hours=1))))


def hourly_aggregates(events: DataFrame) -> DataFrame:
    """Events of one or more hours -> hour × event_type × app_type counts (CONTRACT §3)."""
    require_columns(events, "event_id", "event_timestamp", "event_type", "app_type", "user_id", "session_id")
    hour = F.date_trunc("hour", F.col("event_timestamp"))
    distinct_events = events.dropDuplicates(["event_id"]).withColumn("hour_start", hour)
    dims = ["hour_start", "event_type", "app_type"]
    # One aggregation after one de-duplication: exact distinct counts as set sizes (a set per
    # group is small here) instead of count(DISTINCT ...) twice, which makes Spark expand the
    # input once per distinct column, or separate distinct-then-join branches, which scan and
    # shuffle the events once per branch.
    counts = distinct_events.groupBy(*dims).agg(
        F.count(F.lit(1)).alias("event_count"),
        F.sum(F.coalesce(F.col("revenue"), F.lit(0.0))).alias("revenue"),
        F.size(F.collect_set("user_id")).alias("unique_users"),
        F.size(F.collect_set("session_id")).alias("unique_sessions"),
    )
    return (
        counts.select(*dims, "event_count", "unique_users", "unique_sessions", "revenue",
                F.to_date("hour_start").alias("event_date"), F.hour("hour_start").alias("hour"))
    )


# --- daily -----------------------------------------------------------------------------------------


def _with_app_keys(df: DataFrame) -> DataFrame:
    """Each row twice: once under its app_type and once under 'all'."""
    return df.withColumn("app_key", F.explode(F.array(F.col("app_type"), F.lit(ALL_APPS))))


def _percentiles(col: str, name: str) -> list:
    p = F.percentile_approx(F.col(col).cast("double"), [0.5, 0.95], PERCENTILE_ACCURACY)
    return [p.alias(f"_{name}")]


def daily_summary(events: DataFrame, sessions: DataFrame, *, summary_date) -> DataFrame:
    """One date's KPIs per app_type plus an `all` row (CONTRACT §3, daily_summaries)."""
    require_columns(events, "event_id", "user_id", "app_type")
    require_columns(sessions, "session_id", "app_type", "duration_seconds", "click_count")
    per_user = (
        events.dropDuplicates(["event_id"]).transform(_with_app_keys)
        .groupBy("app_key", "user_id").agg(F.count(F.lit(1)).alias("n"))
    )
    event_kpis = per_user.groupBy("app_key").agg(
        F.sum("n").alias("total_events"),
        F.count(F.lit(1)).alias("active_users"),
        *_percentiles("n", "epu"),
    )
    session_kpis = sessions.transform(_with_app_keys).groupBy("app_key").agg(
        F.count(F.lit(1)).alias("total_sessions"),
        F.avg("duration_seconds").alias("avg_session_duration_s"),
        *_percentiles("duration_seconds", "dur"),
        *_percentiles("click_count", "clicks"),
    )
    joined = event_kpis.join(session_kpis, on="app_key", how="full_outer")
    return joined.select(
        F.lit(summary_date).cast("date").alias("summary_date"),
        F.col("app_key").alias("app_type"),
        F.coalesce("total_events", F.lit(0)).cast("long").alias("total_events"),
        F.coalesce("active_users", F.lit(0)).cast("long").alias("active_users"),
        F.coalesce("total_sessions", F.lit(0)).cast("long").alias("total_sessions"),
        "avg_session_duration_s",
        F.col("_dur")[0].alias("p50_session_duration_s"),
        F.col("_dur")[1].alias("p95_session_duration_s"),
        F.col("_clicks")[0].alias("p50_clicks_per_session"),
        F.col("_clicks")[1].alias("p95_clicks_per_session"),
        F.col("_epu")[0].alias("p50_events_per_user"),
        F.col("_epu")[1].alias("p95_events_per_user"),
    )


# --- segments --------------------------------------------------------------------------------------


class Metric(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    weight: float = Field(ge=0, le=1)
    cap: float = Field(gt=0)


class SegmentRule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    min_score: float | None = Field(default=None, ge=0, le=100)
    min_revenue: float | None = Field(default=None, ge=0)


class FrequencyRule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    min_sessions_per_day: float = Field(ge=0)


class SegmentationRules(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    score: dict[str, Metric]
    segments: list[SegmentRule]
    session_frequency: list[FrequencyRule]

    @model_validator(mode="after")
    def _check(self) -> SegmentationRules:
        total = sum(m.weight for m in self.score.values())
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"score weights must sum to 1, got {total}")
        unknown = set(self.score) - {"total_events", "active_days", "total_sessions", "purchases"}
        if unknown:
            raise ValueError(f"unknown score metrics {sorted(unknown)}")
        scores = [r.min_score for r in self.segments if r.min_score is not None]
        if scores != sorted(scores, reverse=True):
            raise ValueError("segments must be listed from the highest min_score down")
        return self


def load_segmentation_rules(path: Path = PROJECT_ROOT / "configs" / "segmentation.yaml") -> SegmentationRules:
    return SegmentationRules(**yaml.safe_load(path.read_text(encoding="utf-8")))


def engagement_score(rules: SegmentationRules) -> F.Column:
    parts = [F.least(F.col(name).cast("double") / F.lit(m.cap), F.lit(1.0)) * F.lit(m.weight)
             for name, m in rules.score.items()]
    total = parts[0]
    for part in parts[1:]:
        total = total + part
    return F.round(total * 100.0, 2)


def segment_of(rules: SegmentationRules) -> F.Column:
    expr = None
    for rule in rules.segments:
        conds = []
        if rule.min_score is not None:
            conds.append(F.col("engagement_score") >= rule.min_score)
        if rule.min_revenue is not None:
            conds.append(F.col("revenue") >= rule.min_revenue)
        cond = conds[0] if len(conds) == 1 else conds[0] | conds[1]
        expr = F.when(cond, rule.name) if expr is None else expr.when(cond, rule.name)
    return expr.otherwise(rules.segments[-1].name)


def session_frequency(rules: SegmentationRules, lookback_days: int) -> F.Column:
    per_day = F.col("total_sessions") / F.lit(float(lookback_days))
    expr = None
    for rule in rules.session_frequency:
        cond = per_day >= rule.min_sessions_per_day
        expr = F.when(cond, rule.name) if expr is None else expr.when(cond, rule.name)
    return expr.otherwise(rules.session_frequency[-1].name)


def user_segments(events: DataFrame, sessions: DataFrame, *, as_of_date, lookback_days: int,
                  rules: SegmentationRules) -> DataFrame:
    """One row per user seen in the lookback window (CONTRACT §3, user_segments)."""
    require_columns(events, "event_id", "user_id", "event_type", "event_timestamp", "session_id",
                    "app_type", "revenue")
    distinct_events = events.dropDuplicates(["event_id"])
    is_purchase = F.col("event_type") == "purchase"
    device_col = "device_type" if "device_type" in events.columns else None
    # Every per-user metric in one aggregation after one de-duplication (see hourly_aggregates);
    # mode(..., deterministic) breaks ties by the lowest value, i.e. alphabetically.
    activity = distinct_events.groupBy("user_id").agg(
        F.count(F.lit(1)).alias("total_events"),
        F.size(F.collect_set(F.to_date("event_timestamp"))).alias("active_days"),
        F.size(F.collect_set("session_id")).alias("total_sessions"),
        F.max("event_timestamp").alias("last_seen"),
        F.sum(is_purchase.cast("long")).alias("purchases"),
        F.sum(F.when(is_purchase, F.coalesce(F.col("revenue"), F.lit(0.0))).otherwise(0.0)).alias("revenue"),
        F.mode("app_type", deterministic=True).alias("preferred_app_type"),
        *([F.mode(device_col, deterministic=True).alias(f"preferred_{device_col}")] if device_col else []),
    )
    durations = sessions.groupBy("user_id").agg(F.avg("duration_seconds").alias("avg_session_duration_s"))
    result = activity.join(durations, on="user_id", how="left")
    scored = result.withColumn("engagement_score", engagement_score(rules))
    return scored.select(
        "user_id",
        F.lit(as_of_date).cast("date").alias("as_of_date"),
        F.lit(lookback_days).alias("lookback_days"),
        F.col("total_events").cast("long"), F.col("active_days").cast("long"),
        F.col("total_sessions").cast("long"), F.col("purchases").cast("long"),
        F.round("revenue", 2).alias("revenue"),
        "avg_session_duration_s", "engagement_score",
        segment_of(rules).alias("segment"),
        session_frequency(rules, lookback_days).alias("session_frequency"),
        F.col("preferred_app_type"),
        *([F.col(f"preferred_{device_col}").alias("preferred_device")] if device_col else []),
        "last_seen",
    )
