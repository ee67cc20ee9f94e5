"""Class-data sharing is an optimisation: recording the archives never stops the stack."""

from __future__ import annotations

from configs.spark_config import load_settings
from tools import cds


def test_a_failed_recording_is_reported_and_the_stack_goes_on(tmp_path, monkeypatch):
    settings = load_settings(spark_cds_dir=tmp_path / "cds")

    def fails(*_args, **_kwargs):
        raise FileNotFoundError("jcmd: not found (a bare JRE)")

    monkeypatch.setattr(cds, "record", fails)
    said = cds.ensure(settings, "spark://127.0.0.1:7077")
    assert said.startswith("not recorded, jobs start without archives") and "jcmd" in said
    assert cds.ensure(load_settings(spark_cds_enabled=False)).startswith("off")


def test_existing_archives_are_kept(tmp_path, monkeypatch):
    settings = load_settings(spark_cds_dir=tmp_path / "cds")
    monkeypatch.setattr(cds, "record", lambda *_a, **_k: (_ for _ in ()).throw(AssertionError("not called")))
    for path in cds.cds_archives(settings).values():
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(b"x")
    assert cds.ensure(settings).startswith("archives in place")


def test_archives_that_no_jvm_can_use_are_deleted_and_the_others_kept(tmp_path):
    """A re-created venv or re-downloaded connector leaves archives no JVM will map again (about
    100 MB each): `make stack-up` deletes them, and keeps those whose files are unchanged."""
    import os

    (tmp_path / "jars" / "spark").mkdir(parents=True)
    (tmp_path / "jars" / "s3").mkdir()
    connector = tmp_path / "jars" / "spark" / "connector.jar"
    connector.write_bytes(b"a")
    (tmp_path / "jars" / "s3" / "aws.jar").write_bytes(b"s")
    local = load_settings(jars_dir=tmp_path / "jars", spark_cds_dir=tmp_path / "cds")
    s3 = load_settings(jars_dir=tmp_path / "jars", spark_cds_dir=tmp_path / "cds", output_root="s3a://b/o")
    local.spark_cds_dir.mkdir()
    for settings in (local, s3):
        for path in cds.cds_archives(settings).values():
            path.write_bytes(b"archive")
        cds.note_files(settings)
    before_lists = local.spark_cds_dir / "driver-0123456789ab.jsa"  # recorded by an older version
    before_lists.write_bytes(b"archive")
    dead = local.spark_cds_dir / "driver-0123456789ab.999999999.partial"
    recording = local.spark_cds_dir / f"executor-0123456789ab.{os.getpid()}.partial"
    dead.write_bytes(b"half")
    recording.write_bytes(b"half")

    assert set(cds.prune(local)) == {before_lists, dead}
    kept = {*cds.cds_archives(local).values(), *cds.cds_archives(s3).values(), recording}
    assert set(local.spark_cds_dir.glob("*.jsa")) | {recording} == kept, "the S3A archives still fit their files"

    connector.write_bytes(b"re-downloaded")
    assert set(cds.prune(local)) == kept - {recording}, "both class paths hold the connector"
    assert sorted(p.name for p in local.spark_cds_dir.iterdir()) == [recording.name]


def test_starting_the_stack_says_how_many_archive_files_it_deleted(tmp_path, monkeypatch):
    settings = load_settings(spark_cds_dir=tmp_path / "cds")
    settings.spark_cds_dir.mkdir()
    (settings.spark_cds_dir / "driver-0123456789ab.jsa").write_bytes(b"stale")

    def records(s, _master):
        for path in cds.cds_archives(s).values():
            path.write_bytes(b"x")

    monkeypatch.setattr(cds, "record", records)
    said = cds.ensure(settings, "spark://127.0.0.1:7077")
    assert said.startswith("archives recorded") and said.endswith("1 unusable archive files deleted"), said
    assert cds.ensure(settings).startswith("archives in place") and "deleted" not in cds.ensure(settings)
    assert sorted(p.name for p in settings.spark_cds_dir.iterdir()) == sorted(
        name for p in cds.cds_archives(settings).values() for name in (p.name, p.name + ".files.json"))


def test_the_training_waits_for_a_batch_with_rows_and_a_quarantine_batch():
    import json

    def line(**record):
        return json.dumps(record)

    empty = line(message="batch progress", query_name="events_aggregated_realtime", input_rows=0)
    rows = line(message="batch progress", query_name="events_aggregated_realtime", input_rows=400)
    quarantined = line(message="quarantine batch", batch_id=0, invalid_records=20)
    assert not cds.trained([empty, "a line of Spark's own"])
    assert not cds.trained([empty, rows])
    assert not cds.trained([quarantined])
    assert cds.trained([empty, rows, "not json", quarantined])
