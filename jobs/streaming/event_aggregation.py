"""Usage: python jobs/streaming/event_aggregation.py [--available-now]

1-minute event counts: app_events -> events_aggregated_realtime/ (partitioned by event_date).

Each window × user_id × event_type × app_type is written once, when the watermark closes it:
event_count counts distinct event_id (re-deliveries are dropped within the watermark) and
session_ids lists the distinct sessions. Malformed app events go to _quarantine/app_events/,
written by the same query: each record is read and validated once (utils/fanout.py).
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

JOB = "event_aggregation"
DATASET = "events_aggregated_realtime"
QUARANTINE = "quarantine"


def aggregate_events(events: DataFrame, *, window: str, watermark: str) -> DataFrame:
    """Valid app events (extracted) -> closed 1-minute windows (the job's whole transformation)."""
    deduped = X.remove_duplicates(events, id_cols=["event_id"], time_col="event_timestamp",
                                  watermark=watermark)
    deduped = deduped.observe("deduplicated", F.count(F.lit(1)).alias("events"))
    return X.aggregate_by_user_window(deduped, time_col="event_timestamp", window=window)


def outputs(raw: DataFrame, settings: Settings) -> dict[str, DataFrame]:
    """Kafka rows of app_events -> the windows and the quarantine, from one read of each record."""
    checked = raw.transform(X.with_json_validation, X.APP_EVENTS_SPEC)
    events, quarantine = split_validated(checked, X.extract_app_events,
                                         partitions=settings.spark_shuffle_partitions)
    windows = aggregate_events(events, window=settings.event_aggregation_window,
                               watermark=settings.event_aggregation_watermark)
    return {DATASET: windows, QUARANTINE: quarantine}


def sinks(settings: Settings) -> list[FileSink]:
    return [FileSink(DATASET, settings.dataset_path(DATASET), ["event_date"]),
            FileSink(QUARANTINE, settings.quarantine_path("app_events"), ["quarantine_date"])]


def build(spark: SparkSession, settings: Settings, available_now: bool) -> list[QuerySpec]:
    def start():
        raw = read_kafka_stream(spark, settings.topic_app_events, settings)
        return start_file_sinks(tagged_union(outputs(raw, settings)), sinks(settings),
                                checkpoint_location=settings.checkpoint_path(JOB, "app_events"),
                                query_name=DATASET, settings=settings, available_now=available_now)

    return [QuerySpec(DATASET, start)]


if __name__ == "__main__":
    sys.exit(run_streaming_job(JOB, build, __doc__))
