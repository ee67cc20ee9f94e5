"""The quarantine follower's pieces on a local session: offsets from a checkpoint, the ranges
still to quarantine, the replace-on-rerun write, the ledger, and the adoption of a folder an
earlier version's streaming file sink wrote. The follower as a whole (Kafka rereads, restarts,
SIGKILLs) is checked against the generator's truth in tests/integration and tests/chaos."""

from __future__ import annotations

import json
import shutil

from pyspark.sql import functions as F

from configs.spark_config import load_settings
from utils import quarantine as Q
from utils import transformations as X
from utils.spark_utils import write_parquet_stream

OFFSETS_ENTRY = ('v1\n{"batchWatermarkMs":0,"batchTimestampMs":1,"conf":{"spark.sql.shuffle.partitions":"2"}}\n'
                 '{"p_app_events":{"0":5876,"1":6561}}')


def test_offsets_are_read_from_a_checkpoint_entry_and_a_source_start():
    assert Q.parse_offsets(OFFSETS_ENTRY, "p_app_events") == {0: 5876, 1: 6561}
    assert Q.parse_offsets('\x00v1\n{"p_app_events":{"0":0,"1":3}}', "p_app_events") == {0: 0, 1: 3}
    try:
        Q.parse_offsets(OFFSETS_ENTRY, "clickstream")
    except ValueError as exc:
        assert "clickstream" in str(exc)
    else:
        raise AssertionError("a checkpoint without the topic must not pass for an empty range")


def test_pending_ranges_skip_what_is_done_and_start_new_partitions_at_the_earliest():
    assert Q.pending({0: 10, 1: 20}, {0: 15, 1: 20}) == {0: (10, 15)}
    assert Q.pending({0: 10}, {0: 15, 1: 4}) == {0: (10, 15), 1: (-2, 4)}
    assert Q.pending({0: 30}, {0: 15, 1: 0}) == {}, "ahead of the batch (an earlier query's end), empty partition"
    assert Q.advance({0: 30, 1: 5}, {0: 15, 1: 9, 2: 1}) == {0: 30, 1: 9, 2: 1}


def _invalid_rows(spark, offsets: list[int], day: str = "2026-11-25"):
    rows = [(o % 2, o, f"{day} 20:00:00", "{bad" if o % 3 else '{"event_id": "e1"}') for o in offsets]
    raw = spark.createDataFrame(rows, "partition int, offset long, ts string, value string").select(
        F.lit("app_events").alias("topic"), "partition", "offset", F.to_timestamp("ts").alias("timestamp"),
        F.col("value").cast("binary").alias("value"))
    return X.to_quarantine(raw.transform(X.with_json_validation, X.APP_EVENTS_SPEC))


def test_a_rerun_step_replaces_its_files_and_leaves_no_staging(spark, tmp_path):
    root = str(tmp_path / "_quarantine" / "app_events")
    first = _invalid_rows(spark, list(range(30))).union(_invalid_rows(spark, [31, 32], day="2026-11-26"))
    Q.write_invalid(spark, first, root, "job-000000000007")
    Q.write_invalid(spark, first, root, "job-000000000007")  # the step again, after a crash
    Q.write_invalid(spark, _invalid_rows(spark, [40, 41]), root, "job-000000000008")
    got = spark.read.parquet(root)
    assert sorted(r.offset for r in got.collect()) == [*range(30), 31, 32, 40, 41]
    assert {str(r.quarantine_date) for r in got.select("quarantine_date").distinct().collect()} == {
        "2026-11-25", "2026-11-26"}
    assert sorted(p.name for p in (tmp_path / "_quarantine" / "app_events").rglob("*.parquet")) == [
        "job-000000000007.parquet", "job-000000000007.parquet", "job-000000000008.parquet"]
    assert not list((tmp_path / "_quarantine" / "app_events" / "_staging").iterdir())


def test_the_ledger_keeps_its_newest_entries(spark, tmp_path):
    ledger = Q.Ledger(spark, str(tmp_path / "ledger"))
    assert ledger.latest() is None
    for batch in range(30):
        ledger.add(batch, {0: batch * 10, 1: batch})
    assert ledger.latest() == (29, {0: 290, 1: 29})
    kept = sorted(int(p.name) for p in (tmp_path / "ledger").iterdir() if p.name.isdigit())
    assert kept == list(range(30 - Q.LEDGER_ENTRIES_KEPT, 30))


