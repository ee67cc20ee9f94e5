"""Helpers that work on any DataFrame: column checks, windows, de-duplication, pivots."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pyspark.sql import DataFrame
from pyspark.sql import functions as F


class DataFrameMissingColumnError(ValueError):
    """A transformation was given a DataFrame without a column it needs."""


def require_columns(df: DataFrame, *columns: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise DataFrameMissingColumnError(
            f"missing column(s) {', '.join(missing)}; got {', '.join(df.columns)}"
        )


def add_window_time(df: DataFrame, *, time_col: str, duration: str, prefix: str = "window") -> DataFrame:
    """Add `<prefix>_start` / `<prefix>_end` of the tumbling window holding `time_col`."""
    require_columns(df, time_col)
    w = F.window(F.col(time_col), duration)
    return df.withColumn(f"{prefix}_start", w.start).withColumn(f"{prefix}_end", w.end)


def remove_duplicates(df: DataFrame, *, id_cols: Sequence[str], time_col: str | None = None,
                      watermark: str | None = None) -> DataFrame:
    """Drop re-deliveries of the same id. On a stream, state is kept for `watermark` only."""
    require_columns(df, *id_cols)
    if df.isStreaming:
        if not (time_col and watermark):
            raise ValueError("a streaming dedup needs time_col and watermark to bound its state")
        return df.withWatermark(time_col, watermark).dropDuplicatesWithinWatermark(list(id_cols))
    return df.dropDuplicates(list(id_cols))


def fill_nulls(df: DataFrame, values: Mapping[str, object]) -> DataFrame:
    """Replace nulls column by column (only the columns named)."""
    require_columns(df, *values)
    return df.fillna(dict(values))


def aggregate_by_dimensions(df: DataFrame, *, dims: Sequence[str], count_col: str = "event_count",
                            distinct: Mapping[str, str] | None = None) -> DataFrame:
    """Row count per dimension tuple, plus exact distinct counts of the named columns.

    Distinct counts are sizes of collected sets, not COUNT(DISTINCT): several COUNT(DISTINCT)
    in one aggregation make Spark Expand the input once per distinct column.
    """
    require_columns(df, *dims, *(distinct or {}).values())
    aggs = [F.count(F.lit(1)).alias(count_col)]
    aggs += [F.size(F.collect_set(src)).cast("long").alias(out) for out, src in (distinct or {}).items()]
    return df.groupBy(*dims).agg(*aggs)


def pivot_table(df: DataFrame, *, index: Sequence[str], pivot_col: str, values: Sequence[str],
                value_col: str) -> DataFrame:
    """Sum of `value_col` per index row, one column per listed pivot value (0 when absent)."""
    require_columns(df, *index, pivot_col, value_col)
    return (
        df.groupBy(*index).pivot(pivot_col, list(values)).agg(F.sum(value_col))
        .fillna(0, subset=list(values))
    )
