"""Spark session, Kafka/file stream I/O and progress logging shared by all jobs.

The layout of the topics' records is declared in `utils.transforms.records`."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.streaming import StreamingQuery, StreamingQueryListener

from configs.logging_config import ContextLogger, get_logger
from configs.spark_config import Settings, get_settings
from utils.launch import connector_jars, local_ip_env, spark_conf
from utils.progress import read_progress_file

_log = get_logger(__name__)


# --- Session -------------------------------------------------------------------------------------


def create_spark_session(
    app_name: str,
    settings: Settings | None = None,
    *,
    streaming: bool = False,
    master: str | None = None,
    extra_conf: dict[str, str] | None = None,
) -> SparkSession:
    """Build (or reuse) the SparkSession of a job.

    Under `spark-submit` the master given on its command line wins; run as a plain Python
    script, the session goes to `SPARK_MASTER_URL` (or `master`).
    """
    settings = settings or get_settings()
    if streaming and not connector_jars(settings):
        raise FileNotFoundError(f"no Kafka connector jars under {settings.jars_dir / 'spark'}; run 'make setup' first")
    # The driver JVM (started by pyspark when run as a plain script) binds its UI to every
    # interface unless SPARK_LOCAL_IP is set.
    local_ip_env(os.environ, settings)
    builder = SparkSession.builder
    for key, value in {**spark_conf(app_name, settings, streaming=streaming),
                       **(extra_conf or {})}.items():
        builder = builder.config(key, value)
    if master or "PYSPARK_GATEWAY_PORT" not in os.environ:
        builder = builder.master(master or settings.spark_master_url)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel(settings.spark_log_level)
    return spark


# --- Kafka and file streams ----------------------------------------------------------------------


def read_kafka_stream(
    spark: SparkSession,
    topic: str,
    settings: Settings,
    *,
    starting_offsets: str | None = None,
    max_offsets_per_trigger: int | None = None,
) -> DataFrame:
    """A streaming DataFrame over one topic: key, value (binary), topic, partition, offset, timestamp."""
    reader = (
        spark.readStream.format("kafka")
        .options(**settings.kafka_options())
        .option("subscribe", topic)
        .option("startingOffsets", starting_offsets or settings.kafka_starting_offsets)
        .option("failOnDataLoss", str(settings.kafka_fail_on_data_loss).lower())
        .option("includeHeaders", "false")
    )
    limit = max_offsets_per_trigger or settings.kafka_max_offsets_per_trigger
    if limit:
        reader = reader.option("maxOffsetsPerTrigger", str(limit))
    return reader.load()


def read_kafka_batch(spark: SparkSession, topic: str, settings: Settings) -> DataFrame:
    """Everything currently on a topic, as a batch DataFrame (tests, benchmarks, audits)."""
    return (
        spark.read.format("kafka")
        .options(**settings.kafka_options())
        .option("subscribe", topic)
        .option("startingOffsets", "earliest")
        .option("endingOffsets", "latest")
        .option("failOnDataLoss", str(settings.kafka_fail_on_data_loss).lower())
        .load()
    )


def _start(writer, *, checkpoint_location: str, query_name: str, settings: Settings,
           available_now: bool, path: str | None = None) -> StreamingQuery:
    if not checkpoint_location:
        raise ValueError("checkpoint_location is required: outputs must be exactly-once")
    writer = writer.option("checkpointLocation", checkpoint_location).queryName(query_name)
    if available_now:
        writer = writer.trigger(availableNow=True)
    else:
        writer = writer.trigger(processingTime=settings.trigger_interval)
    return writer.start(path) if path else writer.start()


def write_file_stream(
    df: DataFrame,
    *,
    path: str,
    checkpoint_location: str,
    query_name: str,
    settings: Settings,
    fmt: str = "parquet",
    partition_by: Sequence[str] = (),
    available_now: bool = False,
    options: dict[str, str] | None = None,
) -> StreamingQuery:
    """Append a stream to a checkpointed file sink (exactly-once per input record)."""
    writer = df.writeStream.format(fmt).outputMode("append").options(**(options or {}))
    if partition_by:
        writer = writer.partitionBy(*partition_by)
    return _start(writer, checkpoint_location=checkpoint_location, query_name=query_name,
                  settings=settings, available_now=available_now, path=path)


def write_parquet_stream(df: DataFrame, **kwargs: Any) -> StreamingQuery:
    return write_file_stream(df, fmt="parquet", **kwargs)


def write_csv_stream(df: DataFrame, **kwargs: Any) -> StreamingQuery:
    return write_file_stream(df, fmt="csv", options={"header": "true"}, **kwargs)


def write_kafka_stream(
    df: DataFrame,
    *,
    topic: str,
    checkpoint_location: str,
    query_name: str,
    settings: Settings,
    available_now: bool = False,
) -> StreamingQuery:
    """Write a stream with `key` and `value` columns to a Kafka topic (at-least-once)."""
    writer = df.writeStream.format("kafka").options(**settings.kafka_options()).option("topic", topic)
    return _start(writer, checkpoint_location=checkpoint_location, query_name=query_name,
                  settings=settings, available_now=available_now)


# --- Progress logging ----------------------------------------------------------


def _offsets(text: str | None) -> dict[str, dict[str, int]] | None:
    """A Kafka source's offsets JSON ({"topic": {"0": 42}}) as a dict; None for other sources."""
    try:
        value = json.loads(text) if text else None
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def progress_record(progress: Any) -> dict[str, Any]:
    """The fields of a StreamingQueryProgress that operators watch, as a flat dict, plus each
    source's committed end offsets per topic and partition (for the Kafka lag)."""
    state_ops = progress.stateOperators or []
    observed = {}
    for name, row in (progress.observedMetrics or {}).items():
        observed.update({f"{name}.{k}": v for k, v in row.asDict().items()})
    return {
        "query_name": progress.name,
        "query_id": str(progress.id),
        "query_run_id": str(progress.runId),
        "batch_id": progress.batchId,
        "input_rows": progress.numInputRows,
        "input_rows_per_second": progress.inputRowsPerSecond,
        "processed_rows_per_second": progress.processedRowsPerSecond,
        "batch_duration_ms": (progress.durationMs or {}).get("triggerExecution"),
        # Where the batch's time went (addBatch, queryPlanning, latestOffset, walCommit...).
        "phases_ms": {k: v for k, v in (progress.durationMs or {}).items() if k != "triggerExecution"},
        "watermark": (progress.eventTime or {}).get("watermark"),
        "state_rows": sum(op.numRowsTotal for op in state_ops),
        "rows_dropped_by_watermark": sum(op.numRowsDroppedByWatermark for op in state_ops),
        "sink_rows": progress.sink.numOutputRows if progress.sink else None,
        "end_offsets": {topic: parts for s in (progress.sources or [])
                        for topic, parts in (_offsets(s.endOffset) or {}).items()},
        **observed,
    }


