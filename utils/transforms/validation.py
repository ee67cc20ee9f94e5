"""JSON records checked field by field with a readable reason (CONTRACT §2), and the quarantine.

A *validated* DataFrame is what `with_json_validation` (or `cdc.validate_debezium`) returns: the
Kafka columns plus
* `_raw` (the value as text), `_json` (the value as VARIANT, null when not JSON);
* per checked field, its look-ups: `_type_<f>` (its VARIANT type name, null when absent; for an
  object field that holds an object, just "OBJECT") and, for string and timestamp fields,
  `_text_<f>` (its text) and `_time_<f>` (its parsed time);
* `_error`: the first reason the record is invalid, null when it is valid.

The look-ups are columns rather than inline expressions because Spark does not share an
expression between the branches of CASE WHEN and COALESCE: written inline, every check walked the
record again (about half the cost of validation and extraction; benchmarks/history.md). Extraction reads
them through `text`/`time` after `require_validated`, which names what is missing.
"""

from __future__ import annotations

from collections.abc import Mapping

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from utils.transforms.generic import DataFrameMissingColumnError, require_columns
from utils.transforms.records import (
    NUMBER,
    OBJECT,
    QUARANTINE_COLUMNS,
    QUARANTINE_EXTRA_COLUMNS,
    STRING,
    TIMESTAMP,
    RecordSpec,
)

_NUMBER_TYPES = ("BIGINT", "INT", "SMALLINT", "TINYINT", "DOUBLE", "FLOAT", "DECIMAL")


def type_col(name: str) -> str:
    return f"_type_{name}"


def text_col(name: str) -> str:
    return f"_text_{name}"


def time_col(name: str) -> str:
    return f"_time_{name}"


def variant_type(variant: Column, path: str) -> Column:
    """The VARIANT type name at `path` ('STRING', 'BIGINT', 'OBJECT<...>', 'VOID'), null if absent."""
    return F.schema_of_variant(F.try_variant_get(variant, path, "variant"))


def is_object(variant: Column, path: str) -> Column:
    """Whether the value at `path` is a JSON object, without reading it: a cast to an empty struct
    succeeds for any object and looks up none of its fields, where schema_of_variant walks all of it
    and spells out every field's type (cdc_transformation 0.80–0.85x the wall time with this; history)."""
    return F.try_variant_get(variant, path, "struct<>").isNotNull()


def parse_timestamp(col: Column) -> Column:
    """ISO-8601 with an offset or Z -> TIMESTAMP (UTC session zone); null when unparseable."""
    return col.try_cast(T.TimestampType())


def field_lookups(variant: Column, fields: Mapping[str, str], path: str = "$") -> dict[str, Column]:
    """The look-up columns of each field (module docstring), to be added with `withColumns`
    before `field_error` and the extraction read them."""
    columns = {}
    for name, kind in fields.items():
        at = f"{path}.{name}"
        columns[type_col(name)] = (F.when(is_object(variant, at), F.lit("OBJECT")).otherwise(variant_type(variant, at))
                                   if kind == OBJECT else variant_type(variant, at))
        if kind in (STRING, TIMESTAMP):
            columns[text_col(name)] = text = F.try_variant_get(variant, at, "string")
            if kind == TIMESTAMP:
                columns[time_col(name)] = parse_timestamp(text)
    return columns


def text(name: str) -> Column:
    """A string or timestamp field's text, as its validation looked it up."""
    return F.col(text_col(name))


def time(name: str) -> Column:
    """A timestamp field's time, as its validation parsed it."""
    return F.col(time_col(name))


def get(name: str, type_: str, path: str = "$") -> Column:
    """Any field of the record as `type_` (null when absent or not convertible)."""
    return F.try_variant_get(F.col("_json"), f"{path}.{name}", type_)


def require_validated(df: DataFrame, spec: RecordSpec) -> None:
    """Fail clearly when `df` lacks the look-ups of `spec`'s fields (not validated with it)."""
    needed = ["_json", *(text_col(n) for n, k in spec.required.items() if k in (STRING, TIMESTAMP))]
    missing = [c for c in needed if c not in df.columns]
    if missing:
        raise DataFrameMissingColumnError(
            f"missing column(s) {', '.join(missing)}: validate the rows with with_json_validation "
            f"and the topic's spec first; got {', '.join(df.columns)}"
        )