def test_a_file_sink_output_is_adopted_with_the_same_rows(spark, tmp_path):
    """The committed files stay, a killed micro-batch's file moves aside, the log retires: a plain
    read then sees what the sink log showed."""
    source, root = tmp_path / "in", tmp_path / "_quarantine" / "app_events"
    source.mkdir()
    (source / "1.json").write_text("\n".join(json.dumps({"partition": 0, "offset": o, "timestamp":
                                                         "2026-11-25T20:00:00Z", "value": "{bad"})
                                             for o in range(5)))
    stream = spark.readStream.schema("partition int, offset long, timestamp timestamp, value string").json(
        str(source)).select(F.lit("app_events").alias("topic"), "partition", "offset", "timestamp",
                            F.col("value").cast("binary").alias("value"))
    query = write_parquet_stream(X.to_quarantine(stream.transform(X.with_json_validation, X.APP_EVENTS_SPEC)),
                                 path=str(root), checkpoint_location=str(tmp_path / "ckpt"), query_name="q",
                                 settings=load_settings(), partition_by=["quarantine_date"], available_now=True)
    query.awaitTermination()
    committed = next(root.rglob("part-*.parquet"))
    shutil.copy(committed, committed.with_name("part-killed-batch.parquet"))  # never in the log
    assert spark.read.parquet(str(root)).count() == 5

    assert Q.adopt_sink_output(spark, str(root))
    assert not (root / "_spark_metadata").exists()
    assert (root / "_uncommitted" / "part-killed-batch.parquet").exists()
    assert sorted(r.offset for r in spark.read.parquet(str(root)).collect()) == list(range(5))
    assert not Q.adopt_sink_output(spark, str(root)), "once only"


class _FromRows(Q.QuarantineFollower):
    """The follower with its Kafka reread served from local rows (the bookkeeping under test)."""

    rows = None

    def _read(self, ranges):
        wanted = F.lit(False)
        for p, (start, end) in ranges.items():
            wanted = wanted | ((F.col("partition") == p) & (F.col("offset") >= start) & (F.col("offset") < end))
        self.reads.append(ranges)
        return self.rows.filter(wanted)


def test_the_follower_rereads_only_dirty_or_unknown_batches_exactly_once(spark, tmp_path):
    settings = load_settings(output_root=str(tmp_path / "out"), checkpoint_root=str(tmp_path / "ckpt"))
    main = tmp_path / "ckpt" / "j" / "main"
    (main / "sources" / "0").mkdir(parents=True)
    (main / "offsets").mkdir()
    (main / "commits").mkdir()
    (main / "sources" / "0" / "0").write_text('\x00v1\n{"app_events":{"0":0}}')

    def commit(batch: int, end: int) -> None:
        (main / "offsets" / str(batch)).write_text(f'v1\n{{"batchWatermarkMs":0}}\n{{"app_events":{{"0":{end}}}}}')
        (main / "commits" / str(batch)).write_text("v1\n{}")

    _FromRows.rows = _raw(spark, 12, valid={0, 3, 4, 5, 9})

    def follower():
        f = _FromRows(spark, settings, job="j", query_name="main", topic="app_events",
                      validate=lambda raw: raw.transform(X.with_json_validation, X.APP_EVENTS_SPEC))
        f.reads = []
        return f

    first = follower()
    commit(0, 3)
    commit(1, 6)
    first.counts.by_batch.update({0: 2, 1: 0})  # as the main query's progress events report them
    assert first.step() and first.step() and not first.step()
    assert first.reads == [{0: (0, 3)}], "batch 1 was clean: not reread"

    commit(2, 9)
    commit(3, 10)
    commit(5, 12)  # batch 4's offsets already aged out of the checkpoint
    restarted = follower()  # a new driver: the counts of batches 2-5 were never seen
    restarted.finish()
    assert restarted.reads == [{0: (6, 9)}, {0: (9, 10)}, {0: (10, 12)}]
    assert Q.Ledger(spark, settings.checkpoint_path("j", "quarantine_ledger")).latest() == (5, {0: 12})
    got = sorted(r.offset for r in spark.read.parquet(settings.quarantine_path("app_events")).collect())
    assert got == [1, 2, 6, 7, 8, 10, 11], "each invalid record once"


def _raw(spark, n: int, valid: set[int]):
    """Kafka-like rows on partition 0: a valid app event at the offsets in `valid`, broken JSON elsewhere."""
    event = ('{"event_id": "e%d", "user_id": "u", "event_type": "click", "app_type": "web", '
             '"session_id": "s", "event_timestamp": "2026-11-25T20:00:00Z"}')
    rows = [(0, o, "2026-11-25 20:00:00", event % o if o in valid else "{bad") for o in range(n)]
    return spark.createDataFrame(rows, "partition int, offset long, ts string, value string").select(
        F.lit("app_events").alias("topic"), "partition", "offset", F.to_timestamp("ts").alias("timestamp"),
        F.col("value").cast("binary").alias("value"))
