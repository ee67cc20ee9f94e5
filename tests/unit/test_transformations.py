"""Unit tests of the pure transforms, on small literal DataFrames showing each edge case."""

from __future__ import annotations

import json
import random
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from pyspark.sql import Row
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from utils import transformations as X

KAFKA_SCHEMA = "topic string, partition int, offset long, timestamp timestamp, value binary"
SAMPLES = Path(__file__).resolve().parents[3] / "shared" / "samples" / "debezium"
T0 = datetime(2026, 11, 25, 20, 0, 0)


def kafka_rows(spark, topic: str, values: list) -> object:
    rows = [(topic, 0, i, T0, v if isinstance(v, bytes | type(None)) else json.dumps(v).encode())
            for i, v in enumerate(values)]
    return spark.createDataFrame(rows, KAFKA_SCHEMA)


def app_event(**overrides) -> dict:
    event = {"event_id": "e1", "event_type": "click", "user_id": "u1", "session_id": "s1",
             "app_type": "web", "event_timestamp": "2026-11-25T20:01:54.123Z",
             "device": {"type": "mobile", "os": "iOS", "model": "iPhone"},
             "location": {"country": "DE", "city": "Berlin"}}
    event.update(overrides)
    return {k: v for k, v in event.items() if v is not ...}


def ts(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC).replace(tzinfo=None)


# --- validation and quarantine -------------------------------------------------------------------

MALFORMED = [
    ("truncated JSON", b'{"event_id": "e1", "event_ty', "invalid JSON"),
    ("wrong type", app_event(user_id=123), "field 'user_id' must be string, got bigint"),
    ("missing required", app_event(session_id=...), "missing required field 'session_id'"),
    ("empty value", b"", "empty value"),
    ("binary garbage", bytes(range(200, 240)), "invalid JSON"),
    ("huge value", app_event(event_id=None, blob="x" * 300_000), "required field 'event_id' is null"),
    ("bad timestamp format", app_event(event_timestamp="25/11/2026 20:01"),
     "unparseable timestamp in 'event_timestamp': \"25/11/2026 20:01\""),
    ("JSON array", [app_event()], "not a JSON object: got array"),
    ("JSON scalar", "just a string", "not a JSON object: got string"),
    ("null required", app_event(app_type=None), "required field 'app_type' is null"),
    ("empty id", app_event(event_id=""), "required field 'event_id' is empty"),
    ("invalid UTF-8", b'{"event_id": "\xff\xfe"', "invalid JSON"),
    ("number timestamp", app_event(event_timestamp=1764100914),
     "field 'event_timestamp' must be string, got bigint"),
    ("object for string", app_event(user_id={"id": 1}), "field 'user_id' must be string, got object"),
    ("null value", None, "null value"),
    ("whitespace only", b"   \n", "empty value"),
    ("JSON number", b" \t42", "not a JSON object: got bigint"),
    ("indented array", b"\r\n [{}]", "not a JSON object: got array"),
    ("indented object, field missing", b'\n\t {"event_id": "e9"}', "missing required field 'event_type'"),
]


def test_every_kind_of_malformed_record_is_quarantined_with_its_reason(spark):
    values = [v for _, v, _ in MALFORMED] + [app_event()]
    valid, quarantine = X.parse_kafka_value_json(kafka_rows(spark, "app_events", values),
                                                 X.APP_EVENTS_SPEC)
    got = {r.offset: r for r in quarantine.collect()}
    assert len(got) == len(MALFORMED), "each bad record is quarantined exactly once"
    for offset, (kind, value, reason) in enumerate(MALFORMED):
        assert got[offset].error == reason, kind
        raw = value if isinstance(value, bytes | type(None)) else json.dumps(value).encode()
        restored = got[offset].raw_value_base64
        assert (restored is None and raw is None) or __import__("base64").b64decode(restored) == raw
    assert [r.offset for r in valid.collect()] == [len(MALFORMED)]


