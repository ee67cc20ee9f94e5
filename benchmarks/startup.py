"""What users feel when a job starts: spark-submit to the first committed micro-batch, phase by
phase, and a killed driver to the next committed batch under the orchestrator. Each lever is
measured against the launch without it, in the same run:

- "before":          the connector jars copied per application (--jars), no CDS archive;
- "class path":      the jars on the driver's and executors' class path, no CDS archive;
- "class path + CDS": and class-data-sharing archives (tools/cds.py);
- "class path + CDS + C1 driver": as the jobs start by default (the driver JVM compiles with C1
  only: SPARK_DRIVER_C1_ONLY).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

from benchmarks.common import MAIN_QUERY, MASTER, batches_in, job_env, logged_at, percentile
from configs.spark_config import PROJECT_ROOT, load_settings, settings_for_env
from tools import stack

JOB = "event_aggregation"
# As the jobs start by default: the jars on the class path, CDS, a C1-only driver.
DEFAULT_LAUNCH = "class path + CDS + C1 driver"


def launch_variants() -> dict[str, tuple[dict[str, str], dict[str, str]]]:
    """name -> (environment, Spark conf) of each way to launch that the bench compares."""
    from utils.launch import connector_jars

    before = {"spark.jars": ",".join(connector_jars(load_settings())),
              "spark.driver.extraClassPath": "", "spark.executor.extraClassPath": ""}
    tiered = {"SPARK_DRIVER_C1_ONLY": "false"}
    return {"before": ({"SPARK_CDS_ENABLED": "false", **tiered}, before),
            "class path": ({"SPARK_CDS_ENABLED": "false", **tiered}, {}),
            "class path + CDS": (tiered, {}),
            DEFAULT_LAUNCH: ({}, {})}


def _records(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def phases(records: list[dict], submitted: float) -> dict[str, float | None]:
    """Seconds from spark-submit to each start-up mark in a job's log (None: not reached)."""
    def first(pred) -> float | None:
        hit = next((r for r in records if pred(r)), None)
        return round(logged_at(hit).timestamp() - submitted, 1) if hit else None

    batch = "batch progress"
    return {"python_started": first(lambda r: r.get("message") == "starting"),
            "session_ready": first(lambda r: r.get("message") == "spark session ready"),
            "queries_started": first(lambda r: r.get("message") == "queries started"),
            "first_batch": first(lambda r: r.get("message") == batch),
            "first_batch_main_query": first(lambda r: r.get("message") == batch
                                            and r.get("query_name") == MAIN_QUERY[JOB])}


def start_once(names: dict[str, str], root: Path, env_extra: dict, conf: dict, timeout: float = 240) -> dict:
    """One continuous run of the job on the idle cluster until its main query committed a batch."""
    from utils.launch import spark_submit_command

    root.mkdir(parents=True)
    (root / "users.csv").write_text("user_id,signup_date,country,plan\n")
    env = {**job_env(root, names, MASTER), **env_extra}
    cmd = spark_submit_command(PROJECT_ROOT / "jobs" / "streaming" / f"{JOB}.py", [], master=MASTER,
                               settings=settings_for_env(env), conf=conf)
    log = root / "logs" / f"{JOB}.log"
    submitted = time.time()
    with (root / "job.out").open("w") as out:
        job = subprocess.Popen(cmd, cwd=PROJECT_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                               start_new_session=True)
        try:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and job.poll() is None:
                if phases(_records(log), submitted)["first_batch_main_query"] is not None:
                    break
                time.sleep(0.3)
        finally:
            os.killpg(job.pid, signal.SIGTERM)
            job.wait(timeout=120)
    return phases(_records(log), submitted)


def bench_startup(rounds: int = 2, events: int = 5000) -> dict:
    """Each launch variant `rounds` times, interleaved, over the same small topic."""
    from benchmarks.streaming import bench_topics

    names, _ = bench_topics(load_settings(), events, ["app_events"])
    variants = launch_variants()
    runs: dict[str, list[dict]] = {name: [] for name in variants}
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
        for i in range(rounds):
            for name, (env, conf) in variants.items():
                runs[name].append(start_once(names, Path(tmp) / f"{i}-{name.replace(' ', '_')}", env, conf))
    return {"events": events, "rounds": rounds, "runs": runs,
            "median_first_batch_s": {name: _median([r["first_batch"] for r in rs]) for name, rs in runs.items()},
            "median_first_batch_main_query_s": {name: _median([r["first_batch_main_query"] for r in rs])
                                                for name, rs in runs.items()}}


def _median(values: list[float | None]) -> float | None:
    return percentile([v for v in values if v is not None], 0.5)


def _status(port: int) -> dict:
    return requests.get(f"http://127.0.0.1:{port}/status", timeout=5).json()["jobs"][JOB]


def _last_batch(log: Path) -> tuple[int, float]:
    """(batch id, log time) of the main query's newest committed batch; (-1, 0) before the first."""
    batches = batches_in(log, MAIN_QUERY[JOB])
    return (batches[-1]["batch_id"], logged_at(batches[-1]).timestamp()) if batches else (-1, 0.0)


