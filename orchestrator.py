"""Usage: python orchestrator.py [run] [--streaming True|False] [--batch True|False]
                              [--no-streaming] [--no-batch] [--jobs a,b] [--once]
       python orchestrator.py status [--intervals JOB]
       python orchestrator.py start|stop|restart JOB      (a streaming job of the running orchestrator)
       python orchestrator.py stop                        (the whole orchestrator, gracefully)
       python orchestrator.py backfill --job daily_summary --from 2026-11-01 --to 2026-11-07 [--force]

Supervises the platform's jobs (configs/jobs.yaml): streaming jobs run continuously under a
restart policy; batch jobs run on their cron schedules once their inputs are complete (the
upstream streaming watermarks passed the interval's end), with missed intervals caught up once,
consecutive ones in one run. Status on http://127.0.0.1:$ORCHESTRATOR_PORT (/health, /status,
/metrics) and in state/orchestrator/status.json. SIGTERM/SIGINT stop every job gracefully; a
second signal forces it.

Exit codes: 0 success; 1 a batch interval failed or a job ended FATAL, another orchestrator
already runs with this state folder, or (status, start/stop/restart) the orchestrator is
unhealthy or not running or the job unknown; 2 bad arguments or settings; 75 (--once, backfill)
due intervals are still waiting for their inputs.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import requests

from configs.logging_config import configure_logging
from configs.spark_config import SettingsError, load_job_registry, load_settings
from supervisor.children import AlreadyRunningError, InstanceLock, holder
from supervisor.health import master_ui_url
from supervisor.manager import Orchestrator
from supervisor.metrics import render_metrics
from supervisor.page import render_page
from supervisor.scheduler import Ledger, consecutive_runs, intervals_between, step
from supervisor.server import serve
from utils import readiness

DEFAULT_PORT = 8099


def _bool(value: str) -> bool:
    text = value.strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected True or False, got {value!r}")


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected YYYY-MM-DD, got {value!r}") from None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python orchestrator.py", description=__doc__.split("\n\n")[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", nargs="?", default="run",
                   choices=["run", "status", "backfill", "start", "stop", "restart"])
    p.add_argument("job_name", nargs="?", metavar="JOB", help="start/stop/restart: the streaming job")
    p.add_argument("--streaming", type=_bool, default=True, help="run the streaming jobs (default True)")
    p.add_argument("--batch", type=_bool, default=True, help="run the scheduled batch jobs (default True)")
    p.add_argument("--no-streaming", dest="streaming", action="store_false")
    p.add_argument("--no-batch", dest="batch", action="store_false")
    p.add_argument("--jobs", default=None, help="comma-separated job names (default: all enabled)")
    p.add_argument("--once", action="store_true",
                   help="run the due batch intervals whose inputs are ready, then exit (no streaming jobs)")
    p.add_argument("--port", type=int, default=None, help=f"status port (default ORCHESTRATOR_PORT or {DEFAULT_PORT})")
    p.add_argument("--job", help="backfill: the batch job")
    p.add_argument("--from", dest="first", type=_day, help="backfill: first date (YYYY-MM-DD)")
    p.add_argument("--to", dest="last", type=_day, help="backfill: last date, inclusive")
    p.add_argument("--force", action="store_true",
                   help="backfill: also run intervals whose inputs are not complete (recorded as forced)")
    p.add_argument("--intervals", metavar="JOB", help="status: the recent intervals of a batch job, from the ledger")
    return p


def _port(args, settings) -> int:
    return args.port or settings.orchestrator_port


def _batch_detail(job: dict) -> str:
    last = job.get("last_run") or {}
    app = f"; last run {last.get('interval_start')} {last.get('status')} app {last['app_id']}" \
        if last.get("app_id") else ""
    if job.get("running"):
        ivs = job["running"]["intervals"]
        return f"running {ivs[0]}" + (f" .. {ivs[-1]} ({len(ivs)} intervals)" if len(ivs) > 1 else "") + app
    if job.get("waiting"):
        first = job["waiting"][0]
        return f"{job['intervals']['waiting']} waiting, first {first['interval']}: {first['reason']}{app}"
    return f"next {job['next_fire']}{app}"


def _streaming_detail(job: dict) -> str:
    lag = job.get("lag")
    spark = f", app {job['app_id']}" if job.get("app_id") else ""
    spark += f", UI {job['ui_url']}" if job.get("ui_url") else ""
    spark += f", standby {job['standby']} pid {job['standby_pid']}" if job.get("standby_pid") else ""
    return (f"uptime {job['uptime_seconds']}s" + (f", lag {sum(lag.values()):,}" if lag is not None else "")
            + spark)


def cmd_status(args, settings) -> int:
    if args.intervals:
        return cmd_intervals(args.intervals, settings)
    try:
        status = requests.get(f"http://127.0.0.1:{_port(args, settings)}/status", timeout=5).json()
    except requests.RequestException:
        state_dir = settings.state_root / "orchestrator"
        pid = holder(state_dir / "orchestrator.lock")
        if pid:
            print(f"orchestrator: running (pid {pid}) but not answering on 127.0.0.1:{_port(args, settings)}",
                  file=sys.stderr)
            return 1
        path = state_dir / "status.json"
        if not path.exists():
            print("orchestrator: not running (no status written yet)", file=sys.stderr)
            return 1
        written = datetime.fromtimestamp(path.stat().st_mtime, UTC).isoformat(timespec="seconds")
        print(f"orchestrator: not running (last status written at {written}, shown below)", file=sys.stderr)
        _print_jobs(json.loads(path.read_text()))
        return 1
    print(f"orchestrator (pid {status['pid']}): {'healthy' if status['healthy'] else 'UNHEALTHY'}, "
          f"uptime {status['uptime_seconds']}s, spark master {status['spark_master']}")
    _print_jobs(status)
    return 0 if status["healthy"] else 1


def _print_jobs(status: dict) -> None:
    print(f"{'job':22} {'kind':10} {'state':10} {'pid':>8} {'starts':>6} {'fail':>5} {'exit':>5}  detail")
    for name, job in status["jobs"].items():
        if job["kind"] == "batch":
            counts = job["intervals"]
            print(f"{name:22} {'batch':10} {job['state']:10} {job.get('pid') or '-':>8} "
                  f"{counts['succeeded']:>6} {counts['failed']:>5} {'-':>5}  {_batch_detail(job)}")
            continue
        code = job.get("last_exit_code")
        print(f"{name:22} {'streaming':10} {job['state']:10} {job.get('pid') or '-':>8} {job['starts']:>6} "
              f"{job['failures']:>5} {code if code is not None else '-':>5}  {_streaming_detail(job)}")


def cmd_intervals(job: str, settings, limit: int = 48) -> int:
    """The recent intervals of a batch job, from the ledger (whether the orchestrator runs or not)."""
    path = settings.state_root / "orchestrator" / "ledger.sqlite"
    rows = Ledger(path).rows(job, limit=limit) if path.exists() else []
    if not rows:
        print(f"orchestrator: no intervals of {job!r} in {path}", file=sys.stderr)
        return 1
    print(f"{'interval':26} {'status':10} {'att':>3} {'read':>9} {'written':>8} {'secs':>6} {'forced':6}  "
          f"ready at / watermark / reason")
    for r in rows:
        detail = r["reason"] or " ".join(f"{k}={v}" for k, v in (r["watermarks"] or {}).items())
        read, written, secs = ("-" if r[k] is None else r[k] for k in ("rows_read", "rows_written", "duration_s"))
        print(f"{r['interval_start']:26} {r['status']:10} {r['attempts']:>3} {read:>9} {written:>8} {secs:>6} "
              f"{'yes' if r['forced'] else 'no':6}  {r['ready_at'] or '-'}  {detail}")
    return 0


def cmd_control(args, settings) -> int:
    """start/stop/restart JOB, or stop (the orchestrator), through the running orchestrator's endpoint."""
    if args.command != "stop" and not args.job_name:
        print(f"orchestrator: error: {args.command} needs a JOB", file=sys.stderr)
        return 2
    path = f"/jobs/{args.job_name}/{args.command}" if args.job_name else "/shutdown"
    try:
        reply = requests.post(f"http://127.0.0.1:{_port(args, settings)}{path}", timeout=10)
    except requests.RequestException:
        print(f"orchestrator: not running (nothing answers on 127.0.0.1:{_port(args, settings)})", file=sys.stderr)
        return 1
    message = reply.json().get("message", reply.text) if reply.content else ""
    print(f"orchestrator: {message}", file=sys.stdout if reply.ok else sys.stderr)
    return 0 if reply.ok else 1


