"""Usage: python -m tools.demo [--app-events N] [--keep-data] [--stop]

The whole platform on the native local stack, end to end:
  1. start the stack (Kafka broker, Spark master + 2 workers) and fresh topics;
  2. generate a few hours of event time (with malformed, duplicate and late records);
  3. run the orchestrator with the four streaming jobs until they have caught up;
  4. run the batch jobs for the generated hours and day(s) (orchestrator backfill);
  5. print a report of the outputs and where to look.
The stack and the orchestrator are left running for exploration unless --stop is given.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

from configs.spark_config import PROJECT_ROOT, TOPICS, load_settings
from orchestrator import DEFAULT_PORT
from tools import stack
from tools.report import render
from utils.spark_utils import read_progress_file

PID_FILE = stack.RUN_DIR / "orchestrator.pid"  # read by tools.stack down (stack.CLIENTS)


def say(step: str) -> None:
    print(f"\n==> [{datetime.now().strftime('%H:%M:%S')}] {step}", flush=True)


def reset_topics(settings) -> None:
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers, client_id="demo")
    try:
        existing = set(admin.list_topics()) & {settings.topics[t] for t in TOPICS}
        if existing:
            admin.delete_topics(sorted(existing))
            deadline = time.monotonic() + 60
            while set(admin.list_topics()) & existing and time.monotonic() < deadline:
                time.sleep(1)
    finally:
        admin.close()
    stack.ensure_topics(settings.kafka_bootstrap_servers, settings.kafka_topic_partitions)


def stop_previous_orchestrator() -> None:
    for client in stack.CLIENTS:
        stack.stop(client, timeout=150)


def caught_up(settings, jobs: list[str]) -> tuple[bool, str]:
    """Every query of every job has processed data and then reported an empty batch."""
    states = []
    for job in jobs:
        queries = read_progress_file(settings.state_root / "progress" / f"{job}.json")
        if not queries:
            states.append(f"{job}: starting")
            continue
        idle = all(q.get("idle") for q in queries.values())
        batch = max((q.get('batch_id') or 0 for q in queries.values()), default=0)
        states.append(f"{job}: {'caught up' if idle else f'batch {batch}'}")
    return all(s.endswith("caught up") for s in states), ", ".join(states)


def wait_until_caught_up(settings, orch: subprocess.Popen, timeout: float) -> bool:
    jobs = ["event_aggregation", "clickstream_analysis", "cdc_transformation", "data_enrichment"]
    deadline = time.monotonic() + timeout
    done, detail, last = False, "", ""
    while time.monotonic() < deadline and orch.poll() is None:
        done, detail = caught_up(settings, jobs)
        if detail != last:
            print(f"    {detail}", flush=True)
            last = detail
        if done:
            break
        time.sleep(5)
    return done


def batch_lanes(start: datetime, end: datetime) -> dict[str, list[list[str]]]:
    """Independent lanes of batch commands; a lane's commands run in order."""
    py = sys.executable
    # The generated event time ends at `end` (on the hour): the hour before it is full of events.
    # `orchestrator.py backfill --job hourly_aggregate` covers every hour of a range of days.
    last_full = end - timedelta(hours=1)
    hourly = [[py, "jobs/batch/hourly_aggregate.py", "--target-hour", last_full.strftime("%Y-%m-%d %H:00:00")]]
    backfill = [py, "orchestrator.py", "backfill", "--job"]
    return {
        "hourly_aggregate": hourly,
        "daily_summary": [[*backfill, "daily_summary", "--from", start.date().isoformat(),
                           "--to", end.date().isoformat()]],
        "user_segmentation": [[*backfill, "user_segmentation", "--from", end.date().isoformat(),
                               "--to", end.date().isoformat()]],
    }


def outcomes(log_file: Path, offset: int) -> list[str]:
    """What a batch job said it wrote, or why it wrote nothing, in its JSON log after `offset`."""
    if not log_file.exists():
        return []
    with log_file.open("rb") as f:
        f.seek(offset)
        lines = f.read().decode(errors="replace").splitlines()
    said = []
    for line in lines:
        try:
            r = json.loads(line)
        except json.JSONDecodeError:  # a line a crashing JVM or Python printed into the log
            continue
        if isinstance(r, dict) and "written" in r.get("message", ""):
            what = r.get("target_hour") or r.get("target_date") or r.get("as_of_date")
            said.append(f"{what}: {r['message']}" + (f", {r['rows']:,} rows" if "rows" in r else ""))
    return said


