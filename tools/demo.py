"""Usage: python -m tools.demo [--app-events N] [--keep-data] [--stop]

The whole platform on the native local stack, end to end:
  1. start the stack (Kafka broker, Spark master + 2 workers) and fresh topics;
  2. generate a few hours of event time (with malformed, duplicate and late records);
  3. run the orchestrator: the four streaming jobs, and the batch jobs on their schedules, which
     catch up the last ORCHESTRATOR_CATCHUP_HOURS (32 here) as soon as their inputs are complete;
  4. wait until the streaming jobs have caught up and every ready batch interval has run;
  5. print a report of the outputs (and of the intervals still waiting) and where to look.
The stack and the orchestrator are left running for exploration unless --stop is given.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

from configs import locations
from configs.spark_config import PROJECT_ROOT, TOPICS, load_job_registry, load_settings
from tools import stack
from tools.report import render
from utils.progress import progress_path, read_progress_file

# Event time the demo generates, ending now: every hour of it is complete once the watermarks pass,
# and it always holds a whole day or most of one (yesterday, or the day before just after midnight).
EVENT_HOURS = 30


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


LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")


def unsafe_to_reset(settings) -> list[str]:
    """What the demo's reset would delete outside the project, or on a broker of another host."""
    unsafe = [f"{var} is {path}, outside {PROJECT_ROOT}"
              for var, path in (("OUTPUT_ROOT", settings.output_root), ("CHECKPOINT_ROOT", settings.checkpoint_root),
                                ("STATE_ROOT", str(settings.state_root)))
              if locations.is_object_store(path)
              or not locations.local_path(path).resolve().is_relative_to(PROJECT_ROOT)]
    remote = [b for b in settings.kafka_bootstrap_servers.split(",") if b.strip().rsplit(":", 1)[0] not in LOCAL_HOSTS]
    if remote:
        unsafe.append(f"KAFKA_BOOTSTRAP_SERVERS names another host ({', '.join(remote)}), "
                      "whose topics would be deleted")
    return unsafe


def reset_folders(settings) -> None:
    """Delete the demo's local folders (never an object store: unsafe_to_reset refuses those)."""
    for location in (settings.output_root, settings.checkpoint_root, str(settings.state_root)):
        if locations.local_path(location) is not None:
            shutil.rmtree(locations.local_path(location), ignore_errors=True)


def upstream_queries() -> dict[str, set[str]]:
    """The streaming queries the batch jobs read (the registry's `upstream`), by job."""
    out: dict[str, set[str]] = {}
    for spec in load_job_registry().values():
        for up in spec.upstream:
            out.setdefault(up.job, set()).add(up.query)
    return out


def caught_up(settings, jobs: list[str]) -> tuple[bool, str]:
    """Every query of every job has processed data and then reported an empty batch; the
    queries the batch jobs read are among them, so their watermarks are final for the data."""
    states, required = [], upstream_queries()
    for job in jobs:
        queries = read_progress_file(progress_path(settings.state_root, job))
        if not queries or required.get(job, set()) - set(queries):
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


def batch_done(status: dict, since: datetime) -> bool:
    """No batch run in flight and no ready interval about to start: what is left waits for data.
    Only from a status whose readiness checks came after `since` (when the demo saw the streaming
    jobs caught up): an older check has not seen their final watermarks yet."""
    batch = [j for j in status["jobs"].values() if j["kind"] == "batch"]
    return bool(batch) and not any(j["state"] == "RUNNING" or j["ready_pending"]
                                   or not j["checked_at"] or datetime.fromisoformat(j["checked_at"]) < since
                                   for j in batch)


def batch_summary(name: str, job: dict) -> str:
    """One line per batch job from the orchestrator's status: what ran, and what still waits (why)."""
    counts = job["intervals"]
    line = f"    {name}: {counts['succeeded']} intervals succeeded ({job['rows_written']:,} rows written)"
    if counts["failed"]:
        line += f", {counts['failed']} FAILED"
    if job["waiting"]:
        first = job["waiting"][0]
        line += f"; {counts['waiting']} waiting for their inputs, first {first['interval']}: {first['reason']}"
    return line


