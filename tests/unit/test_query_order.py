"""A query that reads another query's output (QuerySpec.after): it starts once that output exists,
and with --available-now once that query has finished, so it sees all of it exactly once."""

from __future__ import annotations

import json
import logging

import pytest
from pyspark.sql import functions as F

from configs.logging_config import ContextLogger
from configs.spark_config import load_settings
from jobs.streaming import cdc_transformation as cdc
from utils.spark_utils import write_parquet_stream
from utils.streaming_job import GracefulStop, QueryRunner, QuerySpec

LOG = ContextLogger(logging.getLogger("test_query_order"), {})


def _runner(specs: list[QuerySpec], *, available_now: bool) -> QueryRunner:
    return QueryRunner(specs, LOG, stop_timeout=30, refresh_seconds=3600, stopper=GracefulStop(),
                       available_now=available_now)


def test_after_must_name_a_query_of_the_job():
    with pytest.raises(ValueError, match="upstreem"):
        _runner([QuerySpec("a", lambda: None), QuerySpec("b", lambda: None, after="upstreem")],
                available_now=True)


@pytest.mark.parametrize("available_now", [True, False])
def test_a_downstream_query_reads_all_of_its_upstream_output_once(spark, tmp_path, available_now):
    source = tmp_path / "in"
    source.mkdir()
    for n in range(3):  # three upstream batches: one file each
        (source / f"{n}.json").write_text("\n".join(json.dumps({"k": n, "v": i}) for i in range(5)))
    settings = load_settings(output_root=str(tmp_path / "out"), checkpoint_root=str(tmp_path / "ckpt"),
                             trigger_interval="1 second")
    middle, sums = settings.dataset_path("middle"), settings.dataset_path("sums")

    def upstream():
        rows = spark.readStream.schema("k int, v int").option("maxFilesPerTrigger", 1).json(str(source))
        return write_parquet_stream(rows.withColumn("double", F.col("v") * 2), path=middle,
                                    checkpoint_location=settings.checkpoint_path("j", "middle"),
                                    query_name="middle", settings=settings, available_now=available_now)

    def downstream():
        # Schema on read, as a file source needs: the upstream's output columns.
        rows = spark.readStream.schema("k int, v int, double int").parquet(middle)
        return write_parquet_stream(rows.where("double >= 4"), path=sums,
                                    checkpoint_location=settings.checkpoint_path("j", "sums"),
                                    query_name="sums", settings=settings, available_now=available_now)

    runner = _runner([QuerySpec("middle", upstream), QuerySpec("sums", downstream, after="middle")],
                     available_now=available_now)
    if available_now:
        assert runner.run() == 0
    else:
        runner.start_all()
        assert "sums" not in runner.queries, "waits for the upstream's first batch"
        runner.queries["middle"].processAllAvailable()
        runner.start_ready()
        runner.queries["sums"].processAllAvailable()
        for query in runner.queries.values():
            query.stop()
    got = sorted((r.k, r.v) for r in spark.read.parquet(sums).collect())
    assert got == [(k, v) for k in range(3) for v in range(2, 5)]


def test_cdc_refuses_the_summary_checkpoint_that_read_the_topic(tmp_path):
    settings = load_settings(output_root=str(tmp_path / "out"), checkpoint_root=str(tmp_path / "ckpt"))
    cdc.refuse_old_summary_checkpoint(settings)  # a fresh deployment starts
    old = tmp_path / "ckpt" / cdc.JOB / cdc.SUMMARY
    old.mkdir(parents=True)
    with pytest.raises(SystemExit, match=f"delete {old}"):
        cdc.refuse_old_summary_checkpoint(settings)
    (tmp_path / "ckpt" / cdc.JOB / cdc.SUMMARY_CHECKPOINT).mkdir()
    cdc.refuse_old_summary_checkpoint(settings)  # upgraded already: the old folder is not in the way
