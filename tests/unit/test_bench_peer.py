"""The peer bench's output comparison: "same output" in BENCHMARKS.md must mean the job and its
peer wrote the same rows, whatever order their files hold them in."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from benchmarks import peer

SESSIONS = pd.DataFrame({
    "session_id": ["s2", "s1"], "session_start": pd.to_datetime(["2026-11-20 00:01", "2026-11-20 00:00"]),
    "user_id": ["u2", "u1"], "app_type": ["web", "ios"],
    "session_end": pd.to_datetime(["2026-11-20 00:02", "2026-11-20 00:05"]), "click_count": [1, 2],
    "unique_pages": [1, 2], "entry_page": ["/", "/"], "exit_page": ["/", "/cart"],
    "click_path": [["/"], ["/", "/cart"]]})


def _write(root: Path, frame: pd.DataFrame) -> Path:
    folder = root / "outputs" / "clickstream_sessions"
    folder.mkdir(parents=True)
    frame.to_parquet(folder / "part-0.parquet")
    return root


def test_same_rows_in_another_order_are_the_same_output(tmp_path):
    job = _write(tmp_path / "job", SESSIONS)
    mirror = _write(tmp_path / "peer", SESSIONS.iloc[::-1])
    assert peer._same_output("clickstream_analysis", job, mirror)


@pytest.mark.parametrize("column, value", [("click_path", ["/", "/search"]), ("click_count", 3)])
def test_a_different_value_is_another_output(tmp_path, column, value):
    other = SESSIONS.copy()
    other.at[1, column] = value
    assert not peer._same_output("clickstream_analysis", _write(tmp_path / "job", SESSIONS),
                                 _write(tmp_path / "peer", other))


def test_a_missing_output_is_another_output(tmp_path):
    (tmp_path / "peer").mkdir()
    assert not peer._same_output("clickstream_analysis", _write(tmp_path / "job", SESSIONS), tmp_path / "peer")


def test_every_peer_is_built_by_a_function_of_its_job_name():
    assert all(callable(getattr(peer, f"{job}_peer", None)) for job in peer.PEERS)


@pytest.mark.parametrize("option", ["--only", "--peer-jobs", "--sweep-settings", "--streaming-topics"])
def test_an_unknown_name_exits_2_naming_the_option_before_the_stack_starts(option, capsys, monkeypatch):
    from benchmarks import run

    monkeypatch.setattr(run.stack, "up", lambda: pytest.fail("the stack was started"))
    with pytest.raises(SystemExit) as exit_:
        run.main([option, "nope"])
    assert exit_.value.code == 2 and f"{option}: unknown nope" in capsys.readouterr().err


def test_the_malformed_variant_spreads_unparseable_values_and_keeps_tombstones(spark):
    """peer_malformed's topics: about one value in `every` is not JSON (the job quarantines it,
    the peer's from_json reads it as null and drops it); a null value (a CDC tombstone) stays."""
    from pyspark.sql import functions as F

    from benchmarks import synthetic as S

    records = S.as_kafka_records(S.app_events(spark, 20_000, partitions=2)).union(
        spark.createDataFrame([("k", None)], "key string, value string"))
    out = S.with_unparseable(records, 100).withColumn(
        "parsed", F.from_json("value", "event_id string, user_id string")).cache()
    bad = out.where(F.col("value").startswith("not json: "))
    assert 100 <= bad.count() <= 300  # 200 expected; hashed, so spread and not exact
    assert bad.where(F.col("parsed.event_id").isNotNull() | F.col("parsed.user_id").isNotNull()).count() == 0
    assert out.where(F.col("value").isNull()).count() == 1
    assert out.count() == 20_001 and S.with_unparseable(records, 0) is records