def test_object_check_agrees_with_the_variant_type(spark):
    """The text shortcut of is_not_object gives what the parsed value's type says, whitespace or not."""
    texts = ['{"a": 1}', ' \n\t\r{"a": [1]}', "[1, 2]", ' "s"', "3.5", "true", "null", "\n[{}]"]
    df = spark.createDataFrame([(t,) for t in texts], "raw string").withColumn("v", F.try_parse_json("raw"))
    rows = df.select(X.is_not_object(F.col("raw"), F.col("v")).alias("fast"),
                     (~F.schema_of_variant("v").startswith("OBJECT")).alias("by_type")).collect()
    assert [r.fast for r in rows] == [r.by_type for r in rows] == [False, False, True, True, True, True, True, True]


def test_quarantine_has_the_contract_columns(spark):
    _, quarantine = X.parse_kafka_value_json(kafka_rows(spark, "t", [b"{"]), X.APP_EVENTS_SPEC)
    assert quarantine.columns[:6] == ["topic", "partition", "offset", "kafka_timestamp", "raw_value", "error"]


def test_timestamps_with_offsets_are_normalised_to_utc(spark):
    df = kafka_rows(spark, "app_events", [app_event(event_timestamp="2026-11-25T22:01:54+02:00")])
    valid, _ = X.parse_kafka_value_json(df, X.APP_EVENTS_SPEC)
    row = valid.transform(X.extract_app_events).first()
    assert row.event_timestamp == datetime(2026, 11, 25, 20, 1, 54)


def test_extract_app_events_flattens_and_tolerates_null_nested_fields(spark):
    df = kafka_rows(spark, "app_events", [app_event(device=None, location={"country": "FR"},
                                                    revenue=12.5, properties={"k": "v"})])
    valid, _ = X.parse_kafka_value_json(df, X.APP_EVENTS_SPEC)
    got = valid.transform(X.extract_app_events).select(
        "event_id", "device_type", "device_os", "country", "city", "revenue", "properties")
    expected = spark.createDataFrame(
        [("e1", None, None, "FR", None, 12.5, {"k": "v"})],
        "event_id string, device_type string, device_os string, country string, city string, "
        "revenue double, properties map<string,string>")
    assertDataFrameEqual(got, expected)


def test_optional_fields_of_another_shape_are_null_and_the_record_is_kept(spark):
    """An optional field of the wrong shape is null on its own, the record stays valid, and
    scalars in `properties` keep their JSON text."""
    records = [
        app_event(event_id="a", device="phone", location={"country": "DE", "city": "Berlin"}, revenue="12.5"),
        app_event(event_id="b", location=[1, 2], properties="nope", revenue="twelve"),
        app_event(event_id="c", device={"type": 5, "os": None}, properties={"n": 1, "b": True, "o": {"x": [1]}},
                  revenue=7),
    ]
    valid, quarantine = X.parse_kafka_value_json(kafka_rows(spark, "app_events", records), X.APP_EVENTS_SPEC)
    assert quarantine.count() == 0
    got = {r.event_id: r for r in valid.transform(X.extract_app_events).collect()}
    assert (got["a"].device_type, got["a"].country, got["a"].city, got["a"].revenue) == (None, "DE", "Berlin", 12.5)
    assert (got["b"].country, got["b"].properties, got["b"].revenue) == (None, None, None)
    assert (got["b"].device_type, got["b"].device_os) == ("mobile", "iOS")
    assert (got["c"].device_type, got["c"].device_os, got["c"].revenue) == ("5", None, 7.0)
    assert got["c"].properties == {"n": "1", "b": "true", "o": '{"x":[1]}'}


def test_field_texts_are_the_decoded_json_strings(spark):
    """The texts read for validation and extraction are what a JSON decoder gives (escapes,
    non-ASCII, characters outside the BMP), checked against Python's json module."""
    raw = ('{"event_id": "caf\\u00e9 \\ud83d\\ude00 \\"q\\" \\\\ \\n", "event_type": "cl\u00efck", '
           '"user_id": "u\\t1", "session_id": "s/1", "app_type": "web", '
           '"event_timestamp": "2026-11-25T20:01:54Z", "device": {"type": "t\\u00e4b"}}')
    decoded = json.loads(raw)
    valid, _ = X.parse_kafka_value_json(kafka_rows(spark, "app_events", [raw.encode()]), X.APP_EVENTS_SPEC)
    row = valid.transform(X.extract_app_events).first()
    assert [row.event_id, row.event_type, row.user_id, row.session_id, row.device_type] == [
        decoded["event_id"], decoded["event_type"], decoded["user_id"], decoded["session_id"],
        decoded["device"]["type"]]


