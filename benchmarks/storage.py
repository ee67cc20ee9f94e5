"""Local disk against object storage (S3A on the stack's S3-compatible server), in one run: the
same streaming job over the same topic, and the same hourly backfill over the same events."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow.fs as pafs

from benchmarks.common import MASTER, run_available_now
from benchmarks.streaming import bench_topics
from configs.spark_config import PROJECT_ROOT, load_settings, settings_for_env
from tools import stack

S3_ENV = {"S3_ENDPOINT_URL": f"http://127.0.0.1:{os.environ.get('S3_PORT', '9000')}",
          "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench-secret"}


def bench_storage(n: int, hours: int, batch_events: int) -> dict:
    from benchmarks.synthetic import app_events, as_enriched
    from utils import files
    from utils.launch import spark_submit_command, spark_submit_env
    from utils.spark_utils import create_spark_session

    stack.up(with_s3=True)
    bucket = f"bench-{uuid.uuid4().hex[:8]}"
    s3 = settings_for_env({**S3_ENV, "OUTPUT_ROOT": f"s3a://{bucket}/out"})
    files.ensure_bucket(s3.output_root, s3)
    roots = {"local": None, "s3": f"s3a://{bucket}"}
    names, _ = bench_topics(load_settings(), n, ["app_events"])
    out: dict = {"events": n, "batch_events": batch_events, "hours": hours, "streaming": {}, "backfill": {}}
    tmp = Path(tempfile.mkdtemp(prefix="bench-storage-"))
    try:
        for where, root in roots.items():
            env = {} if root is None else {**S3_ENV, "OUTPUT_ROOT": f"{root}/stream/outputs",
                                            "CHECKPOINT_ROOT": f"{root}/stream/checkpoints"}
            out["streaming"][where] = run_available_now("event_aggregation", names, MASTER, tmp / f"stream-{where}",
                                                        settings_env=env)
        # The same enriched_events in both places: written locally, then copied to S3 (a session
        # in this process may predate the S3A class path, which only a new JVM takes).
        spark = create_spark_session("bench-storage-load", load_settings(), master=MASTER)
        (as_enriched(app_events(spark, batch_events, start="2026-11-20 00:00:00", span_seconds=hours * 3600))
         .write.partitionBy("event_date").parquet(str(tmp / "batch-local" / "enriched_events")))
        spark.stop()
        fs, path = files.filesystem(f"s3a://{bucket}/batch-s3/enriched_events", s3)
        pafs.copy_files(str(tmp / "batch-local" / "enriched_events"), path,
                        source_filesystem=pafs.LocalFileSystem(), destination_filesystem=fs)
        first = datetime(2026, 11, 20, tzinfo=UTC)
        label = "%Y-%m-%d %H:00:00"
        for where, root in roots.items():
            env = spark_submit_env({**os.environ, **S3_ENV, "OUTPUT_ROOT": f"{root or tmp}/batch-{where}",
                                    "STATE_ROOT": str(tmp / f"state-{where}"), "LOG_DIR": str(tmp / f"logs-{where}"),
                                    "SPARK_EVENT_LOG_ENABLED": "false"})
            settings = settings_for_env({**S3_ENV, "OUTPUT_ROOT": f"{root or tmp}/batch-{where}"})
            cmd = spark_submit_command(PROJECT_ROOT / "jobs" / "batch" / "hourly_aggregate.py",
                                       ["--from-hour", first.strftime(label), "--to-hour",
                                        (first + timedelta(hours=hours - 1)).strftime(label), "--force"],
                                       master=MASTER, streaming=False, settings=settings)
            t = time.monotonic()
            subprocess.run(cmd, check=True, cwd=PROJECT_ROOT, env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
            out["backfill"][where] = {"wall_s": round(time.monotonic() - t, 1)}
        for part in ("streaming", "backfill"):
            local, remote = out[part]["local"], out[part]["s3"]
            key = "rows_per_s_in_batches" if part == "streaming" else "wall_s"
            out[part]["s3_vs_local"] = round(remote[key] / local[key], 2)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out
