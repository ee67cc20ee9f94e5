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
