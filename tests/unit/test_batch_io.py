"""The batch jobs' output step: exactly the partitions a run produced are replaced, and the rows
written are counted during the write, not by running the query again."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from configs.spark_config import load_settings
from utils.batch_job import write_partitions


@pytest.fixture
def settings(tmp_path):
    return load_settings(output_root=tmp_path)


def rows(spark, day: date, n: int):
    return spark.createDataFrame([(day, f"u{i}", i) for i in range(n)], "summary_date date, user_id string, n int")


def read_back(settings) -> dict[str, int]:
    df = pd.read_parquet(settings.dataset_path("daily"))
    return {str(k): int(v) for k, v in df.groupby("summary_date", observed=True).size().items()}


def test_write_replaces_its_partitions_and_returns_the_rows_written(spark, settings):
    first = rows(spark, date(2026, 11, 24), 3).unionByName(rows(spark, date(2026, 11, 25), 2))
    assert write_partitions(first, settings, "daily", ["summary_date"]) == 5
    assert read_back(settings) == {"2026-11-24": 3, "2026-11-25": 2}
    assert write_partitions(rows(spark, date(2026, 11, 24), 1), settings, "daily", ["summary_date"]) == 1
    assert read_back(settings) == {"2026-11-24": 1, "2026-11-25": 2}


def test_counting_the_rows_runs_no_extra_spark_job(spark, settings, tmp_path):
    df = rows(spark, date(2026, 11, 24), 50).repartition(2)

    def jobs_of(group: str, action) -> int:
        spark.sparkContext.setJobGroup(group, group)
        try:
            action()
        finally:
            spark.sparkContext.setLocalProperty("spark.jobGroup.id", None)
        return len(spark.sparkContext.statusTracker().getJobIdsForGroup(group))

    plain = jobs_of("plain", lambda: df.write.partitionBy("summary_date").parquet(str(tmp_path / "plain")))
    counted = jobs_of("counted", lambda: write_partitions(df, settings, "daily", ["summary_date"]))
    assert counted == plain


def test_an_empty_result_writes_nothing_and_counts_zero(spark, settings):
    # An hour with events on its date but none in the hour: the observed count must still arrive.
    empty = rows(spark, date(2026, 11, 24), 3).filter("n > 100").groupBy("summary_date").count()
    assert write_partitions(empty, settings, "daily", ["summary_date"]) == 0
