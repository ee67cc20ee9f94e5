"""One read of a topic for all of a query's outputs: each record is validated once, and the
results of its valid rows and the quarantine of its invalid ones are written by the same query.

Structured Streaming gives a query one sink, so a job with a quarantine used to run two queries
over its topic, each fetching and validating every record (BENCHMARKS.md "Price of correctness"
measured that). Here:

* `split_validated` packs each validated row into one struct column and sends it through one
  shuffle; the valid branch and the quarantine branch both read that shuffle's output, which
  Spark computes once per micro-batch (EXPLAIN shows a `ReusedExchange`; tests/unit/test_fanout.py
  checks it). The packing is what makes the reuse happen: with plain columns the optimizer prunes
  each branch to the columns it needs, and the two shuffles are no longer the same plan.
* `tagged_union` puts the branches' results (after any stateful steps) into one stream;
* `start_file_sinks` writes each part from `foreachBatch` with Spark's own file sink, so every
  output keeps its `_spark_metadata` log: exactly-once, and read back by `spark.read.parquet`
  as before. A batch that is replayed after a crash is skipped by each sink that logged it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.streaming import StreamingQuery

from configs.spark_config import Settings
from utils.spark_utils import start_query
from utils.transforms.validation import quarantine_columns

ROW = "_row"
QUARANTINE = "_quarantine"
SINK = "_sink"


def split_validated(checked: DataFrame, extract: Callable[..., DataFrame], *,
                    partitions: int) -> tuple[DataFrame, DataFrame]:
    """(the valid rows as `extract` gives them, the quarantine rows) of a validated stream,
    computed once per micro-batch for both. Observes `consumed` (records, quarantined)."""
    invalid = F.col("_error").isNotNull()
    tagged = checked.withColumn(QUARANTINE, F.when(invalid, F.struct(*quarantine_columns())))
    rows = extract(tagged, keep=[QUARANTINE])
    row_quarantine = F.col(f"{ROW}.{QUARANTINE}")
    shared = (
        rows.select(F.struct(*rows.columns).alias(ROW))
        .repartition(partitions, F.col(f"{ROW}.kafka_partition"), F.col(f"{ROW}.kafka_offset"))
        # The per-batch counts; and filters are not pushed below an observation, so both
        # branches keep the same plan up to here.
        .observe("consumed", F.count(F.lit(1)).alias("records"),
                 F.count(row_quarantine).alias("quarantined"))
    )
    valid = shared.where(row_quarantine.isNull()).select(f"{ROW}.*").drop(QUARANTINE)
    quarantine = shared.where(row_quarantine.isNotNull()).select(f"{ROW}.{QUARANTINE}.*")
    return valid, quarantine


def tagged_union(outputs: Mapping[str, DataFrame]) -> DataFrame:
    """One stream of every output's rows: `_sink` names the output, a struct column of that
    name holds the row (null in the other outputs' rows)."""
    parts = [df.select(F.lit(name).alias(SINK), F.struct(*df.columns).alias(name))
             for name, df in outputs.items()]
    union = parts[0]
    for part in parts[1:]:
        union = union.unionByName(part, allowMissingColumns=True)
    return union


@dataclass(frozen=True)
class FileSink:
    """Where one output of a tagged union goes: a Parquet dataset with its own sink log."""

    name: str
    path: str
    partition_by: Sequence[str] = ()


def _spark_file_sink(df: DataFrame, sink: FileSink):
    """Spark's own streaming Parquet sink for `sink.path` (what `writeStream.format("parquet")`
    creates), driven from foreachBatch."""
    spark = df.sparkSession
    jvm = spark._jvm
    utils = jvm.org.apache.spark.api.python.PythonUtils
    return jvm.org.apache.spark.sql.execution.streaming.sinks.FileStreamSink(
        spark._jsparkSession, sink.path,
        jvm.org.apache.spark.sql.execution.datasources.parquet.ParquetFileFormat(),
        utils.toSeq(list(sink.partition_by)), utils.toScalaMap({}))


def start_file_sinks(union: DataFrame, sinks: Sequence[FileSink], *, checkpoint_location: str,
                     query_name: str, settings: Settings, available_now: bool) -> StreamingQuery:
    """Start the query that writes each output of `tagged_union` to its file sink."""
    writers = {sink.name: _spark_file_sink(union, sink) for sink in sinks}

    def write_batch(batch: DataFrame, batch_id: int) -> None:
        # The batch is computed once, whole (its stateful steps must commit even when every
        # sink already logged a replayed batch), then split.
        batch.persist()
        try:
            batch.count()
            for sink in sinks:
                part = batch.where(F.col(SINK) == F.lit(sink.name)).select(f"`{sink.name}`.*")
                writers[sink.name].addBatch(batch_id, part._jdf)
        finally:
            batch.unpersist()

    writer = union.writeStream.foreachBatch(write_batch).outputMode("append")
    return start_query(writer, checkpoint_location=checkpoint_location, query_name=query_name,
                       settings=settings, available_now=available_now)
