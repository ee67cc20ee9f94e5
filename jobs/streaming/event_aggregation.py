"""Usage: python jobs/streaming/event_aggregation.py [--available-now]

1-minute event counts: app_events -> events_aggregated_realtime/ (partitioned by event_date).

Each window × user_id × event_type × app_type is written once, when the watermark closes it:
event_count counts distinct event_id (re-deliveries are dropped within the watermark) and
session_ids lists the distinct sessions. Malformed app events go to _quarantine/app_events/.
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

JOB = "event_aggregation"
DATASET = "events_aggregated_realtime"


def aggregate_events(checked: DataFrame, *, window: str, watermark: str) -> DataFrame:
    """Validated Kafka rows -> closed 1-minute windows (the job's whole transformation)."""
    events = checked.transform(X.filter_valid_records).transform(X.extract_app_events)
    deduped = X.remove_duplicates(events, id_cols=["event_id"], time_col="event_timestamp",
                                  watermark=watermark)
    deduped = deduped.observe("deduplicated", F.count(F.lit(1)).alias("events"))
    return X.aggregate_by_user_window(deduped, time_col="event_timestamp", window=window)


def build(spark: SparkSession, settings: Settings, available_now: bool) -> list[QuerySpec]:
    def validate(raw: DataFrame) -> DataFrame:
        return raw.transform(X.with_json_validation, X.APP_EVENTS_SPEC)

    def start_windows():
        raw = read_kafka_stream(spark, settings.topic_app_events, settings)
        windows = aggregate_events(X.count_records(validate(raw), "consumed"),
                                   window=settings.event_aggregation_window,
                                   watermark=settings.event_aggregation_watermark)
        return write_parquet_stream(
            windows, path=settings.dataset_path(DATASET),
            checkpoint_location=settings.checkpoint_path(JOB, DATASET), query_name=DATASET,
            settings=settings, partition_by=["event_date"], available_now=available_now)

    quarantine = QuarantineFollower(spark, settings, job=JOB, query_name=DATASET, topic="app_events",
                                    validate=validate)
    return [QuerySpec(DATASET, start_windows, quarantine=quarantine)]


if __name__ == "__main__":
    sys.exit(run_streaming_job(JOB, build, __doc__))
