"""Pure DataFrame -> DataFrame transformations used by the jobs.

Nothing here reads or writes: each function takes DataFrames and plain values and returns a
DataFrame (or a pair), so that a test can call it on a five-row literal DataFrame. Works the same
on batch and streaming DataFrames unless the docstring says otherwise. No Python UDFs: JSON is
validated with Spark 4's VARIANT functions, which run in the JVM.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from utils.spark_utils import DEVICE_SCHEMA, LOCATION_SCHEMA


class DataFrameMissingColumnError(ValueError):
    """A transformation was given a DataFrame without a column it needs."""


def require_columns(df: DataFrame, *columns: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise DataFrameMissingColumnError(
            f"missing column(s) {', '.join(missing)}; got {', '.join(df.columns)}"
        )


# --- Validation of JSON records (CONTRACT §2) ----------------------------------------------------

STRING, NUMBER, OBJECT, TIMESTAMP = "string", "number", "object", "timestamp"
_NUMBER_TYPES = ("BIGINT", "INT", "SMALLINT", "TINYINT", "DOUBLE", "FLOAT", "DECIMAL")


@dataclass(frozen=True)
class RecordSpec:
    """What a valid record of a topic looks like: its required fields and their kinds.

    `path` is the JSON path prefix of the fields ('$' for the record itself).
    """

    required: Mapping[str, str]

    def __post_init__(self) -> None:
        bad = {k: v for k, v in self.required.items() if v not in (STRING, NUMBER, OBJECT, TIMESTAMP)}
        if bad:
            raise ValueError(f"unknown field kinds {bad}")


APP_EVENTS_SPEC = RecordSpec(
    {
        "event_id": STRING, "event_type": STRING, "user_id": STRING, "session_id": STRING,
        "app_type": STRING, "event_timestamp": TIMESTAMP,
    }
)
CLICKSTREAM_SPEC = RecordSpec(
    {
        "click_id": STRING, "session_id": STRING, "user_id": STRING, "page_url": STRING,
        "app_type": STRING, "event_timestamp": TIMESTAMP,
    }
)
EXTERNAL_DATA_SPEC = RecordSpec(
    {"record_id": STRING, "source": STRING, "fetched_at": TIMESTAMP, "payload": OBJECT}
)


def _vtype(variant: Column, path: str) -> Column:
    """The VARIANT type name at `path` ('STRING', 'BIGINT', 'OBJECT<...>', 'VOID'), null if absent."""
    return F.schema_of_variant(F.try_variant_get(variant, path, "variant"))


def parse_timestamp(col: Column) -> Column:
    """ISO-8601 with an offset or Z -> TIMESTAMP (UTC session zone); null when unparseable."""
    return col.try_cast(T.TimestampType())


def _type_col(name: str) -> str:
    return f"_type_{name}"


def _text_col(name: str) -> str:
    return f"_text_{name}"


def _time_col(name: str) -> str:
    return f"_time_{name}"


def field_lookups(variant: Column, fields: Mapping[str, str], path: str = "$") -> dict[str, Column]:
    """Each field's VARIANT type name, its text (string and timestamp kinds) and its parsed time
    (timestamp kind): one look-up each, as `_type_<name>`, `_text_<name>`, `_time_<name>`.

    They are meant to be added as columns (`withColumns`) before `field_error` reads them, and
    the typed extraction reads them again: Spark does not share an expression between the
    branches of CASE WHEN and COALESCE, so written inline every check walked the record again
    (about half the cost of validation and extraction; BENCHMARKS.md).
    """
    columns = {}
    for name, kind in fields.items():
        columns[_type_col(name)] = _vtype(variant, f"{path}.{name}")
        if kind in (STRING, TIMESTAMP):
            columns[_text_col(name)] = text = F.try_variant_get(variant, f"{path}.{name}", "string")
            if kind == TIMESTAMP:
                columns[_time_col(name)] = parse_timestamp(text)
    return columns


def _text(name: str) -> Column:
    """A required string field of a validated record, as its validation looked it up."""
    return F.col(_text_col(name))


def _time(name: str) -> Column:
    """A required timestamp field of a validated record, as its validation parsed it."""
    return F.col(_time_col(name))


def field_error(name: str, kind: str) -> Column:
    """A readable reason why field `name` is invalid, or null when it is fine.

    Reads the field's columns of `field_lookups`: its VARIANT type name (null when absent) and,
    for the string and timestamp kinds, its text and parsed time.
    """
    vtype = F.col(_type_col(name))
    text = _text(name)
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
        reason = reason.when(F.trim(text) == F.lit(""), F.lit(f"required field '{name}' is empty"))
    if kind == TIMESTAMP:
        reason = reason.when(
            _time(name).isNull(),
            F.concat(F.lit(f"unparseable timestamp in '{name}': \""),
                     F.substring(text, 1, 64), F.lit('"')),
        )
    return reason


def is_not_object(raw: Column, variant: Column) -> Column:
    """Whether parsed JSON is anything but an object.

    Parsed text that starts with '{' (after JSON whitespace) is an object, so the type of the whole
    value (schema_of_variant walks all of it, costing about as much as parsing; BENCHMARKS.md) is
    only looked up for the rare values that do not.
    """
    return (F.when(raw.rlike(r"^[ \t\r\n]*\{"), F.lit(False))
            .otherwise(~F.schema_of_variant(variant).startswith("OBJECT")))


def record_error(raw: Column, variant: Column, spec: RecordSpec) -> Column:
    """The first reason the record is invalid (in field order), or null for a valid record.

    Reads the columns of `field_lookups(variant, spec.required)`, which must have been added before.
    """
    top = F.schema_of_variant(variant)
    checks = [
        F.when(raw.isNull(), F.lit("null value")),
        F.when(raw.rlike(r"^\s*$"), F.lit("empty value")),
        F.when(variant.isNull(), F.lit("invalid JSON")),
        F.when(is_not_object(raw, variant),
               F.concat(F.lit("not a JSON object: got "), F.lower(F.regexp_extract(top, r"^([A-Z]+)", 1)))),
    ]
    checks += [field_error(name, kind) for name, kind in spec.required.items()]
    return F.coalesce(*checks)


def with_json_validation(df: DataFrame, spec: RecordSpec) -> DataFrame:
    """Add `_json` (the value as VARIANT), the `field_lookups` of the required fields (which the
    extraction reads) and `_error` (null when valid) to a Kafka DataFrame."""
    require_columns(df, "value")
    raw = F.col("value").cast("string")
    return (
        df.withColumn("_raw", raw)
        .withColumn("_json", F.try_parse_json(F.col("_raw")))
        .withColumns(field_lookups(F.col("_json"), spec.required))
        .withColumn("_error", record_error(F.col("_raw"), F.col("_json"), spec))
    )


def to_quarantine(df: DataFrame) -> DataFrame:
    """Invalid records in the quarantine layout of CONTRACT §2 (plus the raw bytes, base64)."""
    require_columns(df, "topic", "partition", "offset", "timestamp", "value", "_error")
    return df.filter(F.col("_error").isNotNull()).select(
        F.col("topic"),
        F.col("partition"),
        F.col("offset"),
        F.col("timestamp").alias("kafka_timestamp"),
        # Parquet strings must be UTF-8: invalid bytes become U+FFFD here, and stay exact in base64.
        F.make_valid_utf8(F.col("value").cast("string")).alias("raw_value"),
        F.col("_error").alias("error"),
        # Bytes that are not UTF-8 would be altered by the string column: keep them exactly.
        F.base64(F.col("value")).alias("raw_value_base64"),
        F.to_date(F.col("timestamp")).alias("quarantine_date"),
    )


def parse_kafka_value_json(df: DataFrame, spec: RecordSpec) -> tuple[DataFrame, DataFrame]:
    """Split a Kafka DataFrame into (valid rows with `_json`, quarantine rows with a reason)."""
    checked = with_json_validation(df, spec)
    return filter_valid_records(checked), to_quarantine(checked)


def count_records(df: DataFrame, name: str) -> DataFrame:
    """Observe (per micro-batch, in the progress log) how many records pass and how many are bad."""
    require_columns(df, "_error")
    return df.observe(name, F.count(F.lit(1)).alias("records"),
                      F.sum(F.col("_error").isNotNull().cast("long")).alias("quarantined"))


def filter_valid_records(df: DataFrame) -> DataFrame:
    """Rows whose validation found nothing wrong."""
    require_columns(df, "_error")
    return df.filter(F.col("_error").isNull())


def _get(name: str, type_: str, path: str = "$") -> Column:
    return F.try_variant_get(F.col("_json"), f"{path}.{name}", type_)


def _kafka_meta() -> list[Column]:
    return [
        F.col("topic").alias("kafka_topic"), F.col("partition").alias("kafka_partition"),
        F.col("offset").alias("kafka_offset"), F.col("timestamp").alias("kafka_timestamp"),
    ]


def _validated(df: DataFrame, spec: RecordSpec) -> None:
    """Extraction reads the look-ups of `with_json_validation`: fail clearly without them."""
    require_columns(df, "_json", *(_text_col(n) for n, k in spec.required.items() if k in (STRING, TIMESTAMP)))


def extract_app_events(df: DataFrame) -> DataFrame:
    """Typed app events from validated rows; device and location flattened (CONTRACT §3)."""
    _validated(df, APP_EVENTS_SPEC)
    device = _get("device", DEVICE_SCHEMA.simpleString())
    location = _get("location", LOCATION_SCHEMA.simpleString())
    return df.select(
        *(_text(c).alias(c) for c in ("event_id", "event_type", "user_id", "session_id", "app_type")),
        _time("event_timestamp").alias("event_timestamp"),
        device.getField("type").alias("device_type"),
        device.getField("os").alias("device_os"),
        device.getField("model").alias("device_model"),
        location.getField("country").alias("country"),
        location.getField("city").alias("city"),
        _get("properties", "map<string,string>").alias("properties"),
        _get("revenue", "double").alias("revenue"),
        *_kafka_meta(),
    )


def extract_clicks(df: DataFrame) -> DataFrame:
    _validated(df, CLICKSTREAM_SPEC)
    return df.select(
        *(_text(c).alias(c) for c in ("click_id", "session_id", "user_id", "page_url")),
        *(_get(c, "string").alias(c) for c in ("referrer_url", "element_id")),
        _text("app_type").alias("app_type"),
        _time("event_timestamp").alias("event_timestamp"),
        *_kafka_meta(),
    )


def extract_external_data(df: DataFrame) -> DataFrame:
    _validated(df, EXTERNAL_DATA_SPEC)
    return df.select(
        _text("record_id").alias("record_id"),
        _text("source").alias("source"),
        _time("fetched_at").alias("fetched_at"),
        F.to_json(_get("payload", "variant")).alias("payload_json"),
        F.to_date(_time("fetched_at")).alias("fetch_date"),
        *_kafka_meta(),
    )


# --- Generic helpers -----------------------------------------------------------------------------


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


def aggregate_by_user_window(df: DataFrame, *, time_col: str, window: str) -> DataFrame:
    """1-window × user × event_type × app_type: distinct events and their session ids."""
    require_columns(df, time_col, "user_id", "event_type", "app_type", "session_id", "event_id")
    return (
        df.groupBy(F.window(F.col(time_col), window).alias("w"), "user_id", "event_type", "app_type")
        .agg(
            F.count(F.lit(1)).alias("event_count"),
            F.array_sort(F.collect_set("session_id")).alias("session_ids"),
        )
        .select(
            F.col("w.start").alias("window_start"),
            F.col("w.end").alias("window_end"),
            "user_id", "event_type", "app_type", "event_count", "session_ids",
            F.to_date(F.col("w.start")).alias("event_date"),
        )
    )


def pivot_table(df: DataFrame, *, index: Sequence[str], pivot_col: str, values: Sequence[str],
                value_col: str) -> DataFrame:
    """Sum of `value_col` per index row, one column per listed pivot value (0 when absent)."""
    require_columns(df, *index, pivot_col, value_col)
    return (
        df.groupBy(*index).pivot(pivot_col, list(values)).agg(F.sum(value_col))
        .fillna(0, subset=list(values))
    )


def calculate_session_duration(df: DataFrame, *, start_col: str = "session_start",
                               end_col: str = "session_end") -> DataFrame:
    """duration_seconds = end − start, in seconds with the fraction (double)."""
    require_columns(df, start_col, end_col)
    return df.withColumn(
        "duration_seconds",
        (F.unix_micros(F.col(end_col)) - F.unix_micros(F.col(start_col))) / F.lit(1_000_000.0),
    )


# --- Clickstream sessions ------------------------------------------------------------------------


def sessionize_clicks(df: DataFrame, *, gap: str) -> DataFrame:
    """One row per session (session_id, closed after `gap` of inactivity), CONTRACT §3.

    Built on `session_window`: merging sessions and closing them by watermark happen in the JVM
    with the state in RocksDB, with no Python worker involved.
    """
    require_columns(df, "session_id", "user_id", "app_type", "page_url", "click_id", "event_timestamp")
    ordered = F.array_sort(F.collect_list(F.struct(
        F.col("event_timestamp").alias("t"), F.col("click_id").alias("c"), F.col("page_url").alias("p"))))
    sessions = (
        df.groupBy(F.session_window(F.col("event_timestamp"), gap).alias("sw"), "session_id")
        .agg(
            F.min("user_id").alias("user_id"),
            F.min("app_type").alias("app_type"),
            F.min("event_timestamp").alias("session_start"),
            F.max("event_timestamp").alias("session_end"),
            F.count(F.lit(1)).alias("click_count"),
            F.size(F.collect_set("page_url")).cast("long").alias("unique_pages"),
            ordered.alias("clicks"),
        )
    )
    return (
        sessions.transform(calculate_session_duration)
        .select(
            "session_id", "user_id", "app_type", "session_start", "session_end", "duration_seconds",
            "click_count", "unique_pages",
            F.col("clicks")[0]["p"].alias("entry_page"),
            F.element_at(F.col("clicks"), -1)["p"].alias("exit_page"),
            F.transform(F.col("clicks"), lambda c: c["p"]).alias("click_path"),
            F.to_date(F.col("session_start")).alias("session_date"),
        )
    )


# --- Debezium change events ----------------------------------------------------------------------

OPERATIONS = {"c": "INSERT", "u": "UPDATE", "d": "DELETE", "r": "SNAPSHOT", "t": "TRUNCATE"}
DEBEZIUM_OPS = (*OPERATIONS, "m")


def unwrap_debezium_envelope(df: DataFrame) -> DataFrame:
    """Add `_env`: the envelope, whether the value is bare or `{"schema":…, "payload":…}`."""
    require_columns(df, "_json")
    wrapped = (_vtype(F.col("_json"), "$.payload").startswith("OBJECT")
               & _vtype(F.col("_json"), "$.op").isNull())
    return df.withColumn(
        "_env",
        F.when(wrapped, F.try_variant_get(F.col("_json"), "$.payload", "variant")).otherwise(F.col("_json")),
    )


# What debezium_error checks: fields of the envelope, and of its `source`.
ENVELOPE_FIELDS = {"op": STRING, "source": OBJECT, "before": OBJECT, "after": OBJECT}
SOURCE_FIELDS = {"ts_ms": NUMBER, "table": STRING}


def debezium_error() -> Column:
    """Why a parsed envelope is not a usable change event (null when it is).

    Reads the columns of `field_lookups` for ENVELOPE_FIELDS and SOURCE_FIELDS.
    """
    op = F.col(_text_col("op"))
    is_row_op = op.isin(*OPERATIONS)
    after_is_object = F.col(_type_col("after")).startswith("OBJECT")
    return F.coalesce(
        field_error("op", STRING),
        F.when(~op.isin(*DEBEZIUM_OPS), F.concat(F.lit("unknown Debezium op '"), op, F.lit("'"))),
        field_error("source", OBJECT),
        field_error("ts_ms", NUMBER),
        F.when(is_row_op, field_error("table", STRING)),
        F.when(op.isin("c", "r") & ~after_is_object,
               F.lit("a create or snapshot event needs an 'after' object")),
        F.when((op == "u") & ~after_is_object, F.lit("an update event needs an 'after' object")),
        F.when((op == "d") & ~F.col(_type_col("before")).startswith("OBJECT"),
               F.lit("a delete event needs a 'before' object")),
    )


def validate_debezium(df: DataFrame) -> DataFrame:
    """Validate Kafka rows of `cdc_changes`: adds `_json`, `_env`, `_error`, `_tombstone` and the
    `field_lookups` of ENVELOPE_FIELDS and SOURCE_FIELDS (which `transform_cdc` reads).

    A null value is a tombstone: not an error, but a counted drop.
    """
    require_columns(df, "value")
    raw = F.col("value").cast("string")
    env = F.col("_env")
    lookups = {**field_lookups(env, ENVELOPE_FIELDS), **field_lookups(env, SOURCE_FIELDS, "$.source")}
    error = F.coalesce(
        F.when(F.col("_raw").rlike(r"^\s*$"), F.lit("empty value")),
        F.when(F.col("_json").isNull(), F.lit("invalid JSON")),
        F.when(is_not_object(F.col("_raw"), F.col("_json")), F.lit("not a JSON object")),
        debezium_error(),
    )
    return (
        df.withColumn("_raw", raw)
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
    """Columns in both `before` and `after` (VARIANT objects) whose values differ.

    Null when `before` holds only the key (REPLICA IDENTITY DEFAULT): the old values are unknown.
    """
    b = F.try_variant_get(before, "$", "map<string,variant>")
    a = F.try_variant_get(after, "$", "map<string,variant>")
    before_keys = F.map_keys(b)
    only_key = F.size(F.array_except(before_keys, F.array(F.lit("id")))) == 0
    diff = F.filter(
        F.array_sort(F.map_keys(a)),
        lambda k: F.array_contains(before_keys, k) & ~F.to_json(b[k]).eqNullSafe(F.to_json(a[k])),
    )
    return F.when(b.isNull() | a.isNull() | only_key, F.lit(None).cast("array<string>")).otherwise(diff)


def normalize_snapshot_flag(snapshot: Column) -> Column:
    """`source.snapshot` as a boolean: "true"/"last"/"first"/"incremental"/true -> True."""
    text = F.lower(F.coalesce(snapshot, F.lit("false")))
    return ~text.isin("false", "")


def transform_cdc(df: DataFrame) -> DataFrame:
    """Validated, non-message change events -> `cdc_transformed` rows (CONTRACT §3)."""
    require_columns(df, "_env", "topic", "partition", "offset", "timestamp",
                    *(_type_col(f) for f in ENVELOPE_FIELDS), _text_col("op"), _text_col("table"))
    env = F.col("_env")
    op = _text("op")
    before = F.try_variant_get(env, "$.before", "variant")
    after = F.try_variant_get(env, "$.after", "variant")
    source_ts_ms = F.try_variant_get(env, "$.source.ts_ms", "long")
    source_ts = F.timestamp_millis(source_ts_ms)
    key_row = F.when(op == "d", before).otherwise(after)
    operation = classify_operation(op)
    return df.select(
        F.concat_ws(".", F.try_variant_get(env, "$.source.schema", "string"), _text("table")).alias("table_name"),
        operation.alias("operation"),
        F.try_variant_get(key_row, "$.id", "string").alias("primary_key"),
        F.when(F.col(_type_col("before")).startswith("OBJECT"), F.to_json(before)).alias("before_json"),
        F.when(F.col(_type_col("after")).startswith("OBJECT"), F.to_json(after)).alias("after_json"),
        F.when(op == "u", changed_columns(before, after)).alias("changed_columns"),
        source_ts.alias("source_ts"),
        F.try_variant_get(env, "$.source.lsn", "long").alias("lsn"),
        F.try_variant_get(env, "$.source.txId", "long").alias("tx_id"),
        (F.try_variant_get(env, "$.ts_ms", "long") - source_ts_ms).alias("capture_lag_ms"),
        op.alias("op"),
        normalize_snapshot_flag(F.try_variant_get(env, "$.source.snapshot", "string")).alias("is_snapshot"),
        F.try_variant_get(env, "$.source.db", "string").alias("source_db"),
        *_kafka_meta(),
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


# --- Enrichment ----------------------------------------------------------------------------------


def prepare_user_master(users: DataFrame) -> DataFrame:
    """User master data reduced to the join columns (one row per user_id)."""
    require_columns(users, "user_id", "signup_date", "country", "plan")
    return users.select(
        F.col("user_id").cast("string").alias("user_id"),
        F.col("plan").cast("string").alias("plan"),
        F.to_date(F.col("signup_date")).alias("signup_date"),
        F.col("country").cast("string").alias("user_country"),
    ).dropDuplicates(["user_id"])


def latest_segments(segments: DataFrame) -> DataFrame:
    """Each user's segment from the most recent `as_of_date` of `user_segments`."""
    require_columns(segments, "user_id", "as_of_date", "segment")
    latest = segments.agg(F.max("as_of_date").alias("latest"))
    return (
        segments.join(latest, F.col("as_of_date") == F.col("latest"), how="inner")
        .select("user_id", "segment")
    )