def test_external_data_payload_kept_as_json(spark):
    rec = {"record_id": "r1", "source": "weather", "fetched_at": "2026-11-25T10:00:00Z",
           "payload": {"city": "Berlin", "temp_c": 3.5}}
    valid, quarantine = X.parse_kafka_value_json(
        kafka_rows(spark, "external_data", [rec, {**rec, "payload": "text"}]), X.EXTERNAL_DATA_SPEC)
    row = valid.transform(X.extract_external_data).first()
    assert json.loads(row.payload_json) == {"city": "Berlin", "temp_c": 3.5}
    assert row.fetch_date == date(2026, 11, 25)
    assert quarantine.first().error == "field 'payload' must be object, got string"


# --- generic helpers -----------------------------------------------------------------------------


def test_remove_duplicates_keeps_one_row_per_id(spark):
    df = spark.createDataFrame([("e1", 1), ("e1", 1), ("e2", 2)], "event_id string, n int")
    assertDataFrameEqual(X.remove_duplicates(df, id_cols=["event_id"]),
                         spark.createDataFrame([("e1", 1), ("e2", 2)], "event_id string, n int"))


def test_add_window_time(spark):
    df = spark.createDataFrame([(ts("2026-11-25T20:01:54Z"),)], "t timestamp")
    row = X.add_window_time(df, time_col="t", duration="1 minute").first()
    assert (row.window_start, row.window_end) == (datetime(2026, 11, 25, 20, 1), datetime(2026, 11, 25, 20, 2))


def test_aggregate_by_user_window_counts_events_and_distinct_sessions(spark):
    rows = [("e1", "u1", "click", "web", "s1", ts("2026-11-25T20:01:01Z")),
            ("e2", "u1", "click", "web", "s2", ts("2026-11-25T20:01:59Z")),
            ("e3", "u1", "click", "web", "s1", ts("2026-11-25T20:01:30Z")),
            ("e4", "u1", "click", "web", "s1", ts("2026-11-25T20:02:00Z"))]
    df = spark.createDataFrame(rows, "event_id string, user_id string, event_type string, "
                                     "app_type string, session_id string, t timestamp")
    got = X.aggregate_by_user_window(df, time_col="t", window="1 minute")
    expected = [Row(window_start=datetime(2026, 11, 25, 20, 1), window_end=datetime(2026, 11, 25, 20, 2),
                    user_id="u1", event_type="click", app_type="web", event_count=3,
                    session_ids=["s1", "s2"], event_date=date(2026, 11, 25)),
                Row(window_start=datetime(2026, 11, 25, 20, 2), window_end=datetime(2026, 11, 25, 20, 3),
                    user_id="u1", event_type="click", app_type="web", event_count=1,
                    session_ids=["s1"], event_date=date(2026, 11, 25))]
    assertDataFrameEqual(got, expected)


def test_aggregate_by_dimensions_with_distinct_counts(spark):
    df = spark.createDataFrame([("a", "u1", "s1"), ("a", "u1", "s2"), ("b", "u2", "s3")],
                               "k string, user_id string, session_id string")
    got = X.aggregate_by_dimensions(df, dims=["k"], distinct={"unique_users": "user_id",
                                                               "unique_sessions": "session_id"})
    assertDataFrameEqual(got, [Row(k="a", event_count=2, unique_users=1, unique_sessions=2),
                               Row(k="b", event_count=1, unique_users=1, unique_sessions=1)])


def test_fill_nulls_only_touches_named_columns(spark):
    df = spark.createDataFrame([(None, None)], "a string, b string")
    assertDataFrameEqual(X.fill_nulls(df, {"a": "x"}), [Row(a="x", b=None)])


