"""The four streaming jobs on the real broker and 2-worker cluster, checked against the ground
truth of the generator (tests/oracle.py computes every expectation independently)."""

from __future__ import annotations

import base64
import json
from collections import Counter
from datetime import timedelta

import pandas as pd
import pytest

from tests import oracle

pytestmark = pytest.mark.integration

@pytest.fixture(scope="module")
def done(streamed):
    return streamed


def _utc(series: pd.Series) -> pd.Series:
    return pd.to_datetime(series, utc=True)


def test_event_windows_equal_the_oracle(done):
    run, _ = done
    expected = oracle.event_windows(run.truth, watermark=timedelta(minutes=2))
    df = run.dataset("events_aggregated_realtime")
    got = {(w.to_pydatetime(), u, t, a): (n, sorted(s))
           for w, u, t, a, n, s in zip(_utc(df.window_start), df.user_id, df.event_type, df.app_type,
                                       df.event_count, df.session_ids, strict=True)}
    assert len(df) == len(got), "each window is written once"
    assert got == expected
    assert (_utc(df.window_end) - _utc(df.window_start) == pd.Timedelta(minutes=1)).all()


def test_sessions_equal_the_oracle(done):
    run, _ = done
    expected = oracle.sessions(run.truth, gap=timedelta(minutes=30), watermark=timedelta(minutes=5))
    df = run.dataset("clickstream_sessions")
    assert len(df) == len(expected) > 100
    for row in df.itertuples():
        want = expected[(row.session_id, _utc(pd.Series([row.session_start]))[0].to_pydatetime())]
        assert row.click_path.tolist() == want["click_path"]
        assert (row.entry_page, row.exit_page) == (want["entry_page"], want["exit_page"])
        assert (row.click_count, row.unique_pages) == (want["click_count"], want["unique_pages"])
        assert row.duration_seconds == pytest.approx(want["duration_seconds"], abs=1e-3)
        assert (row.user_id, row.app_type) == (want["user_id"], want["app_type"])


def test_cdc_operations_per_table_equal_the_oracle(done):
    run, _ = done
    df = run.dataset("cdc_transformed")
    got = Counter(zip(df.table_name, df.operation, strict=True))
    assert got == oracle.cdc_operation_counts(run.truth)
    assert "SNAPSHOT" in set(df.operation) and "TRUNCATE" in set(df.operation)
    updates = df[df.operation == "UPDATE"]
    orders = updates[updates.table_name == "public.orders"]
    assert all(list(c) == ["status"] for c in orders.changed_columns)
    users = updates[updates.table_name == "public.users"]
    assert users.changed_columns.isna().all(), "users updates carry only the key in before"


def test_cdc_summary_equals_the_oracle(done):
    """Every window the watermark closed, written once, with its counts per operation."""
    run, _ = done
    df = run.dataset("cdc_table_summary")
    operations = tuple(oracle.CDC_OPS.values())
    columns = tuple(f"{op.lower()}s" for op in operations)  # INSERT -> inserts
    got = {(w.to_pydatetime(), t): tuple(int(getattr(row, c)) for c in columns)
           for w, t, row in zip(_utc(df.window_start), df.table_name, df.itertuples(), strict=True)}
    assert len(df) == len(got), "each window is written once"
    assert (df.total_changes == df[list(columns)].sum(axis=1)).all()
    expected = oracle.cdc_summary(run.truth, watermark=timedelta(minutes=2))
    assert len(expected) > 20 and any(n["SNAPSHOT"] for n in expected.values())
    assert got == {k: tuple(n[op] for op in operations) for k, n in expected.items()}


