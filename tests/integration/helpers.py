"""Helpers for integration tests: generate into private topics, run jobs with spark-submit."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import pandas as pd
import requests

from configs import locations
from configs.spark_config import PROJECT_ROOT, Settings, settings_for_env
from utils import files
from utils.launch import spark_submit_command, spark_submit_env
from utils.progress import read_progress_file

MASTER = "spark://127.0.0.1:7077"


@dataclass
class Run:
    """Private topics and folders for one scenario. With `data_root` (for example
    s3a://bucket/run), outputs, checkpoints and the user master live there; logs, state and the
    truth stay in `root`. `storage_env` holds what that storage needs (endpoint, credentials)."""

    root: Path
    prefix: str
    data_root: str | None = None
    storage_env: dict[str, str] = field(default_factory=dict)

    @property
    def output_root(self) -> str:
        return locations.join(self.data_root or str(self.root), "outputs")

    @property
    def user_master(self) -> str:
        return locations.join(self.data_root or str(self.root), "user_master")

    @property
    def settings(self) -> Settings:
        return settings_for_env(self.env)

    @property
    def env(self) -> dict[str, str]:
        return {
            "OUTPUT_ROOT": self.output_root,
            "CHECKPOINT_ROOT": locations.join(self.data_root or str(self.root), "checkpoints"),
            "STATE_ROOT": str(self.root / "state"),
            "LOG_DIR": str(self.root / "logs"),
            "USER_MASTER_PATH": self.user_master,
            **self.storage_env,
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
               "--user-master-path", self.user_master, *args]
        out = subprocess.run(cmd, cwd=PROJECT_ROOT, env={**os.environ, **self.env}, check=True,
                             capture_output=True, text=True, timeout=600)
        return json.loads(out.stdout.strip().splitlines()[-1])

    def job_command(self, job: str, *args: str, extra_env: dict | None = None) -> list[str]:
        script = PROJECT_ROOT / "jobs" / ("streaming" if job in STREAMING else "batch") / f"{job}.py"
        return spark_submit_command(script, args, master=MASTER,
                                    settings=settings_for_env({**self.env, **(extra_env or {})}))

    def start_job(self, job: str, *args: str, extra_env: dict | None = None) -> subprocess.Popen:
        self.root.mkdir(parents=True, exist_ok=True)
        log = (self.root / f"{job}.out").open("ab")
        return subprocess.Popen(self.job_command(job, *args, extra_env=extra_env), cwd=PROJECT_ROOT,
                                env=spark_submit_env({**os.environ, **self.env, **(extra_env or {})}),
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def dataset(self, name: str) -> pd.DataFrame:
        """A dataset as its readers see it: for a streaming sink, only the files its
        `_spark_metadata` log committed (a killed micro-batch may leave others behind)."""
        df = files.read_dataset(locations.join(self.output_root, name), self.settings)
        return pd.DataFrame() if df is None else df

    def log_records(self, job: str) -> list[dict]:
        """The job's JSON log, one dict per record, all its runs in order."""
        return list(map(json.loads, (self.root / "logs" / f"{job}.log").read_text().splitlines()))

    def progress_records(self, job: str) -> list[dict]:
        return [r for r in self.log_records(job) if r.get("message") == "batch progress"]



# Spans midnight (two dates, several hours) with every kind of fault injected.
GEN_ARGS = ("--app-events", "12000", "--users", "300", "--seed", "11",
            "--start", "2026-11-24T23:00:00Z", "--malformed-rate", "0.02",
            "--duplicate-rate", "0.02", "--late-rate", "0.01", "--late-delay-minutes", "60")
# Small batches, so that the watermark advances while the late records are still to come.
JOB_ENV = {"KAFKA_MAX_OFFSETS_PER_TRIGGER": "1500"}

STREAMING = ("event_aggregation", "clickstream_analysis", "cdc_transformation", "data_enrichment")


def run_jobs(run: Run, jobs: tuple[str, ...], *args: str, timeout: float = 900,
             extra_env: dict | None = None, job_env: dict[str, dict] | None = None) -> dict[str, int]:
    """Start `jobs` side by side and wait for them; `job_env`: more environment for some of them."""
    procs = {job: run.start_job(job, *args, extra_env={**(extra_env or {}), **(job_env or {}).get(job, {})})
             for job in jobs}
    codes = {}
    for job, proc in procs.items():
        try:
            codes[job] = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            codes[job] = -9
    return codes


def merge_truth(run: Run, parts: list[Path]) -> Path:
    """Several generator runs (in production order) as one ground-truth folder."""
    combined = run.root / "truth"
    combined.mkdir(exist_ok=True)
    for topic in ("app_events", "clickstream", "cdc_changes", "external_data"):
        with (combined / f"{topic}.jsonl").open("w") as out:
            for part in parts:
                out.write((part / f"{topic}.jsonl").read_text())
    return combined


def read_progress(run: Run, job: str) -> dict:
    """The job's latest progress per query, as its ProgressLogger wrote it."""
    return read_progress_file(run.root / "state" / "progress" / f"{job}.json")


def wait_status(port: int, predicate, timeout: float = 30, what: str = "condition",
                interval: float = 0.3) -> dict:
    """Poll an orchestrator's /status until `predicate` holds (connection errors: not up yet)."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        with contextlib.suppress(requests.RequestException):
            last = requests.get(f"http://127.0.0.1:{port}/status", timeout=2).json()
            if predicate(last):
                return last
        time.sleep(interval)
    raise AssertionError(f"{what}: not reached in {timeout:.0f}s; last status {json.dumps(last)[:2000]}")


class Orchestrator:
    """`python orchestrator.py` over a Run's private topics and folders, with its status API."""

    def __init__(self, run: Run, port: int, *args: str, env: dict[str, str] | None = None,
                 registry_edits: dict[str, str] | None = None, batch: bool = False):
        registry = run.root / "jobs.yaml"
        text = (PROJECT_ROOT / "configs" / "jobs.yaml").read_text()
        for old, new in (registry_edits or {}).items():
            assert old in text, old
            text = text.replace(old, new)
        registry.write_text(text)
        self.port = port
        self.env = {**os.environ, **run.env, "ORCHESTRATOR_PORT": str(port),
                    "JOB_REGISTRY_PATH": str(registry), **(env or {})}
        self.cmd = [sys.executable, "orchestrator.py", *([] if batch else ["--no-batch"]), *args]
        self.log = run.root / "orchestrator.out"
        self.proc: subprocess.Popen | None = None

    def start(self) -> Orchestrator:
        self.proc = subprocess.Popen(self.cmd, cwd=PROJECT_ROOT, env=self.env, stdout=self.log.open("a"),
                                     stderr=subprocess.STDOUT, start_new_session=True)
        return self

    def status(self) -> dict:
        return requests.get(f"http://127.0.0.1:{self.port}/status", timeout=5).json()

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        """`python orchestrator.py <args>` against this orchestrator (its port, state and registry)."""
        return subprocess.run([sys.executable, "orchestrator.py", *args], cwd=PROJECT_ROOT, env=self.env,
                              capture_output=True, text=True, timeout=60, check=False)

    def wait_for(self, predicate, timeout: float, what: str) -> dict:
        return wait_status(self.port, predicate, timeout, what, interval=1.0)

    def stop(self, timeout: float = 180) -> int:
        """SIGTERM, as an operator or init system would; the exit code."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=timeout)


def wait_until_drained(run: Run, job: str, query: str, *, min_watermark: str, timeout: float) -> None:
    """Until `query` is idle (an empty batch, or nothing new since the last one) with its
    watermark past `min_watermark` (caught up)."""
    deadline = time.monotonic() + timeout
    last: dict = {}
    while time.monotonic() < deadline:
        last = read_progress(run, job).get(query, {})
        if last.get("idle") and (last.get("watermark") or "") > min_watermark:
            return
        time.sleep(2)
    raise AssertionError(f"{job}/{query} not drained in {timeout:.0f}s; last progress {last}")


def create_topics(run: Run, partitions: int, **config: str) -> None:
    """The run's four topics, created up front (instead of by the broker's defaults)."""
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic

    admin = KafkaAdminClient(bootstrap_servers="127.0.0.1:9092")
    try:
        admin.create_topics([NewTopic(run.env[f"TOPIC_{t.upper()}"], num_partitions=partitions,
                                      replication_factor=1, topic_configs=config)
                             for t in ("app_events", "clickstream", "cdc_changes", "external_data")])
    finally:
        admin.close()


def start_generator(run: Run, truth: Path, *args: str) -> subprocess.Popen:
    """The generator in the background (events keep arriving while a scenario runs)."""
    cmd = [sys.executable, "-m", "tools.generate_events", "--truth-dir", str(truth),
           "--user-master-path", str(run.root / "user_master"), *args]
    run.root.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(cmd, cwd=PROJECT_ROOT, env={**os.environ, **run.env},
                            stdout=(run.root / f"generator-{truth.name}.out").open("w"),
                            stderr=subprocess.STDOUT, start_new_session=True)


def window_figures(run: Run, truth: Path) -> dict:
    """events_aggregated_realtime against the oracle: records in/out, lost, duplicated, exact."""
    from tests import oracle

    expected = oracle.event_windows(truth, watermark=timedelta(minutes=2))
    df = run.dataset("events_aggregated_realtime")
    got: dict[tuple, tuple[int, list[str]]] = {}
    duplicated = 0
    for w, u, t, a, n, s in zip(df.window_start.dt.tz_localize("UTC"), df.user_id, df.event_type,
                                df.app_type, df.event_count, df.session_ids, strict=True):
        key = (w.to_pydatetime(), u, t, a)
        if key in got:
            duplicated += int(n)
        got[key] = (int(n), sorted(s))
    lost = sum(max(0, n - got.get(k, (0, []))[0]) for k, (n, _) in expected.items())
    duplicated += sum(max(0, n - expected.get(k, (0, []))[0]) for k, (n, _) in got.items())
    return {"events_expected": sum(n for n, _ in expected.values()), "events_out": int(df.event_count.sum())
            if len(df) else 0, "lost": lost, "duplicated": duplicated, "windows_expected": len(expected),
            "windows_out": len(df), "exact": got == expected and len(df) == len(got)}


def four_outputs_figures(run: Run, truth: Path) -> dict[str, bool]:
    """Each streaming job's main output against the oracle: exact or not."""
    from tests import oracle

    sessions = run.dataset("clickstream_sessions")
    expected_sessions = oracle.sessions(truth, gap=timedelta(minutes=30), watermark=timedelta(minutes=5))
    starts = pd.to_datetime(sessions.session_start, utc=True) if len(sessions) else []
    got_sessions = {(s, t.to_pydatetime()): (n, list(p))
                    for s, t, n, p in zip(sessions.session_id, starts, sessions.click_count, sessions.click_path,
                                          strict=True)}
    changes = run.dataset("cdc_transformed")
    enriched = run.dataset("enriched_events")
    accepted = {e["event_id"] for e in oracle.accepted(truth, "app_events", "event_id")}
    return {
        "event_aggregation": window_figures(run, truth)["exact"],
        "clickstream_analysis": len(sessions) == len(got_sessions) and got_sessions == {
            k: (v["click_count"], v["click_path"]) for k, v in expected_sessions.items()},
        "cdc_transformation": Counter(zip(changes.table_name, changes.operation, strict=True))
        == oracle.cdc_operation_counts(truth),
        "data_enrichment": len(enriched) == len(set(enriched.event_id)) and set(enriched.event_id) == accepted,
    }