def test_pivot_table(spark):
    df = spark.createDataFrame([("t1", "INSERT", 2), ("t1", "DELETE", 1), ("t2", "INSERT", 5)],
                               "t string, op string, n int")
    got = X.pivot_table(df, index=["t"], pivot_col="op", values=["INSERT", "DELETE"], value_col="n")
    assertDataFrameEqual(got, [Row(t="t1", INSERT=2, DELETE=1), Row(t="t2", INSERT=5, DELETE=0)])


def test_calculate_session_duration_keeps_fractions(spark):
    df = spark.createDataFrame([(ts("2026-11-25T20:00:00Z"), ts("2026-11-25T20:01:30.5Z"))],
                               "session_start timestamp, session_end timestamp")
    assert X.calculate_session_duration(df).first().duration_seconds == 90.5


def test_missing_column_error_names_the_column(spark):
    df = spark.createDataFrame([(1,)], "x int")
    with pytest.raises(X.DataFrameMissingColumnError, match="event_id"):
        X.remove_duplicates(df, id_cols=["event_id"])


def test_extraction_without_validation_names_the_look_up_it_needs(spark):
    parsed = spark.createDataFrame([('{"event_id": "e1"}',)], "value string").select(
        F.parse_json("value").alias("_json"))
    with pytest.raises(X.DataFrameMissingColumnError, match="_text_event_id"):
        X.extract_app_events(parsed)


# --- sessions ------------------------------------------------------------------------------------


def test_sessionize_orders_clicks_by_time_then_id_and_splits_on_the_gap(spark):
    clicks = [("c2", "s1", "u1", "/b", "web", ts("2026-11-25T20:00:10Z")),
              ("c1", "s1", "u1", "/a", "web", ts("2026-11-25T20:00:00Z")),
              ("c0", "s1", "u1", "/z", "web", ts("2026-11-25T20:00:10Z")),  # tie: c0 before c2
              ("c3", "s1", "u1", "/a", "web", ts("2026-11-25T20:05:00Z")),
              ("c4", "s1", "u1", "/late", "web", ts("2026-11-25T21:00:00Z"))]  # after a 55-min gap
    df = spark.createDataFrame(clicks, "click_id string, session_id string, user_id string, "
                                       "page_url string, app_type string, event_timestamp timestamp")
    got = X.sessionize_clicks(df, gap="30 minutes").orderBy("session_start").collect()
    assert len(got) == 2
    first = got[0]
    assert first.click_path == ["/a", "/z", "/b", "/a"]
    assert (first.entry_page, first.exit_page) == ("/a", "/a")
    assert (first.click_count, first.unique_pages) == (4, 3)
    assert first.session_start == datetime(2026, 11, 25, 20, 0)
    assert first.session_end == datetime(2026, 11, 25, 20, 5)
    assert first.duration_seconds == 300.0
    assert got[1].click_path == ["/late"] and got[1].duration_seconds == 0.0


# --- Debezium ------------------------------------------------------------------------------------


def sample(name: str) -> dict:
    return json.loads((SAMPLES / name).read_text())


def test_debezium_samples_handled_as_the_contract_says(spark):
    names = ["01-create-wrapped.json", "02-update-wrapped.json", "03-delete-wrapped.json",
             "04-truncate-wrapped.json", "05-message-transactional.json",
             "06-message-nontransactional.json"]
    df = kafka_rows(spark, "cdc_changes", [sample(n) for n in names] + [None])
    checked = X.validate_debezium(df)
    flags = [(r.offset, r._error, r._tombstone) for r in checked.orderBy("offset").collect()]
    assert flags == [(i, None, False) for i in range(6)] + [(6, None, True)]
    ops = F.try_variant_get(F.col("_env"), "$.op", "string")
    rows = X.transform_cdc(checked.filter(~F.col("_tombstone") & (ops != "m"))).orderBy("kafka_offset").collect()
    assert [r.operation for r in rows] == ["INSERT", "UPDATE", "DELETE", "TRUNCATE"]
    assert {r.table_name for r in rows} == {"public.customers"}
    assert [r.primary_key for r in rows] == ["1", "1", "1", None]
    update = rows[1]
    assert update.changed_columns is None, "before holds only the key: changes unknown"
    assert json.loads(update.after_json)["first_name"] == "Anne Marie"
    assert rows[0].before_json is None and rows[2].after_json is None
    assert rows[3].capture_lag_ms == 1559033904961 - 1559033904863
    assert rows[0].lsn == 24023128 and rows[0].tx_id == 555
    assert rows[0].is_snapshot is True


