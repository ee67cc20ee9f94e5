"""Usage: python jobs/streaming/cdc_transformation.py [--available-now]

Debezium change events: cdc_changes -> cdc_transformed/ (by change_date) and
cdc_table_summary/ (1-minute window × table, by summary_date).

Accepts the bare envelope and the `{"schema", "payload"}` form. op c/u/d/r/t become
INSERT/UPDATE/DELETE/SNAPSHOT/TRUNCATE; tombstones (null values) and logical decoding messages
(op m) are counted, not written. Unknown tables pass through. Bad records go to
_quarantine/cdc_changes/.
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

JOB = "cdc_transformation"
CHANGES = "cdc_transformed"
SUMMARY = "cdc_table_summary"


def row_changes(checked: DataFrame) -> DataFrame:
    """Valid change events, minus tombstones and messages, as cdc_transformed rows."""
    op = F.try_variant_get(F.col("_env"), "$.op", "string")
    counted = checked.observe(
        "consumed",
        F.count(F.lit(1)).alias("records"),
        F.sum(F.col("_tombstone").cast("long")).alias("tombstones"),
        F.sum(F.col("_error").isNotNull().cast("long")).alias("quarantined"),
        F.sum(((op == "m") & F.col("_error").isNull()).cast("long")).alias("messages"),
    )
    valid = counted.filter(~F.col("_tombstone") & F.col("_error").isNull() & (op != "m"))
    return X.transform_cdc(valid)


def build(spark: SparkSession, settings: Settings, available_now: bool) -> list[QuerySpec]:
    def checked() -> DataFrame:
        return read_kafka_stream(spark, settings.topic_cdc_changes, settings).transform(X.validate_debezium)

    def start_changes():
        return write_parquet_stream(
            row_changes(checked()), path=settings.dataset_path(CHANGES),
            checkpoint_location=settings.checkpoint_path(JOB, CHANGES), query_name=CHANGES,
            settings=settings, partition_by=["change_date"], available_now=available_now)

    def start_summary():
        changes = row_changes(checked()).withWatermark("source_ts", settings.cdc_watermark)
        summary = X.summarize_cdc(changes, window=settings.cdc_summary_window)
        return write_parquet_stream(
            summary, path=settings.dataset_path(SUMMARY),
            checkpoint_location=settings.checkpoint_path(JOB, SUMMARY), query_name=SUMMARY,
            settings=settings, partition_by=["summary_date"], available_now=available_now)

    quarantine = QuarantineFollower(spark, settings, job=JOB, query_name=CHANGES, topic="cdc_changes",
                                    validate=X.validate_debezium)
    return [QuerySpec(CHANGES, start_changes, quarantine=quarantine), QuerySpec(SUMMARY, start_summary)]


if __name__ == "__main__":
    sys.exit(run_streaming_job(JOB, build, __doc__))
