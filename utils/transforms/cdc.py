"""Debezium change events of `cdc_changes` (CONTRACT §1, §3): validation, rows, summaries."""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from utils.transforms.generic import require_columns
from utils.transforms.records import NUMBER, OBJECT, STRING
from utils.transforms.validation import (
    envelope_error,
    field_error,
    field_lookups,
    is_object,
    kafka_meta,
    text,
    text_col,
    type_col,
)

OPERATIONS = {"c": "INSERT", "u": "UPDATE", "d": "DELETE", "r": "SNAPSHOT", "t": "TRUNCATE"}
DEBEZIUM_OPS = (*OPERATIONS, "m")

# What debezium_error checks: fields of the envelope, and of its `source`.
ENVELOPE_FIELDS = {"op": STRING, "source": OBJECT, "before": OBJECT, "after": OBJECT}
SOURCE_FIELDS = {"ts_ms": NUMBER, "table": STRING}


def unwrap_debezium_envelope(df: DataFrame) -> DataFrame:
    """Add `_env`: the envelope, whether the value is bare or `{"schema":…, "payload":…}`."""
    require_columns(df, "_json")
    wrapped = (is_object(F.col("_json"), "$.payload")
               & F.try_variant_get(F.col("_json"), "$.op", "variant").isNull())
    return df.withColumn(
        "_env",
        F.when(wrapped, F.try_variant_get(F.col("_json"), "$.payload", "variant")).otherwise(F.col("_json")),
    )


def debezium_error() -> Column:
    """Why a parsed envelope is not a usable change event (null when it is).

    Reads the look-ups of ENVELOPE_FIELDS and SOURCE_FIELDS.
    """
    op = text("op")
    is_row_op = op.isin(*OPERATIONS)
    after_is_object = F.col(type_col("after")).startswith("OBJECT")
    return F.coalesce(
        field_error("op", STRING),
        F.when(~op.isin(*DEBEZIUM_OPS), F.concat(F.lit("unknown Debezium op '"), op, F.lit("'"))),
        field_error("source", OBJECT),
        field_error("ts_ms", NUMBER),
        F.when(is_row_op, field_error("table", STRING)),
        F.when(op.isin("c", "r") & ~after_is_object,
               F.lit("a create or snapshot event needs an 'after' object")),
        F.when((op == "u") & ~after_is_object, F.lit("an update event needs an 'after' object")),
        F.when((op == "d") & ~F.col(type_col("before")).startswith("OBJECT"),
               F.lit("a delete event needs a 'before' object")),
    )


def validate_debezium(df: DataFrame) -> DataFrame:
    """Validate Kafka rows of `cdc_changes`: adds `_raw`, `_json`, `_env`, `_error`, `_tombstone`
    and the look-ups of ENVELOPE_FIELDS and SOURCE_FIELDS (which `transform_cdc` reads).

    A null value is a tombstone (Debezium's mark of a deleted key): not an error, but a counted
    drop. Anything else goes through the same envelope checks as the other topics.
    """
    require_columns(df, "value")
    env = F.col("_env")
    lookups = {**field_lookups(env, ENVELOPE_FIELDS), **field_lookups(env, SOURCE_FIELDS, "$.source")}
    error = F.coalesce(envelope_error(F.col("_raw"), F.col("_json")), debezium_error())
    return (
        df.withColumn("_raw", F.col("value").cast("string"))
        .withColumn("_tombstone", F.col("value").isNull())
        .withColumn("_json", F.try_parse_json(F.col("_raw")))
        .transform(unwrap_debezium_envelope)
        .withColumns(lookups)
        .withColumn("_error", F.when(~F.col("_tombstone"), error))
    )


def classify_operation(op: Column) -> Column:
    """Debezium op code -> contract operation name (null for 'm' messages)."""
    mapping = F.create_map(*[F.lit(x) for kv in OPERATIONS.items() for x in kv])
    return mapping[op]


