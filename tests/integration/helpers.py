"""Helpers for integration tests: generate into private topics, run jobs with spark-submit."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from configs.spark_config import PROJECT_ROOT
from utils.spark_utils import spark_submit_command, spark_submit_env

MASTER = "spark://127.0.0.1:7077"


@dataclass
class Run:
    """Private topics and folders for one scenario."""

    root: Path
    prefix: str

    @property
    def env(self) -> dict[str, str]:
        return {
            "OUTPUT_ROOT": str(self.root / "outputs"),
            "CHECKPOINT_ROOT": str(self.root / "checkpoints"),
            "STATE_ROOT": str(self.root / "state"),
            "LOG_DIR": str(self.root / "logs"),
            "USER_MASTER_PATH": str(self.root / "user_master"),
            "TOPIC_APP_EVENTS": f"{self.prefix}app_events",
            "TOPIC_CLICKSTREAM": f"{self.prefix}clickstream",
            "TOPIC_CDC_CHANGES": f"{self.prefix}cdc_changes",
            "TOPIC_EXTERNAL_DATA": f"{self.prefix}external_data",
            "SPARK_MASTER_URL": MASTER,
            "SPARK_LOCAL_IP": "127.0.0.1",
        }

    @property
    def truth(self) -> Path:
        return self.root / "truth"

    def generate(self, *args: str, truth: Path | None = None) -> dict:
        cmd = [sys.executable, "-m", "tools.generate_events", "--truth-dir", str(truth or self.truth),
               "--user-master-path", str(self.root / "user_master"), *args]
        out = subprocess.run(cmd, cwd=PROJECT_ROOT, env={**os.environ, **self.env}, check=True,
                             capture_output=True, text=True, timeout=600)
        return json.loads(out.stdout.strip().splitlines()[-1])

    def job_command(self, job: str, *args: str) -> list[str]:
        script = PROJECT_ROOT / "jobs" / ("streaming" if job in STREAMING else "batch") / f"{job}.py"
        return spark_submit_command(script, args, master=MASTER)

    def start_job(self, job: str, *args: str, extra_env: dict | None = None) -> subprocess.Popen:
        self.root.mkdir(parents=True, exist_ok=True)
        log = (self.root / f"{job}.out").open("ab")
        return subprocess.Popen(self.job_command(job, *args), cwd=PROJECT_ROOT,
                                env=spark_submit_env({**os.environ, **self.env, **(extra_env or {})}),
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def dataset(self, name: str) -> pd.DataFrame:
        """A dataset as its readers see it: for a streaming sink, only the files its
        `_spark_metadata` log committed (a killed micro-batch may leave others behind)."""
        path = self.root / "outputs" / name
        if not path.exists():
            return pd.DataFrame()
        committed = committed_files(path)
        if committed is None:
            return pd.read_parquet(path)
        if not committed:
            return pd.DataFrame()
        frames = []
        for f in committed:
            frame = pd.read_parquet(f)
            for part in Path(f).relative_to(path).parts[:-1]:
                key, value = part.split("=", 1)
                frame[key] = value
            frames.append(frame)
        return pd.concat(frames, ignore_index=True)

    def progress_records(self, job: str) -> list[dict]:
        path = self.root / "logs" / f"{job}.log"
        return [r for r in map(json.loads, path.read_text().splitlines())
                if r.get("message") == "batch progress"]



# Spans midnight (two dates, several hours) with every kind of fault injected.
GEN_ARGS = ("--app-events", "12000", "--users", "300", "--seed", "11",
            "--start", "2026-11-24T23:00:00Z", "--malformed-rate", "0.02",
            "--duplicate-rate", "0.02", "--late-rate", "0.01", "--late-delay-minutes", "60")
# Small batches, so that the watermark advances while the late records are still to come.
JOB_ENV = {"KAFKA_MAX_OFFSETS_PER_TRIGGER": "1500"}

def committed_files(path: Path) -> list[str] | None:
    """Files committed by a file sink's metadata log (None when the folder has no log)."""
    log_dir = path / "_spark_metadata"
    if not log_dir.is_dir():
        return None
    added: dict[str, bool] = {}
    entries = sorted((p for p in log_dir.iterdir() if re.fullmatch(r"\d+(\.compact)?", p.name)),
                     key=lambda p: int(p.name.split(".")[0]))
    for entry in entries:
        for line in entry.read_text().splitlines()[1:]:
            record = json.loads(line)
            local = record["path"].removeprefix("file://")
            added[local] = record["action"] == "add"
    return [p for p, present in added.items() if present and Path(p).exists()]


STREAMING = ("event_aggregation", "clickstream_analysis", "cdc_transformation", "data_enrichment")


def run_jobs(run: Run, jobs: tuple[str, ...], *args: str, timeout: float = 900,
             extra_env: dict | None = None) -> dict[str, int]:
    procs = {job: run.start_job(job, *args, extra_env=extra_env) for job in jobs}
    codes = {}
    for job, proc in procs.items():
        try:
            codes[job] = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            codes[job] = -9
    return codes