def field_error(name: str, kind: str) -> Column:
    """A readable reason why field `name` is invalid, or null when it is fine (reads its look-ups)."""
    vtype = F.col(type_col(name))
    is_string = vtype == F.lit("STRING")
    expected = {STRING: is_string, TIMESTAMP: is_string,
                NUMBER: vtype.rlike(f"^({'|'.join(_NUMBER_TYPES)})"),
                OBJECT: vtype.startswith("OBJECT")}[kind]
    shown = "string" if kind == TIMESTAMP else kind
    reason = (
        F.when(vtype.isNull(), F.lit(f"missing required field '{name}'"))
        .when(vtype == F.lit("VOID"), F.lit(f"required field '{name}' is null"))
        .when(~expected, F.concat(F.lit(f"field '{name}' must be {shown}, got "),
                                  F.lower(F.regexp_extract(vtype, r"^([A-Z]+)", 1))))
    )
    if kind in (STRING, TIMESTAMP):
        reason = reason.when(F.trim(text(name)) == F.lit(""), F.lit(f"required field '{name}' is empty"))
    if kind == TIMESTAMP:
        reason = reason.when(
            time(name).isNull(),
            F.concat(F.lit(f"unparseable timestamp in '{name}': \""),
                     F.substring(text(name), 1, 64), F.lit('"')),
        )
    return reason


def is_not_object(raw: Column, variant: Column) -> Column:
    """Whether parsed JSON is anything but an object.

    Parsed text that starts with '{' (after JSON whitespace) is an object, so the type of the whole
    value (schema_of_variant walks all of it, costing about as much as parsing; benchmarks/history.md) is
    only looked up for the rare values that do not.
    """
    return (F.when(raw.rlike(r"^[ \t\r\n]*\{"), F.lit(False))
            .otherwise(~F.schema_of_variant(variant).startswith("OBJECT")))


def envelope_error(raw: Column, variant: Column) -> Column:
    """Why a non-null value is not a JSON object (null when it is): the checks every topic shares.

    A null value is told apart by the caller: an error on the event topics, a tombstone on
    `cdc_changes`.
    """
    top = F.lower(F.regexp_extract(F.schema_of_variant(variant), r"^([A-Z]+)", 1))
    return F.coalesce(
        F.when(raw.rlike(r"^\s*$"), F.lit("empty value")),
        F.when(variant.isNull(), F.lit("invalid JSON")),
        F.when(is_not_object(raw, variant), F.concat(F.lit("not a JSON object: got "), top)),
    )


def record_error(raw: Column, variant: Column, spec: RecordSpec) -> Column:
    """The first reason the record is invalid (in field order), or null for a valid record.

    Reads the look-ups of `field_lookups(variant, spec.required)`, which must have been added before.
    """
    return F.coalesce(
        F.when(raw.isNull(), F.lit("null value")),
        envelope_error(raw, variant),
        *(field_error(name, kind) for name, kind in spec.required.items()),
    )


def with_json_validation(df: DataFrame, spec: RecordSpec) -> DataFrame:
    """A Kafka DataFrame validated with `spec` (module docstring: the columns it adds)."""
    require_columns(df, "value")
    return (
        df.withColumn("_raw", F.col("value").cast("string"))
        .withColumn("_json", F.try_parse_json(F.col("_raw")))
        .withColumns(field_lookups(F.col("_json"), spec.required))
        .withColumn("_error", record_error(F.col("_raw"), F.col("_json"), spec))
    )


def to_quarantine(df: DataFrame) -> DataFrame:
    """Invalid records in the quarantine layout of CONTRACT §2 (plus the raw bytes, base64)."""
    require_columns(df, "topic", "partition", "offset", "timestamp", "value", "_error")
    columns = {
        "topic": F.col("topic"),
        "partition": F.col("partition"),
        "offset": F.col("offset"),
        "kafka_timestamp": F.col("timestamp"),
        # Parquet strings must be UTF-8: invalid bytes become U+FFFD here, and stay exact in base64.
        "raw_value": F.make_valid_utf8(F.col("value").cast("string")),
        "error": F.col("_error"),
        "raw_value_base64": F.base64(F.col("value")),
        "quarantine_date": F.to_date(F.col("timestamp")),
    }
    order = (*QUARANTINE_COLUMNS, *QUARANTINE_EXTRA_COLUMNS)
    return df.filter(F.col("_error").isNotNull()).select(*(columns[c].alias(c) for c in order))


def filter_valid_records(df: DataFrame) -> DataFrame:
    """Rows whose validation found nothing wrong."""
    require_columns(df, "_error")
    return df.filter(F.col("_error").isNull())


def parse_kafka_value_json(df: DataFrame, spec: RecordSpec) -> tuple[DataFrame, DataFrame]:
    """Split a Kafka DataFrame into (valid rows with `_json`, quarantine rows with a reason)."""
    checked = with_json_validation(df, spec)
    return filter_valid_records(checked), to_quarantine(checked)


def count_records(df: DataFrame, name: str) -> DataFrame:
    """Observe (per micro-batch, in the progress log) how many records pass and how many are bad."""
    require_columns(df, "_error")
    return df.observe(name, F.count(F.lit(1)).alias("records"),
                      F.sum(F.col("_error").isNotNull().cast("long")).alias("quarantined"))


def kafka_meta() -> list[Column]:
    """The Kafka coordinates of a record as output columns."""
    return [
        F.col("topic").alias("kafka_topic"), F.col("partition").alias("kafka_partition"),
        F.col("offset").alias("kafka_offset"), F.col("timestamp").alias("kafka_timestamp"),
    ]