def enrich_with_user_data(events: DataFrame, users: DataFrame) -> DataFrame:
    """Left join events to prepared user master rows; user_known flags the matches."""
    require_columns(events, "user_id")
    flagged = users.withColumn("_known", F.lit(True))
    return (
        events.join(flagged, on="user_id", how="left")
        .withColumn("user_known", F.coalesce(F.col("_known"), F.lit(False)))
        .drop("_known")
    )


def enrich_with_user_segment(events: DataFrame, segments: DataFrame | None) -> DataFrame:
    """Add `segment` from the latest segmentation (null for users it has not seen yet)."""
    if segments is None:
        return events.withColumn("segment", F.lit(None).cast("string"))
    return events.join(latest_segments(segments), on="user_id", how="left")


ENRICHED_COLUMNS = (
    "event_id", "event_type", "user_id", "session_id", "app_type", "event_timestamp",
    "device_type", "device_os", "device_model", "country", "city", "properties", "revenue",
    "user_known", "plan", "signup_date", "user_country", "segment",
    "kafka_topic", "kafka_partition", "kafka_offset", "kafka_timestamp", "event_date",
)


def finalize_enriched(df: DataFrame) -> DataFrame:
    """Order the enriched columns as documented and add the partition column."""
    return df.withColumn("event_date", F.to_date(F.col("event_timestamp"))).select(*ENRICHED_COLUMNS)