def recover_once(names: dict[str, str], root: Path, env_extra: dict, restart: dict[str, str], *,
                 kills: int, port: int, settle_seconds: int = 30) -> list[float | None]:
    """event_aggregation under the orchestrator while input arrives; its driver (the spark-submit
    JVM and the Python process) SIGKILLed `kills` times, each once the job has been running for
    `settle_seconds`: seconds from each kill to the next committed batch. `restart`: edits of the
    registry's restart policy (text replacements in configs/jobs.yaml)."""
    root.mkdir(parents=True)
    (root / "users.csv").write_text("user_id,signup_date,country,plan\n")
    registry = root / "jobs.yaml"
    text = (PROJECT_ROOT / "configs" / "jobs.yaml").read_text().replace("start_seconds: 30", "start_seconds: 10")
    for old, new in restart.items():
        assert old in text, old
        text = text.replace(old, new)
    registry.write_text(text)
    env = {**job_env(root, names, MASTER), **env_extra, "ORCHESTRATOR_PORT": str(port),
           "JOB_REGISTRY_PATH": str(registry)}
    log = root / "logs" / f"{JOB}.log"
    # 100 records/s for as long as the kills take: each batch has rows to commit.
    gen = subprocess.Popen([sys.executable, "-m", "tools.generate_events", "--app-events", "60000", "--rate", "100",
                            "--user-master-path", str(root / "users")], cwd=PROJECT_ROOT, env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    orch = subprocess.Popen([sys.executable, "orchestrator.py", "--no-batch", "--jobs", JOB], cwd=PROJECT_ROOT,
                            env=env, stdout=(root / "orchestrator.out").open("w"), stderr=subprocess.STDOUT,
                            start_new_session=True)
    recoveries = []
    try:
        for _ in range(kills):
            deadline = time.monotonic() + 400
            while time.monotonic() < deadline:
                try:
                    status = _status(port)
                except requests.RequestException:
                    status = {}
                # With a standby configured, each kill waits until it is ready to take over.
                if (status.get("state") == "RUNNING" and status.get("uptime_seconds", 0) >= settle_seconds
                        and _last_batch(log)[0] >= 0 and status.get("standby") in (None, "ready")):
                    break
                time.sleep(1)
            else:
                raise RuntimeError(f"{JOB} not stable under the orchestrator within 400 s ({root})")
            before = _last_batch(log)[0]
            killed = time.time()
            os.killpg(status["pid"], signal.SIGKILL)
            deadline = time.monotonic() + 300
            while _last_batch(log)[0] <= before and time.monotonic() < deadline:
                time.sleep(0.3)
            batch, at = _last_batch(log)
            recoveries.append(round(at - killed, 1) if batch > before else None)
    finally:
        os.killpg(gen.pid, signal.SIGKILL)
        orch.send_signal(signal.SIGTERM)
        orch.wait(timeout=180)
    return recoveries


# The registry edit that gives the job a warm standby (supervisor/standby.py).
STANDBY = {"description: app_events -> 1-minute windows (events_aggregated_realtime)":
           "description: app_events -> 1-minute windows (events_aggregated_realtime)\n    standby: true"}


def bench_recovery(kills: int = 2) -> dict:
    """Driver SIGKILL -> next committed batch, before the levers (jars copied, no CDS, the
    5 s backoff after any crash), with them (class path, CDS, restart at once after a stable run),
    and with them plus a warm standby that takes over (`standby: true`)."""
    settings = load_settings()
    prefix = f"benchrec_{time.time_ns() % 10**6}_"
    names = {t: prefix + t for t in ("app_events", "clickstream", "cdc_changes", "external_data")}
    stack.ensure_topics(settings.kafka_bootstrap_servers, settings.kafka_topic_partitions, names=list(names.values()))
    variants = launch_variants()
    before_env, before_conf = variants["before"]
    out = {}
    with tempfile.TemporaryDirectory(prefix="bench-recovery-") as tmp:
        # The orchestrator builds the command itself: the "before" launch through SPARK_EXTRA_CONF,
        # and the backoff of before: 5 s after every crash of a stable run (never stable here,
        # with a multiplier of 1, that is every crash).
        out["before"] = recover_once(
            names, Path(tmp) / "before", {**before_env, "SPARK_EXTRA_CONF": json.dumps(before_conf)},
            {"stable_seconds: 300": "stable_seconds: 100000", "backoff_multiplier: 2": "backoff_multiplier: 1"},
            kills=kills, port=18191)
        after = {"stable_seconds: 300": "stable_seconds: 20"}
        out["after"] = recover_once(names, Path(tmp) / "after", {}, after, kills=kills, port=18192)
        out["standby"] = recover_once(names, Path(tmp) / "standby", {}, {**after, **STANDBY}, kills=kills, port=18193)
    return {"kills": kills, "kill_to_next_batch_s": out,
            "median_s": {k: _median(v) for k, v in out.items()}}
