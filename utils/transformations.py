"""All the jobs' pure transformations in one namespace: `DataTransformations`, and the module
functions themselves (`from utils import transformations as X`; `df.transform(X.extract_clicks)`).

Each lives in the module of its subject under `utils/transforms/` (see its docstring); this
module only gathers them, so that a job or a notebook needs one import.
"""

from __future__ import annotations

from utils.transforms.cdc import (
    DEBEZIUM_OPS,
    ENVELOPE_FIELDS,
    OPERATIONS,
    SOURCE_FIELDS,
    changed_columns,
    classify_operation,
    debezium_error,
    normalize_snapshot_flag,
    summarize_cdc,
    transform_cdc,
    unwrap_debezium_envelope,
    validate_debezium,
)
from utils.transforms.enrichment import (
    ENRICHED_COLUMNS,
    enrich_with_user_data,
    enrich_with_user_segment,
    finalize_enriched,
    latest_segments,
    prepare_user_master,
)
from utils.transforms.events import (
    aggregate_by_user_window,
    extract_app_events,
    extract_clicks,
    extract_external_data,
)
from utils.transforms.generic import (
    DataFrameMissingColumnError,
    add_window_time,
    aggregate_by_dimensions,
    fill_nulls,
    pivot_table,
    remove_duplicates,
    require_columns,
)
from utils.transforms.records import (
    APP_EVENTS_SPEC,
    CLICKSTREAM_SPEC,
    EXTERNAL_DATA_SPEC,
    NUMBER,
    OBJECT,
    STRING,
    TIMESTAMP,
    TOPIC_LAYOUTS,
    RecordSpec,
)
from utils.transforms.sessions import calculate_session_duration, sessionize_clicks
from utils.transforms.validation import (
    count_records,
    envelope_error,
    field_error,
    field_lookups,
    filter_valid_records,
    is_not_object,
    parse_kafka_value_json,
    parse_timestamp,
    record_error,
    to_quarantine,
    with_json_validation,
)

__all__ = [
    "APP_EVENTS_SPEC", "CLICKSTREAM_SPEC", "DEBEZIUM_OPS", "ENRICHED_COLUMNS", "ENVELOPE_FIELDS",
    "EXTERNAL_DATA_SPEC", "NUMBER", "OBJECT", "OPERATIONS", "SOURCE_FIELDS", "STRING", "TIMESTAMP",
    "TOPIC_LAYOUTS", "DataFrameMissingColumnError", "DataTransformations", "RecordSpec",
    "add_window_time", "aggregate_by_dimensions", "aggregate_by_user_window",
    "calculate_session_duration", "changed_columns", "classify_operation", "count_records",
    "debezium_error", "enrich_with_user_data", "enrich_with_user_segment", "envelope_error",
    "extract_app_events", "extract_clicks", "extract_external_data", "field_error", "field_lookups",
    "fill_nulls", "filter_valid_records", "finalize_enriched", "is_not_object", "latest_segments",
    "normalize_snapshot_flag", "parse_kafka_value_json", "parse_timestamp", "pivot_table",
    "prepare_user_master", "record_error", "remove_duplicates", "require_columns",
    "sessionize_clicks", "summarize_cdc", "to_quarantine", "transform_cdc",
    "unwrap_debezium_envelope", "validate_debezium", "with_json_validation",
]


class DataTransformations:
    """The transforms as one namespace, for `df.transform(DataTransformations.x, ...)`.

    Each is a pure function of DataFrames and plain values; see its module for the docs.
    Validation and extraction: `with_json_validation`, `parse_kafka_value_json`, `to_quarantine`,
    `count_records`, `filter_valid_records`, `extract_*`. Generic helpers (any DataFrame):
    `add_window_time`, `remove_duplicates`, `fill_nulls`, `aggregate_by_dimensions`, `pivot_table`.
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