def test_bare_and_wrapped_envelopes_give_the_same_change(spark):
    wrapped = sample("02-update-wrapped.json")
    bare = dict(wrapped["payload"])
    bare["before"] = {"id": 1, "first_name": "Anne", "last_name": "Kretchmar", "email": "annek@noanswer.org"}
    wrapped["payload"] = bare
    checked = X.validate_debezium(kafka_rows(spark, "cdc_changes", [bare, wrapped]))
    rows = X.transform_cdc(checked).drop("kafka_offset").collect()
    assert rows[0] == rows[1]
    assert rows[0].changed_columns == ["first_name"]


def test_changed_columns_match_a_python_oracle_on_wide_random_updates(spark):
    """Changed columns of random updates of a 40-column table against the same rule in Python:
    keys in both images whose JSON values differ (a type change too), sorted; null when either
    image is missing or before holds only the key."""
    rng = random.Random(25)
    values = [None, 0, 1, 2.5, "1", "a", "", True, False, [1, 2], [2, 1], {"x": 1, "y": [1, "2"]}]
    columns = [f"c{i:02d}" for i in range(40)]

    def image() -> dict:
        return {"id": 7, **{c: rng.choice(values) for c in rng.sample(columns, rng.randint(0, 40))}}

    pairs = [(image(), image()) for _ in range(60)] + [(None, image()), ({"id": 7}, image())]
    source = {"ts_ms": 1, "table": "wide", "schema": "public"}
    records = [{"op": "u", "before": b, "after": a, "source": source, "ts_ms": 2} for b, a in pairs]

    def canonical(v) -> str:
        return json.dumps(v, sort_keys=True)

    def oracle(before, after):
        if before is None or not set(before) - {"id"}:
            return None
        return sorted(k for k in after if k in before and canonical(before[k]) != canonical(after[k]))

    checked = X.validate_debezium(kafka_rows(spark, "cdc_changes", records))
    rows = X.transform_cdc(checked).orderBy("kafka_offset").collect()
    assert [r.changed_columns for r in rows] == [oracle(b, a) for b, a in pairs]
    assert any(len(r.changed_columns or []) > 10 for r in rows)


def test_snapshot_read_is_never_an_insert(spark):
    create = sample("01-create-wrapped.json")["payload"]
    snap = {**create, "op": "r", "source": {**create["source"], "snapshot": "last"}}
    rows = X.transform_cdc(X.validate_debezium(kafka_rows(spark, "cdc_changes", [snap]))).collect()
    assert rows[0].operation == "SNAPSHOT" and rows[0].is_snapshot is True


def test_unknown_tables_pass_through_and_bad_envelopes_are_quarantined(spark):
    create = sample("01-create-wrapped.json")["payload"]
    other = {**create, "source": {**create["source"], "schema": "billing", "table": "invoices"}}
    bad_op = {**create, "op": "x"}
    no_source = {k: v for k, v in create.items() if k != "source"}
    update_without_after = {**create, "op": "u", "after": None}
    checked = X.validate_debezium(kafka_rows(spark, "cdc_changes", [other, bad_op, no_source,
                                                                     update_without_after]))
    errors = [r._error for r in checked.orderBy("offset").collect()]
    assert errors == [None, "unknown Debezium op 'x'", "missing required field 'source'",
                      "an update event needs an 'after' object"]
    assert X.transform_cdc(checked.filter("_error is null")).first().table_name == "billing.invoices"