def run_batch_jobs(start: datetime, end: datetime, log_dir: Path) -> bool:
    """The lanes side by side: each job spends much of its time starting a JVM and waiting for
    executors, so running them together roughly halves this step on two cores."""
    def run(lane: str, commands: list[list[str]]) -> bool:
        t = time.monotonic()
        log_file = log_dir / f"{lane}.log"
        offset = log_file.stat().st_size if log_file.exists() else 0
        with (log_dir / f"demo-{lane}.out").open("w") as out:
            ok = all(subprocess.run(c, cwd=PROJECT_ROOT, stdout=out, stderr=subprocess.STDOUT,
                                    check=False).returncode == 0
                     for c in commands)
        said = "; ".join(outcomes(log_file, offset))
        print(f"    {lane}: {'done' if ok else 'FAILED'} in {time.monotonic() - t:.0f} s"
              + (f" ({said})" if said else ""), flush=True)
        return ok

    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(pool.map(lambda item: run(*item), batch_lanes(start, end).items()))
    return all(results)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.demo", description=__doc__.split("\n\n")[1])
    parser.add_argument("--app-events", type=int, default=12_000,
                        help="app events to generate (default 12000: about 85 minutes of event time, "
                             "with clicks, CDC and external data about 21,000 records)")
    parser.add_argument("--keep-data", action="store_true", help="keep earlier outputs and topics")
    parser.add_argument("--stop", action="store_true", help="stop the orchestrator and the stack at the end")
    parser.add_argument("--timeout", type=float, default=900, help="seconds to wait for the streaming jobs")
    args = parser.parse_args(argv)
    os.environ.setdefault("TRIGGER_INTERVAL", "5 seconds")
    # Few, large micro-batches: four applications share two cores, and each batch has a fixed cost
    # (state store and sink commits) that small batches pay many times over.
    os.environ.setdefault("KAFKA_MAX_OFFSETS_PER_TRIGGER", "50000")
    settings = load_settings()
    started = time.monotonic()

    say("1/5 starting the local stack (Kafka + Spark master + 2 workers)")
    stack.up()
    stop_previous_orchestrator()
    if not args.keep_data:
        for path in (settings.output_root, settings.checkpoint_root, settings.state_root):
            shutil.rmtree(path, ignore_errors=True)
        reset_topics(settings)

    say(f"2/5 generating {args.app_events:,} app events (+ clicks, CDC, external data, faults)")
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    span = timedelta(minutes=args.app_events / 7.0 / 20.0)
    start = hour - timedelta(hours=1) - span
    subprocess.run([sys.executable, "-m", "tools.generate_events", "--app-events", str(args.app_events),
                    "--start", start.isoformat(), "--malformed-rate", "0.01", "--duplicate-rate", "0.01",
                    "--late-rate", "0.005"], check=True, cwd=PROJECT_ROOT)

    log_dir = settings.log_dir
    status_url = f"http://127.0.0.1:{os.environ.get('ORCHESTRATOR_PORT', DEFAULT_PORT)}"
    say(f"3/5 orchestrator: streaming jobs on the cluster (status: {status_url}/status)")
    log_dir.mkdir(parents=True, exist_ok=True)
    orch = subprocess.Popen([sys.executable, "orchestrator.py", "--no-batch"], cwd=PROJECT_ROOT,
                            stdout=(log_dir / "orchestrator.out").open("ab"), stderr=subprocess.STDOUT,
                            start_new_session=True)
    PID_FILE.write_text(str(orch.pid))
    if not wait_until_caught_up(settings, orch, args.timeout):
        print(f"demo: the streaming jobs did not catch up in {args.timeout:.0f}s; see {log_dir}", file=sys.stderr)
        return 1

    say("4/5 batch jobs for the generated hours and days, three at a time (orchestrator backfill)")
    batch_ok = run_batch_jobs(start, hour - timedelta(hours=1), log_dir)

    say("5/5 report")
    print(render(settings.output_root))
    minutes = (time.monotonic() - started) / 60
    print(f"""
Where to look
  Spark master UI      http://127.0.0.1:8080   (workers: http://127.0.0.1:8081, http://127.0.0.1:8082)
  Orchestrator         {status_url}/status  /health  /metrics   or: python orchestrator.py status
  Logs (JSON lines)    {log_dir}/<job>.log, job output in {log_dir}/orchestrator/<job>.out
  Outputs (Parquet)    {settings.output_root}
Demo finished in {minutes:.1f} minutes.""")
    if args.stop:
        stop_previous_orchestrator()
        stack.down()
        print("Stopped the orchestrator and the stack.")
    else:
        print("The orchestrator and the stack keep running. Stop them with: make stack-down")
    if not batch_ok:
        print(f"demo: a batch job failed; its output is in {log_dir}/demo-<job>.out", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
