"""One read for the windows and the quarantine (utils/fanout.py), through event_aggregation's own
composition on a local session: outputs against an oracle written here, a restart, a replayed
batch that the sinks must skip, and the shared shuffle in the executed plan."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timedelta

from pyspark.sql import functions as F

from configs.spark_config import load_settings
from jobs.streaming import event_aggregation as job
from utils.fanout import start_file_sinks, tagged_union

KAFKA_SCHEMA = "partition int, offset long, timestamp timestamp, value string"
T0 = datetime(2026, 11, 25, 20, 0)


def _event(i: str, second: int, user: str = "u1") -> str:
    return json.dumps({"event_id": i, "event_type": "click", "user_id": user, "session_id": f"s-{user}",
                       "app_type": "web", "event_timestamp": (T0 + timedelta(seconds=second)).isoformat() + "Z"})


def _records(first_offset: int, values: list[str]) -> list[dict]:
    return [{"partition": 0, "offset": first_offset + n, "timestamp": "2026-11-25T20:10:00Z", "value": v}
            for n, v in enumerate(values)]


BATCH_1 = [_event("a", 5), _event("b", 30), _event("a", 5), '{"event_id": "x"', _event("c", 70, "u2"),
           json.dumps({"event_id": "y", "user_id": "u1"})]
BATCH_2 = [_event("d", 400), _event("b", 30), "not json at all", _event("e", 75, "u2")]


def _oracle_windows(values: list[str], closed_before: datetime) -> Counter:
    """Distinct valid event ids per (minute, user), written here with plain Python."""
    seen: dict[str, tuple[datetime, str]] = {}
    for value in values:
        try:
            record = json.loads(value)
        except ValueError:
            continue
        if not {"event_id", "event_type", "user_id", "session_id", "app_type", "event_timestamp"} <= record.keys():
            continue
        t = datetime.fromisoformat(record["event_timestamp"].rstrip("Z"))
        seen.setdefault(record["event_id"], (t.replace(second=0), record["user_id"]))
    return Counter(key for key in seen.values() if key[0] + timedelta(minutes=1) <= closed_before)


def test_one_read_writes_windows_and_quarantine_exactly_once(spark, tmp_path, capsys):
    source, out, ckpt = tmp_path / "in", tmp_path / "out", tmp_path / "ckpt"
    settings = load_settings(output_root=str(out), checkpoint_root=str(ckpt), trigger_interval="1 second",
                             spark_shuffle_partitions=2)
    checkpoint = settings.checkpoint_path(job.JOB, "app_events")

    def run_once():
        records = spark.readStream.schema(KAFKA_SCHEMA).json(str(source))
        raw = records.select(F.lit("app_events").alias("topic"), "partition", "offset", "timestamp",
                             F.col("value").cast("binary").alias("value"))
        query = start_file_sinks(tagged_union(job.outputs(raw, settings)), job.sinks(settings),
                                 checkpoint_location=checkpoint, query_name="fanout_test",
                                 settings=settings, available_now=True)
        query.awaitTermination()
        return query

    source.mkdir()
    (source / "1.json").write_text("\n".join(json.dumps(r) for r in _records(0, BATCH_1)))
    # Without the batch that only moves the watermark, the last plan is one that read records.
    spark.conf.set("spark.sql.streaming.noDataMicroBatches.enabled", "false")
    try:
        run_once().explain()
    finally:
        spark.conf.unset("spark.sql.streaming.noDataMicroBatches.enabled")
    assert "ReusedExchange" in capsys.readouterr().out, "the quarantine branch must read the valid branch's shuffle"

    (source / "2.json").write_text("\n".join(json.dumps(r) for r in _records(100, BATCH_2)))
    run_once()
    # A crash between writing the outputs and committing the batch: the batch runs again on
    # restart, and both sinks must skip what they already logged.
    commits = sorted((p for p in (tmp_path / "ckpt").rglob("commits/*") if p.name.isdigit()),
                     key=lambda p: int(p.name))
    commits[-1].unlink()
    commits[-1].with_name(f".{commits[-1].name}.crc").unlink(missing_ok=True)
    run_once()

    windows = spark.read.parquet(settings.dataset_path(job.DATASET)).collect()
    got = Counter({(r.window_start, r.user_id): r.event_count for r in windows})
    assert len(windows) == len(got), "a window was written twice"
    # The watermark (2 minutes behind the newest event, 20:06:40) has closed every window up to 20:04.
    assert got == _oracle_windows(BATCH_1 + BATCH_2, closed_before=datetime(2026, 11, 25, 20, 4, 40))
    assert sum(got.values()) == 4

    quarantine = spark.read.parquet(settings.quarantine_path("app_events")).orderBy("offset").collect()
    assert [(r.offset, r.error) for r in quarantine] == [
        (3, "invalid JSON"), (5, "missing required field 'event_type'"), (102, "invalid JSON")]
    assert [r.raw_value for r in quarantine][0] == '{"event_id": "x"'
