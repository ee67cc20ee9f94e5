"""A streaming sink is read by its `_spark_metadata` log: only committed files, from the newest
compaction on, and not a file the log names that is gone."""

from __future__ import annotations

import json

import pandas as pd
import pyarrow.fs as pafs

from utils import files


def test_only_the_files_the_log_committed_are_read(tmp_path):
    base = tmp_path / "ds"
    (base / "_spark_metadata").mkdir(parents=True)
    (base / "p=1").mkdir()
    for name in ("a", "b", "uncommitted"):
        pd.DataFrame({"x": [1]}).to_parquet(base / "p=1" / f"{name}.parquet")

    def entry(name: str, paths: list[str]) -> None:
        records = [json.dumps({"path": (base / "p=1" / f"{p}.parquet").as_uri(), "action": "add"}) for p in paths]
        (base / "_spark_metadata" / name).write_text("v1\n" + "".join(r + "\n" for r in records))

    entry("0", ["a"])
    entry("1", ["b"])
    entry("2.compact", ["a", "b"])
    entry("3", ["gone"])
    committed = files.committed_files(pafs.LocalFileSystem(), str(base))
    assert sorted(p.rsplit("/", 1)[1] for p in committed) == ["a.parquet", "b.parquet"]
    df = files.read_dataset(str(base))
    assert len(df) == 2 and set(df.p) == {"1"}