def test_enriched_events_are_the_deduplicated_events_with_user_data(done):
    run, _ = done
    expected = {e["event_id"]: e for e in oracle.accepted(run.truth, "app_events", "event_id")}
    df = run.dataset("enriched_events")
    assert len(df) == len(set(df.event_id)) == len(expected)
    assert set(df.event_id) == set(expected)
    master = set(pd.read_parquet(run.root / "user_master").user_id)
    assert (df.user_known == df.user_id.isin(master)).all()
    assert (~df.user_known).sum() > 0, "unknown users are kept, flagged"
    assert df.plan[df.user_known].notna().all() and df.segment.isna().all()
    sample = df.iloc[0]
    src = expected[sample.event_id]
    assert sample.device_type == src["device"]["type"] and sample.country == src["location"]["country"]


def test_external_data_landed(done):
    run, _ = done
    expected = oracle.accepted(run.truth, "external_data", "record_id")
    df = run.dataset("external_data")
    assert sorted(df.record_id) == sorted(e["record_id"] for e in expected)
    by_id = {e["record_id"]: e for e in expected}
    assert all(json.loads(p) == by_id[r]["payload"] for r, p in zip(df.record_id, df.payload_json, strict=True))


@pytest.mark.parametrize("topic", ["app_events", "clickstream", "cdc_changes", "external_data"])
def test_every_malformed_record_is_quarantined_with_a_reason(done, topic):
    run, _ = done
    bad = oracle.malformed(run.truth, topic)
    df = run.dataset(f"_quarantine/{topic}")
    assert len(df) == len(bad)
    assert df.error.str.len().gt(0).all()
    assert Counter(base64.b64decode(v) for v in df.raw_value_base64) == oracle.malformed_values(run.truth, topic)


def test_every_consumed_record_is_accounted_for(done):
    run, summary = done
    counts = summary["counts"]
    progress = [p for p in run.progress_records("event_aggregation")
                if p["query_name"] == "events_aggregated_realtime"]
    consumed = sum(p.get("consumed.records") or 0 for p in progress)
    quarantined = sum(p.get("consumed.quarantined") or 0 for p in progress)
    kept = sum(p.get("deduplicated.events") or 0 for p in progress)
    late = sum(p["rows_dropped_by_watermark"] for p in progress)
    total = sum(n for k, n in counts.items() if k.startswith("app_events:"))
    assert consumed == total
    assert quarantined == counts["app_events:malformed"]
    # Valid records either survive deduplication or are counted as duplicates or late drops, and
    # both counts equal the generator's truth: every late record is dropped by the watermark, and
    # so is a re-delivery of a late record (it follows it by seconds); other re-deliveries are
    # removed as duplicates.
    duplicates = consumed - quarantined - kept - late
    assert kept == len(oracle.accepted(run.truth, "app_events", "event_id"))
    records = oracle.load(run.truth, "app_events")
    late_ids = {json.loads(r["value"])["event_id"] for r in records if r["kind"] == "late"}
    late_redeliveries = sum(1 for r in records if r["kind"] == "duplicate"
                            and json.loads(r["value"])["event_id"] in late_ids)
    assert late == counts["app_events:late"] + late_redeliveries > 0
    assert duplicates == counts["app_events:duplicate"] - late_redeliveries > 0
    cdc = [p for p in run.progress_records("cdc_transformation") if p["query_name"] == "cdc_transformed"]
    assert sum(p.get("consumed.tombstones") or 0 for p in cdc) == oracle.tombstones(run.truth)


def test_outputs_readable_with_plain_spark_read(done, spark_cluster_session):
    run, _ = done
    for name in ("events_aggregated_realtime", "clickstream_sessions", "cdc_transformed",
                 "cdc_table_summary", "enriched_events", "external_data"):
        assert spark_cluster_session.read.parquet(str(run.root / "outputs" / name)).count() > 0


def test_two_of_the_jobs_ran_without_usable_cds_archives(done):
    """The outputs above include a job that found no archive and one that found damaged ones."""
    run, _ = done
    for job, folder in (("clickstream_analysis", "cds-missing"), ("cdc_transformation", "cds-damaged")):
        starting = next(r for r in run.log_records(job) if r["message"] == "starting")
        assert folder in starting["settings"]["spark_cds_dir"], starting["settings"]
