"""Latency as in production: all four streaming jobs running on the cluster while the generator
produces at a fixed rate; for event_aggregation and data_enrichment, whether they keep up and
their micro-batch p50/p95 against the trigger, and for enriched_events the end-to-end latency
of each row: from its Kafka timestamp (when the broker appended it) to the commit of the
micro-batch that made it readable (the modification time of the file sink's log entry)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq

from benchmarks.common import MAIN_QUERY, MASTER, RECORDS_PER_APP_EVENT, batches_in, job_env, logged_at, percentile
from configs.spark_config import PROJECT_ROOT, TOPICS, duration_seconds, load_settings, settings_for_env
from tools import stack

JOBS = ("event_aggregation", "clickstream_analysis", "cdc_transformation", "data_enrichment")
MEASURED = ("event_aggregation", "data_enrichment")


def commit_latencies(dataset: Path, since: float) -> list[float]:
    """Seconds from each row's kafka_timestamp to the commit of its micro-batch, for the rows
    appended to the broker after `since` (epoch s). The sink's log names the files each batch
    added (a `.compact` entry repeats the earlier ones: only new names count)."""
    log = dataset / "_spark_metadata"
    seen: set[str] = set()
    out: list[float] = []
    # Batch entries are "<id>" or "<id>.compact"; checksums (".<id>.crc") and temporary files are not.
    entries = [p for p in log.iterdir() if p.name.split(".")[0].isdigit()] if log.exists() else []
    for entry in sorted(entries, key=lambda p: int(p.name.split(".")[0])):
        committed = entry.stat().st_mtime
        for line in entry.read_text().splitlines()[1:]:
            path = json.loads(line)["path"]
            if path in seen:
                continue
            seen.add(path)
            local = path.removeprefix("file://")
            stamps = pq.read_table(local, columns=["kafka_timestamp"]).column(0).to_pylist()
            out += [committed - ts.timestamp() for ts in stamps if ts and ts.timestamp() >= since]
    return out


def bench_latency(rate: float, seconds: int, warmup: int = 0) -> dict:
    """The four jobs in continuous mode (default trigger) while the generator produces `rate`
    records/s over the four topics for `seconds`. Batches that end in the first `warmup` seconds
    (the first loaded batches of cold executors) and rows produced then are left out of the
    percentiles, and so are the batches before each job caught up after its cold start (the
    slowest of them, and when it caught up, are reported on their own)."""
    from utils.launch import spark_submit_command

    settings = load_settings()
    prefix = f"benchlat{int(rate)}_{time.time_ns() % 10**6}_"
    root = Path(tempfile.mkdtemp(prefix="bench-latency-"))
    env = job_env(root, {t: prefix + t for t in TOPICS}, MASTER)
    env["USER_MASTER_PATH"] = str(root / "users")
    stack.ensure_topics(settings.kafka_bootstrap_servers, settings.kafka_topic_partitions,
                        names=[prefix + t for t in TOPICS])
    # The user master first: data_enrichment checks it before it starts (the run below writes its
    # own elsewhere: a changed master would restart the enrichment query mid-run).
    subprocess.run([sys.executable, "-m", "tools.generate_events", "--app-events", "1", "--no-kafka",
                    "--user-master-path", str(root / "users")], cwd=PROJECT_ROOT, env=env, check=True,
                   capture_output=True)

    def batches(job: str) -> list[dict]:
        return batches_in(root / "logs" / f"{job}.log", MAIN_QUERY[job])

    procs = {}
    try:
        for job in JOBS:
            cmd = spark_submit_command(PROJECT_ROOT / "jobs" / "streaming" / f"{job}.py", [], master=MASTER,
                                       settings=settings_for_env(env))
            procs[job] = subprocess.Popen(cmd, cwd=PROJECT_ROOT, env=env, stdout=(root / f"{job}.out").open("w"),
                                          stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 400
        while not all(batches(j) for j in MEASURED) and time.monotonic() < deadline:
            time.sleep(2)
        app_events = int(rate * seconds / RECORDS_PER_APP_EVENT)
        gen_start = time.time()
        gen = subprocess.run([sys.executable, "-m", "tools.generate_events", "--app-events", str(app_events),
                              "--rate", str(rate), "--user-master-path", str(root / "users-not-read")],
                             cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, check=True)
        gen_end = time.time()
        produced = json.loads(gen.stdout.strip().splitlines()[-1])
        wanted = produced["counts"]["app_events:valid"] + produced["counts"].get("app_events:duplicate", 0)
        deadline = time.monotonic() + 600
        while (any(sum(b["input_rows"] for b in batches(j)) < wanted for j in MEASURED)
               and time.monotonic() < deadline):
            time.sleep(1)
        drained = time.time()
    finally:
        for proc in procs.values():
            os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs.values():
            proc.wait(timeout=180)
    trigger = duration_seconds(settings.trigger_interval)
    out: dict = {"target_records_per_s": rate, "seconds": round(gen_end - gen_start, 1),
                 "app_events_per_s": round(wanted / (gen_end - gen_start)), "trigger_s": trigger,
                 "drained_s_after_generator": round(drained - gen_end, 1), "jobs": {}}
    out["warmup_s"] = warmup
    steady_from: dict[str, float | None] = {}
    for job in MEASURED:
        during = [b for b in batches(job) if gen_start <= logged_at(b).timestamp() <= gen_end and b["input_rows"]]
        caught_up = caught_up_at(during, trigger)
        # Steady state: after the warm-up, and once the job caught up after its cold start.
        steady_from[job] = None if caught_up is None else max(gen_start + warmup, caught_up)
        since = float("inf") if steady_from[job] is None else steady_from[job]
        before, durations = [], []
        for b in during:
            (durations if logged_at(b).timestamp() >= since else before).append(b["batch_duration_ms"])
        out["jobs"][job] = {"batches": len(durations), "batch_ms_p50": percentile(durations, 0.5),
                            "batch_ms_p95": percentile(durations, 0.95),
                            "warmup_batch_ms_max": max(before, default=None),
                            "caught_up_s": None if caught_up is None else round(caught_up - gen_start, 1),
                            "processed_app_events_per_s": round(sum(b["input_rows"] for b in during)
                                                                / (gen_end - gen_start))}
    # Kept up: each job caught up after its cold start, and drained its backlog within two triggers
    # of the generator stopping (a job that never caught up can still drain fast in one long batch).
    out["kept_up"] = drained - gen_end <= 2 * trigger and None not in steady_from.values()
    e2e = commit_latencies(root / "outputs" / "enriched_events", steady_from["data_enrichment"] or gen_end)
    out["enriched_e2e_s"] = {"rows": len(e2e), "p50": _round(percentile(e2e, 0.5)),
                             "p95": _round(percentile(e2e, 0.95)), "max": _round(max(e2e, default=None))}
    shutil.rmtree(root, ignore_errors=True)
    return out


def caught_up_at(batches: list[dict], trigger_s: float) -> float | None:
    """When a job caught up after its cold start: the end (epoch s) of its first loaded batch that
    took at most the trigger. Cold executors (JIT, first code generation, all jobs starting at once
    on the cores) make the first loaded batches slow, and the rows arriving meanwhile make the next
    ones long too, until one fits in the trigger. None: it never did."""
    return next((logged_at(b).timestamp() for b in batches if b["batch_duration_ms"] <= trigger_s * 1000), None)


def p95_at_highest_kept_up(runs: list[dict]) -> tuple[float, float, int] | str:
    """(event_aggregation p95 s, data_enrichment p95 s, app events/s) at the highest offered rate
    both kept up with."""
    kept = [r for r in runs if r["kept_up"] and all(j["batch_ms_p95"] for j in r["jobs"].values())]
    best = max(kept, key=lambda r: r["app_events_per_s"], default=None)
    if not best:
        return f"kept up at none of the rates (lowest {min(r['app_events_per_s'] for r in runs):,} app events/s)"
    return (best["jobs"]["event_aggregation"]["batch_ms_p95"] / 1000,
            best["jobs"]["data_enrichment"]["batch_ms_p95"] / 1000, best["app_events_per_s"])


def highest_rate_within_trigger(runs: list[dict]) -> str:
    """The highest offered rate at which both jobs kept up with their p95 within the trigger."""
    fit = [r["app_events_per_s"] for r in runs if r["kept_up"] and all(
        (j["batch_ms_p95"] or 1e12) <= r["trigger_s"] * 1000 for j in r["jobs"].values())]
    tried = " / ".join(f"{r['app_events_per_s']:,}" for r in runs)
    return f"{max(fit):,} app events/s (tried {tried})" if fit else f"none of {tried} app events/s"


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)