def select_jobs(args, registry) -> tuple[list[str], list[str]]:
    names = [n for n, s in registry.items() if s.enabled]
    if args.jobs:
        wanted = [n.strip() for n in args.jobs.split(",") if n.strip()]
        unknown = sorted(set(wanted) - set(registry))
        if unknown:
            raise SystemExit(f"orchestrator: error: --jobs: unknown job(s) {', '.join(unknown)}; "
                             f"known: {', '.join(registry)}")
        names = wanted
    streaming = [n for n in names if registry[n].kind == "streaming" and args.streaming]
    batch = [n for n in names if registry[n].kind == "batch" and args.batch]
    return streaming, batch


def cmd_backfill(args, settings, registry, log) -> int:
    """Every interval of [--from, --to] whose inputs are complete (all of them with --force), in
    ranges of consecutive intervals, one Spark application per range (at most `max_range` long)."""
    if not args.job or registry.get(args.job) is None or registry[args.job].kind != "batch":
        batch = ", ".join(n for n, s in registry.items() if s.kind == "batch")
        print(f"orchestrator: error: --job must be one of: {batch}", file=sys.stderr)
        return 2
    if not args.first or not args.last or args.first > args.last:
        print("orchestrator: error: --from and --to are required, with --from <= --to", file=sys.stderr)
        return 2
    spec = registry[args.job]
    first = datetime.combine(args.first, datetime.min.time(), tzinfo=UTC)
    last = datetime.combine(args.last, datetime.min.time(), tzinfo=UTC)
    if spec.interval == "hour":
        last = last.replace(hour=23)
    ended = datetime.now(UTC) - step(spec.interval)  # only intervals that have ended
    starts = [s for s in intervals_between(first, last, spec.interval) if s <= ended]
    current = readiness.watermarks(spec, settings.state_root)
    checks = {s: readiness.check(spec, s, current=current) for s in starts}
    runnable = [s for s in starts if args.force or checks[s].ready]
    orch = Orchestrator(settings, registry, streaming=[], batch=[args.job])
    failures = 0
    for chunk in consecutive_runs(runnable, spec.interval, spec.max_range):
        run = orch.batches.start(args.job, chunk, force=args.force, watermarks=checks[chunk[0]].watermarks)
        while orch.batches.runs:
            orch.batches.reap()
            time.sleep(0.5)
        rows = {r["interval_start"]: r for r in orch.ledger.rows(args.job) if r["run_id"] == run.run_id}
        for s in chunk:
            r = rows.get(s.isoformat(), {})
            figures = (f" ({r['rows_written']:,} rows written, {r['rows_read']:,} read)"
                       if r.get("rows_written") is not None and r.get("rows_read") is not None else "")
            print(f"backfill {args.job} {s.isoformat()}: {r.get('status', '?')}{figures}", flush=True)
            failures += r.get("status") != "succeeded"
    waiting = [s for s in starts if s not in runnable]
    for s in waiting:
        print(f"backfill {args.job} {s.isoformat()}: not ready, skipped ({checks[s].reason})")
    if waiting:
        print(f"backfill: {len(waiting)} intervals not ready; run again later, or pass --force", file=sys.stderr)
    return 1 if failures else (readiness.NOT_READY_EXIT_CODE if waiting else 0)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings()
        registry = load_job_registry()
    except (SettingsError, ValueError) as exc:
        print(f"orchestrator: {exc}", file=sys.stderr)
        return 2
    if args.command == "status":
        return cmd_status(args, settings)
    if args.command in ("start", "stop", "restart"):
        return cmd_control(args, settings)
    try:
        # One orchestrator (or backfill) per state folder: two would run two drivers on one
        # checkpoint, or one batch interval twice. The kernel drops the lock when we die.
        lock = InstanceLock(settings.state_root / "orchestrator" / "orchestrator.lock").acquire()
    except AlreadyRunningError as exc:
        print(f"orchestrator: {exc}", file=sys.stderr)
        return 1
    log = configure_logging("orchestrator", log_dir=settings.log_dir, level=settings.log_level)
    if args.command == "backfill":
        return cmd_backfill(args, settings, registry, log)
    streaming, batch = select_jobs(args, registry)
    if args.once:
        streaming = []  # --once runs due batch intervals only
    orch = Orchestrator(settings, registry, streaming=streaming, batch=batch, once=args.once)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, _frame: orch.request_shutdown(signum))
    master_ui = master_ui_url(settings.spark_master_url)
    server = serve(orch.status, settings.orchestrator_host, _port(args, settings), control=orch.control,
                   metrics=lambda snapshot: render_metrics(snapshot, orch.tracker),
                   page=lambda snapshot: render_page(snapshot, orch.tracker.rates, master_ui=master_ui,
                                                     history_ui=settings.spark_history_ui_url))
    log.info("orchestrator started", extra={"streaming": streaming, "batch": batch, "port": _port(args, settings)})
    try:
        return orch.run()
    finally:
        server.shutdown()
        log.info("orchestrator stopped")
        lock.release()


if __name__ == "__main__":
    sys.exit(main())
