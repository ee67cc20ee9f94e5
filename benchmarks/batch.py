"""Batch benchmarks: each batch job against DuckDB on the same files, and a ranged backfill
against one application per hour."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from benchmarks.common import MASTER
from configs.spark_config import PROJECT_ROOT, load_settings

# Deduplicated like the Spark jobs: the date/hour filter first, then one row per event_id.
BATCH_SQL = {
    "hourly_aggregate": """
        WITH e AS (SELECT DISTINCT ON (event_id) * FROM events
                   WHERE event_date = DATE '{day}' AND hour(event_timestamp) = 12)
        SELECT date_trunc('hour', event_timestamp) AS hour_start, event_type, app_type,
               count(*) AS event_count, count(DISTINCT user_id) AS unique_users,
               count(DISTINCT session_id) AS unique_sessions, sum(coalesce(revenue, 0)) AS revenue
        FROM e GROUP BY ALL""",
    "daily_summary": """
        WITH e AS (SELECT DISTINCT ON (event_id) * FROM events WHERE event_date = DATE '{day}'),
        per_user AS (SELECT k, user_id, count(*) AS n FROM e, unnest([app_type, 'all']) AS t(k) GROUP BY ALL),
        ek AS (SELECT k, sum(n) AS total_events, count(*) AS active_users,
                      quantile_cont(n, [0.5, 0.95]) AS epu FROM per_user GROUP BY k),
        s AS (SELECT k, count(*) AS total_sessions, avg(duration_seconds) AS avg_d,
                     quantile_cont(duration_seconds, [0.5, 0.95]) AS d, quantile_cont(click_count, [0.5, 0.95]) AS c
              FROM sessions, unnest([app_type, 'all']) AS t(k) WHERE session_date = DATE '{day}' GROUP BY k)
        SELECT * FROM ek FULL JOIN s USING (k)""",
    "user_segmentation": """
        WITH e AS (SELECT DISTINCT ON (event_id) * FROM events),
        a AS (SELECT user_id, count(*) AS total_events, count(DISTINCT event_date) AS active_days,
                     count(DISTINCT session_id) AS total_sessions, sum((event_type = 'purchase')::int) AS purchases,
                     sum(CASE WHEN event_type = 'purchase' THEN coalesce(revenue, 0) END) AS revenue,
                     max(event_timestamp) AS last_seen, mode(app_type) AS preferred_app_type,
                     mode(device_type) AS preferred_device
              FROM e GROUP BY user_id),
        d AS (SELECT user_id, avg(duration_seconds) AS avg_session_duration_s FROM sessions GROUP BY user_id)
        SELECT * FROM a LEFT JOIN d USING (user_id)""",
}


SCANNED = ["event_id", "user_id", "session_id", "app_type", "device_type", "event_type", "revenue",
           "event_timestamp"]


def bench_batch(n: int) -> dict:
    import duckdb

    from benchmarks.synthetic import app_events, as_enriched, sessions_from_events
    from utils import kpis
    from utils.spark_utils import create_spark_session

    settings = load_settings()
    t = time.monotonic()
    spark = create_spark_session("bench-batch", settings, master=MASTER)
    session_start = time.monotonic() - t
    data = Path(tempfile.mkdtemp(prefix="bench-batch-"))
    out: dict = {"events": n, "session_start_s": round(session_start, 1)}
    try:
        events = app_events(spark, n, start="2026-11-20 00:00:00", span_seconds=3 * 86_400)
        t = time.monotonic()
        as_enriched(events).write.partitionBy("event_date").parquet(str(data / "enriched_events"))
        enriched = spark.read.parquet(str(data / "enriched_events"))
        sessions_from_events(enriched).write.partitionBy("session_date").parquet(str(data / "sessions"))
        out["write_inputs_s"] = round(time.monotonic() - t, 1)
        sessions = spark.read.parquet(str(data / "sessions"))
        day = date(2026, 11, 21)
        runs = {
            "hourly_aggregate": lambda: kpis.hourly_aggregates(kpis.events_in_hour(
                enriched.filter(enriched.event_date == day), datetime(2026, 11, 21, 12, tzinfo=UTC))),
            "daily_summary": lambda: kpis.daily_summary(enriched.filter(enriched.event_date == day),
                                                        sessions.filter(sessions.session_date == day),
                                                        summary_date=day),
            "user_segmentation": lambda: kpis.user_segments(enriched, sessions, as_of_date=date(2026, 11, 22),
                                                            lookback_days=3, rules=kpis.load_segmentation_rules()),
        }
        con = duckdb.connect()
        con.execute(f"CREATE VIEW events AS SELECT * FROM read_parquet('{data}/enriched_events/*/*.parquet', "
                    "hive_partitioning = true)")
        con.execute(f"CREATE VIEW sessions AS SELECT * FROM read_parquet('{data}/sessions/*/*.parquet', "
                    "hive_partitioning = true)")
        # The floor under every Spark figure: reading the columns the jobs use, nothing else.
        t = time.monotonic()
        enriched.select(*SCANNED).write.format("noop").mode("overwrite").save()
        out["spark_scan_s"] = round(time.monotonic() - t, 2)
        for name, build in runs.items():
            target = data / "out" / name
            t = time.monotonic()
            build().write.mode("overwrite").parquet(str(target))
            spark_s = time.monotonic() - t
            t = time.monotonic()
            con.execute(f"COPY ({BATCH_SQL[name].format(day=day)}) TO '{data}/duck_{name}.parquet' (FORMAT parquet)")
            duck_s = time.monotonic() - t
            spark_rows = spark.read.parquet(str(target)).count()
            duck_rows = con.execute(f"SELECT count(*) FROM '{data}/duck_{name}.parquet'").fetchone()[0]
            out[name] = {"spark_s": round(spark_s, 2), "duckdb_s": round(duck_s, 2),
                         "ratio": round(spark_s / duck_s, 1), "rows": spark_rows, "rows_match": spark_rows == duck_rows}
    finally:
        spark.stop()
        shutil.rmtree(data, ignore_errors=True)
    return out


def bench_backfill(hours: int, events: int, singles: int | None = None) -> dict:
    """An hourly backfill of `hours` hours: one ranged run (one Spark application) against one
    run per hour (the scheduling before ranges), on the same enriched_events, in one run; the
    outputs must be identical. With `singles`, only the first `singles` hours run one application
    each, and the time of all `hours` is that mean times `hours` (marked as estimated)."""
    import pandas as pd

    from benchmarks.synthetic import app_events, as_enriched
    from utils.launch import spark_submit_command, spark_submit_env
    from utils.spark_utils import create_spark_session

    settings = load_settings()
    root = Path(tempfile.mkdtemp(prefix="bench-backfill-"))
    first = datetime(2026, 11, 20, tzinfo=UTC)
    try:
        spark = create_spark_session("bench-backfill-load", settings, master=MASTER)
        (as_enriched(app_events(spark, events, start="2026-11-20 00:00:00", span_seconds=hours * 3600))
         .write.partitionBy("event_date").parquet(str(root / "enriched_events")))
        spark.stop()

        def run(name: str, *args: str) -> None:
            out = root / name
            (out / "outputs").mkdir(parents=True, exist_ok=True)
            link = out / "outputs" / "enriched_events"
            if not link.exists():
                link.symlink_to(root / "enriched_events")
            env = spark_submit_env({**os.environ, "OUTPUT_ROOT": str(out / "outputs"),
                                    "STATE_ROOT": str(out / "state"), "LOG_DIR": str(out / "logs"),
                                    "SPARK_EVENT_LOG_ENABLED": "false"})
            cmd = spark_submit_command(PROJECT_ROOT / "jobs" / "batch" / "hourly_aggregate.py", [*args, "--force"],
                                       master=MASTER, streaming=False)
            subprocess.run(cmd, check=True, cwd=PROJECT_ROOT, env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)

        label = "%Y-%m-%d %H:00:00"
        t = time.monotonic()
        last = first + timedelta(hours=hours - 1)
        run("range", "--from-hour", first.strftime(label), "--to-hour", last.strftime(label))
        range_s = time.monotonic() - t
        t = time.monotonic()
        ran = min(singles or hours, hours)
        for h in range(ran):
            run("single", "--target-hour", (first + timedelta(hours=h)).strftime(label))
        singles_s = (time.monotonic() - t) * hours / ran

        def read(name: str) -> pd.DataFrame:
            df = pd.read_parquet(root / name / "outputs" / "hourly_aggregates")
            df = df[pd.to_datetime(df["hour_start"], utc=True) < first + timedelta(hours=ran)]
            return df.sort_values(["hour_start", "event_type", "app_type"]).reset_index(drop=True)

        same = read("range").astype(str).equals(read("single").astype(str))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return {"hours": hours, "events": events, "range_s": round(range_s, 1), "singles_s": round(singles_s, 1),
            "speedup": round(singles_s / range_s, 1), "outputs_identical": same,
            "singles_run": ran, "singles_estimated": ran < hours}


def bench_small_files(events: int, days: int = 7, files_per_hour: tuple[int, ...] = (147, 25, 1),
                      hours: int = 6) -> dict:
    """What many small files cost the batch jobs: `days` of enriched_events written with each
    number of files per hour (147: what the 10 s trigger left per hour in the sustained runs;
    25: a 1-minute trigger; 1: compacted), then on each layout, in one run, an hourly backfill of
    `hours` hours of the last day (one ranged run: each hour reads the dataset, a week of files
    there) and the last day's daily_summary."""
    from pyspark.sql import functions as F

    from benchmarks.synthetic import app_events, as_enriched, sessions_from_events
    from utils.launch import spark_submit_command, spark_submit_env
    from utils.spark_utils import create_spark_session

    settings = load_settings()
    root = Path(tempfile.mkdtemp(prefix="bench-small-files-"))
    first = datetime(2026, 11, 20, tzinfo=UTC)
    out: dict = {"events": events, "days": days, "layouts": {}}
    try:
        spark = create_spark_session("bench-small-files-load", settings, master=MASTER)
        enriched = as_enriched(app_events(spark, events, start="2026-11-20 00:00:00", span_seconds=days * 86_400))
        enriched = enriched.withColumn("_hour", F.date_trunc("hour", "event_timestamp")).cache()
        sessions = sessions_from_events(enriched)
        for n in files_per_hour:
            base = root / f"{n}" / "outputs"
            t = time.monotonic()
            # n files per hour: one task per hour, each writing files of at most 1/n of the hour's rows.
            per_file = -(-events // (days * 24 * n))
            (enriched.repartitionByRange(days * 24, "_hour").drop("_hour").write
             .option("maxRecordsPerFile", per_file).partitionBy("event_date")
             .parquet(str(base / "enriched_events")))
            sessions.write.partitionBy("session_date").parquet(str(base / "clickstream_sessions"))
            files = sum(1 for _ in (base / "enriched_events").rglob("*.parquet"))
            out["layouts"][n] = {"files": files, "write_s": round(time.monotonic() - t, 1)}
        spark.stop()

        def run(n: int, script: str, *args: str) -> float:
            base = root / f"{n}"
            env = spark_submit_env({**os.environ, "OUTPUT_ROOT": str(base / "outputs"),
                                    "STATE_ROOT": str(base / "state"), "LOG_DIR": str(base / "logs"),
                                    "SPARK_EVENT_LOG_ENABLED": "false"})
            cmd = spark_submit_command(PROJECT_ROOT / "jobs" / "batch" / f"{script}.py", [*args, "--force"],
                                       master=MASTER, streaming=False)
            t = time.monotonic()
            subprocess.run(cmd, check=True, cwd=PROJECT_ROOT, env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
            return round(time.monotonic() - t, 1)

        label = "%Y-%m-%d %H:00:00"
        last_day = first + timedelta(days=days - 1)
        out["hours"] = hours
        for n in files_per_hour:
            out["layouts"][n]["hourly_range_s"] = run(
                n, "hourly_aggregate", "--from-hour", (last_day + timedelta(hours=12)).strftime(label),
                "--to-hour", (last_day + timedelta(hours=11 + hours)).strftime(label))
            out["layouts"][n]["daily_s"] = run(n, "daily_summary", "--target-date", last_day.strftime("%Y-%m-%d"))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return out