def wait_for_batches(status_url: str, orch: subprocess.Popen, timeout: float) -> dict | None:
    """The orchestrator's status once every ready batch interval has run (None on timeout)."""
    import requests

    since = datetime.now(UTC)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and orch.poll() is None:
        try:
            status = requests.get(f"{status_url}/status", timeout=5).json()
        except requests.RequestException:
            status = None
        if status and batch_done(status, since):
            return status
        time.sleep(3)
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.demo", description=__doc__.split("\n\n")[1])
    parser.add_argument("--app-events", type=int, default=12_000,
                        help=f"app events to generate over the last {EVENT_HOURS} hours (default 12000: "
                             "with clicks, CDC and external data about 21,000 records)")
    parser.add_argument("--keep-data", action="store_true", help="keep earlier outputs and topics")
    parser.add_argument("--reset-anywhere", action="store_true",
                        help="allow deleting OUTPUT_ROOT/CHECKPOINT_ROOT/STATE_ROOT outside the project and the "
                             "topics of a broker that is not on this host (default: refuse)")
    parser.add_argument("--stop", action="store_true", help="stop the orchestrator and the stack at the end")
    parser.add_argument("--timeout", type=float, default=900, help="seconds to wait for the streaming jobs")
    args = parser.parse_args(argv)
    os.environ.setdefault("TRIGGER_INTERVAL", "5 seconds")
    # Few, large micro-batches: four applications share two cores, and each batch has a fixed cost
    # (state store and sink commits) that small batches pay many times over.
    os.environ.setdefault("KAFKA_MAX_OFFSETS_PER_TRIGGER", "50000")
    settings = load_settings()
    refused = [] if args.keep_data or args.reset_anywhere else unsafe_to_reset(settings)
    if refused:
        print("demo: refusing to delete data it did not make: " + "; ".join(refused)
              + ". Pass --reset-anywhere to delete them anyway, or --keep-data.", file=sys.stderr)
        return 2
    started = time.monotonic()

    say("1/5 starting the local stack (Kafka + Spark master + 2 workers)")
    stack.up()
    stack.stop_orchestrator(settings.state_root)
    if not args.keep_data:
        reset_folders(settings)
        reset_topics(settings)

    say(f"2/5 generating {args.app_events:,} app events over the last {EVENT_HOURS} hours "
        "(+ clicks, CDC, external data, faults)")
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=EVENT_HOURS)
    # About 8.5 app events per session (measured): spread the sessions so that the events fill the hours.
    per_minute = args.app_events / 8.5 / (EVENT_HOURS * 60)
    subprocess.run([sys.executable, "-m", "tools.generate_events", "--app-events", str(args.app_events),
                    "--start", start.isoformat(), "--sessions-per-minute", f"{per_minute:.3f}",
                    "--malformed-rate", "0.01", "--duplicate-rate", "0.01", "--late-rate", "0.005"],
                   check=True, cwd=PROJECT_ROOT)

    log_dir = settings.log_dir
    status_url = f"http://127.0.0.1:{settings.orchestrator_port}"
    say(f"3/5 orchestrator: streaming jobs on the cluster, batch jobs once their inputs are complete "
        f"(status: {status_url}/status)")
    log_dir.mkdir(parents=True, exist_ok=True)
    orch = subprocess.Popen([sys.executable, "orchestrator.py"], cwd=PROJECT_ROOT,
                            env={**os.environ, "ORCHESTRATOR_CATCHUP_HOURS": str(EVENT_HOURS + 2)},
                            stdout=(log_dir / "orchestrator.out").open("ab"), stderr=subprocess.STDOUT,
                            start_new_session=True)
    if not wait_until_caught_up(settings, orch, args.timeout):
        print(f"demo: the streaming jobs did not catch up in {args.timeout:.0f}s; see {log_dir}", file=sys.stderr)
        return 1

    say("4/5 batch intervals: the orchestrator runs each one once its upstream watermarks have passed its end")
    status = wait_for_batches(status_url, orch, args.timeout)
    if status is None:
        print(f"demo: the batch intervals did not finish in {args.timeout:.0f}s; see {log_dir}", file=sys.stderr)
        return 1
    for name, job in status["jobs"].items():
        if job["kind"] == "batch":
            print(batch_summary(name, job), flush=True)
    batch_ok = not any(j["kind"] == "batch" and j["intervals"]["failed"] for j in status["jobs"].values())

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
        stack.stop_orchestrator(settings.state_root)
        stack.down()
        print("Stopped the orchestrator and the stack.")
    else:
        print("The orchestrator and the stack keep running. Stop them with: make stack-down")
    if not batch_ok:
        print(f"demo: a batch interval failed; see python orchestrator.py status --intervals <job> and "
              f"{log_dir}/orchestrator/<job>.out", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