class ProgressLogger(StreamingQueryListener):
    """Logs each micro-batch's progress as one JSON record, and remembers the last one.

    `progress_file`, when given, is rewritten with the latest progress per query so that a
    supervisor can watch staleness without talking to the driver. A query that resumes from its
    checkpoint (same query id) starts from the record the job's earlier run left there, marked
    `carried_over`: a restart with nothing new to read runs no batch, and would otherwise lose
    the last batch id and watermark.
    """

    def __init__(self, log: ContextLogger, progress_file: Path | None = None, app: dict[str, Any] | None = None):
        super().__init__()
        self.log = log
        self.progress_file = progress_file
        # The Spark application and its UI, so that the orchestrator can link to them.
        self.app = app or {}
        self.latest: dict[str, dict[str, Any]] = {}
        self.names: dict[str, str] = {}
        self._lock = threading.Lock()
        self._earlier = read_progress_file(progress_file) if progress_file else {}

    def onQueryStarted(self, event: Any) -> None:
        query_id, name = str(event.id), event.name or str(event.id)
        self.names[query_id] = name
        earlier = self._earlier.get(name)
        if earlier and earlier.get("query_id") == query_id:
            with self._lock:
                self.latest.setdefault(name, {**earlier, "carried_over": True})
        self.log.info("query started", extra={"query_id": query_id, "query_name": event.name})

    def onQueryProgress(self, event: Any) -> None:
        record = progress_record(event.progress)
        self.log.bind(query_id=record["query_id"], batch_id=record["batch_id"]).info(
            "batch progress", extra=record
        )
        record.update(logged_at=time.time(), idle=record["input_rows"] == 0, **self.app)
        with self._lock:
            self.latest[record["query_name"] or record["query_id"]] = record
            self._save()

    def onQueryIdle(self, event: Any) -> None:
        """No new data since the last batch: the query has caught up (and is alive). A query
        restarted with nothing new to read reports only this: it is recorded without a batch."""
        query_id = str(event.id)
        name = self.names.get(query_id, query_id)
        with self._lock:
            record = self.latest.setdefault(name, {"query_id": query_id, "query_name": name, "batch_id": None,
                                                   "input_rows": 0})
            record.update(logged_at=time.time(), idle=True, **self.app)
            self._save()

    def _save(self) -> None:
        if self.progress_file:
            tmp = self.progress_file.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.latest, default=str))
            tmp.replace(self.progress_file)

    def onQueryTerminated(self, event: Any) -> None:
        extra = {"query_id": str(event.id), "exception": event.exception}
        if event.exception:
            self.log.error("query failed", extra=extra)
        else:
            self.log.info("query terminated", extra=extra)