def changed_columns(before: Column, after: Column) -> Column:
    """Columns in both `before` and `after` (VARIANT objects) whose values differ, sorted; a value
    that changes its JSON type (5 to "5") differs.

    Null when `before` holds only the key (REPLICA IDENTITY DEFAULT): the old values are unknown.

    Each image becomes a map of JSON texts once, and the two maps are zipped by key. Looking a key
    up in a map converted inside the filter's lambda re-converted the whole image for every key,
    a cost that grows with the square of the table's column count (benchmarks/history.md).
    """
    def as_json_map(image: Column) -> Column:
        return F.transform_values(F.try_variant_get(image, "$", "map<string,variant>"),
                                  lambda _k, v: F.coalesce(F.to_json(v), F.lit("null")))

    # A key missing on one side zips to a null there: only keys in both can differ.
    differs = F.map_zip_with(as_json_map(before), as_json_map(after),
                             lambda _k, b, a: b.isNotNull() & a.isNotNull() & (b != a))
    diff = F.array_sort(F.map_keys(F.map_filter(differs, lambda _k, d: d)))
    before_keys = F.map_keys(F.try_variant_get(before, "$", "map<string,variant>"))
    only_key = F.size(F.array_except(before_keys, F.array(F.lit("id")))) == 0
    return F.when(only_key, F.lit(None).cast("array<string>")).otherwise(diff)


def normalize_snapshot_flag(snapshot: Column) -> Column:
    """`source.snapshot` as a boolean: "true"/"last"/"first"/"incremental"/true -> True."""
    flag = F.lower(F.coalesce(snapshot, F.lit("false")))
    return ~flag.isin("false", "")


def transform_cdc(df: DataFrame) -> DataFrame:
    """Validated, non-message change events -> `cdc_transformed` rows (CONTRACT §3)."""
    require_columns(df, "_env", "topic", "partition", "offset", "timestamp",
                    *(type_col(f) for f in ENVELOPE_FIELDS), text_col("op"), text_col("table"))
    env = F.col("_env")
    op = text("op")
    before = F.try_variant_get(env, "$.before", "variant")
    after = F.try_variant_get(env, "$.after", "variant")
    source_ts_ms = F.try_variant_get(env, "$.source.ts_ms", "long")
    source_ts = F.timestamp_millis(source_ts_ms)
    key_row = F.when(op == "d", before).otherwise(after)
    return df.select(
        F.concat_ws(".", F.try_variant_get(env, "$.source.schema", "string"), text("table")).alias("table_name"),
        classify_operation(op).alias("operation"),
        F.try_variant_get(key_row, "$.id", "string").alias("primary_key"),
        F.when(F.col(type_col("before")).startswith("OBJECT"), F.to_json(before)).alias("before_json"),
        F.when(F.col(type_col("after")).startswith("OBJECT"), F.to_json(after)).alias("after_json"),
        F.when(op == "u", changed_columns(before, after)).alias("changed_columns"),
        source_ts.alias("source_ts"),
        F.try_variant_get(env, "$.source.lsn", "long").alias("lsn"),
        F.try_variant_get(env, "$.source.txId", "long").alias("tx_id"),
        (F.try_variant_get(env, "$.ts_ms", "long") - source_ts_ms).alias("capture_lag_ms"),
        op.alias("op"),
        normalize_snapshot_flag(F.try_variant_get(env, "$.source.snapshot", "string")).alias("is_snapshot"),
        F.try_variant_get(env, "$.source.db", "string").alias("source_db"),
        *kafka_meta(),
        F.to_date(source_ts).alias("change_date"),
    )


def summarize_cdc(df: DataFrame, *, window: str) -> DataFrame:
    """Changes per window × table: inserts, updates, deletes, snapshots (and truncates)."""
    require_columns(df, "source_ts", "table_name", "operation")
    counts = {name.lower() + "s": F.sum(F.when(F.col("operation") == name, 1).otherwise(0)).cast("long")
              for name in ("INSERT", "UPDATE", "DELETE", "SNAPSHOT", "TRUNCATE")}
    return (
        df.groupBy(F.window(F.col("source_ts"), window).alias("w"), "table_name")
        .agg(*(c.alias(n) for n, c in counts.items()), F.count(F.lit(1)).alias("total_changes"))
        .select(
            F.col("w.start").alias("window_start"), F.col("w.end").alias("window_end"),
            "table_name", *counts, "total_changes",
            F.to_date(F.col("w.start")).alias("summary_date"),
        )
    )