def test_an_object_field_of_every_other_shape_is_quarantined_with_its_type(spark):
    """Object fields are checked without spelling out their type (is_object): what is not an
    object still gets its exact type in the reason, an object of any content passes the check."""
    create = sample("01-create-wrapped.json")["payload"]
    shapes = [({"ts_ms": 1, "table": "t"}, None), ({}, "missing required field 'ts_ms'"),
              ([1], "field 'source' must be object, got array"), ("db", "field 'source' must be object, got string"),
              (7, "field 'source' must be object, got bigint"), (None, "required field 'source' is null")]
    records = [{**create, "source": source} for source, _ in shapes]
    # A payload that is not an object: the value is read as a bare envelope (without an op).
    records.append({"schema": {}, "payload": "text"})
    checked = X.validate_debezium(kafka_rows(spark, "cdc_changes", records)).orderBy("offset").collect()
    assert [r._error for r in checked] == [reason for _, reason in shapes] + ["missing required field 'op'"]
    assert checked[0]["_type_source"] == "OBJECT" and checked[2]["_type_source"] == "ARRAY<BIGINT>"


def test_debezium_value_that_is_not_an_object_is_quarantined(spark):
    create = sample("01-create-wrapped.json")
    indented = b"\n\t " + json.dumps(create).encode()
    checked = X.validate_debezium(kafka_rows(spark, "cdc_changes", [[create], b"  42", indented]))
    assert [r._error for r in checked.orderBy("offset").collect()] == [
        "not a JSON object: got array", "not a JSON object: got bigint", None]


def test_every_topic_gives_the_same_reason_for_a_value_that_is_not_a_json_object(spark):
    """One envelope check for all four topics: the Debezium path and the event topics agree."""
    values = [b"", b"  ", b"{not json", b"[1, 2]", b"42", b'"text"']

    def reasons(df):
        return [r._error for r in df.orderBy("offset").collect()]

    cdc = reasons(X.validate_debezium(kafka_rows(spark, "cdc_changes", values)))
    assert None not in cdc
    for spec in (X.APP_EVENTS_SPEC, X.CLICKSTREAM_SPEC, X.EXTERNAL_DATA_SPEC):
        assert reasons(X.with_json_validation(kafka_rows(spark, "app_events", values), spec)) == cdc


def test_summarize_cdc_counts_operations_per_window_and_table(spark):
    rows = [("public.orders", "INSERT", ts("2026-11-25T20:00:01Z")),
            ("public.orders", "UPDATE", ts("2026-11-25T20:00:02Z")),
            ("public.orders", "SNAPSHOT", ts("2026-11-25T20:00:03Z")),
            ("public.users", "DELETE", ts("2026-11-25T20:01:03Z"))]
    df = spark.createDataFrame(rows, "table_name string, operation string, source_ts timestamp")
    got = {(r.table_name, r.window_start): (r.inserts, r.updates, r.deletes, r.snapshots)
           for r in X.summarize_cdc(df, window="1 minute").collect()}
    assert got == {("public.orders", datetime(2026, 11, 25, 20, 0)): (1, 1, 0, 1),
                   ("public.users", datetime(2026, 11, 25, 20, 1)): (0, 0, 1, 0)}


# --- enrichment ----------------------------------------------------------------------------------


def test_enrichment_keeps_unknown_users_and_uses_latest_segments(spark):
    events = spark.createDataFrame([("e1", "u1"), ("e2", "ghost")], "event_id string, user_id string")
    users = spark.createDataFrame([("u1", "2025-01-02", "DE", "premium"), ("u1", "2025-01-02", "DE", "premium")],
                                  "user_id string, signup_date string, country string, plan string")
    segments = spark.createDataFrame([("u1", date(2026, 11, 1), "Regular"), ("u1", date(2026, 11, 24), "VIP")],
                                     "user_id string, as_of_date date, segment string")
    got = X.enrich_with_user_segment(X.enrich_with_user_data(events, X.prepare_user_master(users)), segments)
    assertDataFrameEqual(
        got.select("event_id", "user_known", "plan", "signup_date", "user_country", "segment"),
        [Row(event_id="e1", user_known=True, plan="premium", signup_date=date(2025, 1, 2),
             user_country="DE", segment="VIP"),
         Row(event_id="e2", user_known=False, plan=None, signup_date=None, user_country=None, segment=None)])


def test_segment_is_null_before_segmentation_has_run(spark):
    events = spark.createDataFrame([("e1", "u1")], "event_id string, user_id string")
    assert X.enrich_with_user_segment(events, None).first().segment is None
