"""Usage: python jobs/streaming/data_enrichment.py [--available-now]

Enriched events: app_events (deduplicated) joined with the user master data and the latest
user_segments -> enriched_events/ (by event_date). Also lands external_data ->
external_data/ (by source, fetch_date), with its malformed records in _quarantine/external_data/.

The user master data (USER_MASTER_PATH) and user_segments/ are static inputs: every
USER_MASTER_REFRESH_SECONDS (default 300) the job checks them, and when they changed it restarts
the enrichment query from its checkpoint after the running micro-batch, so new master data is
used without a process restart and without losing or repeating a record. Malformed app events
are quarantined by event_aggregation (which owns _quarantine/app_events/); here they are counted.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from configs.spark_config import Settings
from utils import storage
from utils import transformations as X
from utils.quarantine import QuarantineFollower
from utils.spark_utils import read_kafka_stream, write_parquet_stream
from utils.streaming_job import QuerySpec, run_streaming_job

JOB = "data_enrichment"
ENRICHED = "enriched_events"
EXTERNAL = "external_data"
SEGMENTS = "user_segments"


def read_user_master(spark: SparkSession, location: str) -> DataFrame:
    """User master data from Parquet, or CSV (with a header) when the location ends in .csv."""
    if location.endswith(".csv"):
        return spark.read.option("header", "true").csv(location)
    return spark.read.parquet(location)


def read_segments(spark: SparkSession, location: str) -> DataFrame | None:
    return spark.read.parquet(location) if storage.files_signature(spark, location) else None


def enrich_events(checked: DataFrame, users: DataFrame, segments: DataFrame | None, *,
                  watermark: str) -> DataFrame:
    events = checked.transform(X.filter_valid_records).transform(X.extract_app_events)
    deduped = X.remove_duplicates(events, id_cols=["event_id"], time_col="event_timestamp",
                                  watermark=watermark)
    deduped = deduped.observe("deduplicated", F.count(F.lit(1)).alias("events"))
    enriched = X.enrich_with_user_data(deduped, X.prepare_user_master(users))
    return X.enrich_with_user_segment(enriched, segments).transform(X.finalize_enriched)


def build(spark: SparkSession, settings: Settings, available_now: bool) -> list[QuerySpec]:
    segments_path = settings.dataset_path(SEGMENTS)

    def start_enriched():
        raw = read_kafka_stream(spark, settings.topic_app_events, settings)
        checked = X.count_records(raw.transform(X.with_json_validation, X.APP_EVENTS_SPEC), "consumed")
        enriched = enrich_events(checked, read_user_master(spark, settings.user_master_path),
                                 read_segments(spark, segments_path),
                                 watermark=settings.enrichment_watermark)
        return write_parquet_stream(
            enriched, path=settings.dataset_path(ENRICHED),
            checkpoint_location=settings.checkpoint_path(JOB, ENRICHED), query_name=ENRICHED,
            settings=settings, partition_by=["event_date"], available_now=available_now)

    def validate_external(raw: DataFrame) -> DataFrame:
        return raw.transform(X.with_json_validation, X.EXTERNAL_DATA_SPEC)

    def start_external():
        raw = read_kafka_stream(spark, settings.topic_external_data, settings)
        records = (X.count_records(validate_external(raw), "consumed")
                   .transform(X.filter_valid_records).transform(X.extract_external_data))
        return write_parquet_stream(
            records, path=settings.dataset_path(EXTERNAL),
            checkpoint_location=settings.checkpoint_path(JOB, EXTERNAL), query_name=EXTERNAL,
            settings=settings, partition_by=["source", "fetch_date"], available_now=available_now)

    def static_inputs() -> tuple:
        return (storage.files_signature(spark, settings.user_master_path),
                storage.files_signature(spark, segments_path))

    return [QuerySpec(ENRICHED, start_enriched, refresh_signature=static_inputs),
            QuerySpec(EXTERNAL, start_external, quarantine=QuarantineFollower(
                spark, settings, job=JOB, query_name=EXTERNAL, topic="external_data",
                validate=validate_external, earlier_checkpoint="external_quarantine"))]


if __name__ == "__main__":
    sys.exit(run_streaming_job(JOB, build, __doc__, needs_user_master=True))
