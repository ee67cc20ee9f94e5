"""Usage: python jobs/streaming/clickstream_analysis.py [--available-now]

Clickstream sessions: clickstream -> clickstream_sessions/ (partitioned by session_date).

A session (session_id) closes after CLICKSTREAM_SESSION_GAP of inactivity (default 30 minutes)
and is written once, when the watermark passes its end. Re-delivered clicks (same click_id) count
once. Malformed clicks go to _quarantine/clickstream/.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from configs.spark_config import Settings
from utils import transformations as X
from utils.quarantine import QuarantineFollower
from utils.spark_utils import read_kafka_stream, write_parquet_stream
from utils.streaming_job import QuerySpec, run_streaming_job

JOB = "clickstream_analysis"
DATASET = "clickstream_sessions"


def build_sessions(checked: DataFrame, *, gap: str, watermark: str) -> DataFrame:
    clicks = checked.transform(X.filter_valid_records).transform(X.extract_clicks)
    deduped = X.remove_duplicates(clicks, id_cols=["click_id"], time_col="event_timestamp",
                                  watermark=watermark)
    deduped = deduped.observe("deduplicated", F.count(F.lit(1)).alias("clicks"))
    return X.sessionize_clicks(deduped, gap=gap)


def build(spark: SparkSession, settings: Settings, available_now: bool) -> list[QuerySpec]:
    def validate(raw: DataFrame) -> DataFrame:
        return raw.transform(X.with_json_validation, X.CLICKSTREAM_SPEC)

    def start_sessions():
        raw = read_kafka_stream(spark, settings.topic_clickstream, settings)
        sessions = build_sessions(X.count_records(validate(raw), "consumed"),
                                  gap=settings.clickstream_session_gap,
                                  watermark=settings.clickstream_watermark)
        return write_parquet_stream(
            sessions, path=settings.dataset_path(DATASET),
            checkpoint_location=settings.checkpoint_path(JOB, DATASET), query_name=DATASET,
            settings=settings, partition_by=["session_date"], available_now=available_now)

    quarantine = QuarantineFollower(spark, settings, job=JOB, query_name=DATASET, topic="clickstream",
                                    validate=validate)
    return [QuerySpec(DATASET, start_sessions, quarantine=quarantine)]


if __name__ == "__main__":
    sys.exit(run_streaming_job(JOB, build, __doc__))
