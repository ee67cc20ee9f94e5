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
from utils.fanout import FileSink, split_validated, start_file_sinks, tagged_union
from utils.spark_utils import read_kafka_stream
from utils.streaming_job import QuerySpec, run_streaming_job

JOB = "clickstream_analysis"
DATASET = "clickstream_sessions"
QUARANTINE = "quarantine"


def build_sessions(clicks: DataFrame, *, gap: str) -> DataFrame:
    """Valid clicks (extracted, watermarked, partitioned by click_id: `split_validated`) ->
    closed sessions."""
    deduped = clicks.dropDuplicatesWithinWatermark(["click_id"])
    deduped = deduped.observe("deduplicated", F.count(F.lit(1)).alias("clicks"))
    return X.sessionize_clicks(deduped, gap=gap)


def outputs(raw: DataFrame, settings: Settings) -> dict[str, DataFrame]:
    """Kafka rows of clickstream -> the sessions and the quarantine, from one read of each record."""
    checked = raw.transform(X.with_json_validation, X.CLICKSTREAM_SPEC)
    clicks, quarantine = split_validated(checked, X.extract_clicks, key="click_id",
                                         event_time="event_timestamp",
                                         watermark=settings.clickstream_watermark,
                                         partitions=settings.spark_shuffle_partitions)
    return {DATASET: build_sessions(clicks, gap=settings.clickstream_session_gap),
            QUARANTINE: quarantine}


def sinks(settings: Settings) -> list[FileSink]:
    return [FileSink(DATASET, settings.dataset_path(DATASET), ["session_date"]),
            FileSink(QUARANTINE, settings.quarantine_path("clickstream"), ["quarantine_date"])]


def build(spark: SparkSession, settings: Settings, available_now: bool) -> list[QuerySpec]:
    def start():
        raw = read_kafka_stream(spark, settings.topic_clickstream, settings)
        return start_file_sinks(tagged_union(outputs(raw, settings)), sinks(settings),
                                checkpoint_location=settings.checkpoint_path(JOB, "clickstream_topic"),
                                query_name=DATASET, settings=settings, available_now=available_now)

    return [QuerySpec(DATASET, start)]


if __name__ == "__main__":
    sys.exit(run_streaming_job(JOB, build, __doc__))