class DataTransformations:
    """The transforms above as one namespace, for `df.transform(DataTransformations.x, ...)`.

    Each is a pure function of DataFrames and plain values; see the module functions for docs.
    """

    with_json_validation = staticmethod(with_json_validation)
    parse_kafka_value_json = staticmethod(parse_kafka_value_json)
    to_quarantine = staticmethod(to_quarantine)
    count_records = staticmethod(count_records)
    filter_valid_records = staticmethod(filter_valid_records)
    extract_app_events = staticmethod(extract_app_events)
    extract_clicks = staticmethod(extract_clicks)
    extract_external_data = staticmethod(extract_external_data)
    add_window_time = staticmethod(add_window_time)
    remove_duplicates = staticmethod(remove_duplicates)
    fill_nulls = staticmethod(fill_nulls)
    aggregate_by_dimensions = staticmethod(aggregate_by_dimensions)
    aggregate_by_user_window = staticmethod(aggregate_by_user_window)
    pivot_table = staticmethod(pivot_table)
    calculate_session_duration = staticmethod(calculate_session_duration)
    sessionize_clicks = staticmethod(sessionize_clicks)
    unwrap_debezium_envelope = staticmethod(unwrap_debezium_envelope)
    validate_debezium = staticmethod(validate_debezium)
    transform_cdc = staticmethod(transform_cdc)
    summarize_cdc = staticmethod(summarize_cdc)
    prepare_user_master = staticmethod(prepare_user_master)
    latest_segments = staticmethod(latest_segments)
    enrich_with_user_data = staticmethod(enrich_with_user_data)
    enrich_with_user_segment = staticmethod(enrich_with_user_segment)
    finalize_enriched = staticmethod(finalize_enriched)
