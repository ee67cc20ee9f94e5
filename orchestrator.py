"""Usage: python orchestrator.py [run] [--streaming True|False] [--batch True|False]
                              [--no-streaming] [--no-batch] [--jobs a,b] [--once]
       python orchestrator.py status
       python orchestrator.py backfill --job daily_summary --from 2026-11-01 --to 2026-11-07

Supervises the platform's jobs (configs/jobs.yaml): streaming jobs run continuously under a
restart policy; batch jobs run on their cron schedules, with missed intervals caught up once.
Status on http://127.0.0.1:$ORCHESTRATOR_PORT (/health, /status, /metrics) and in
state/orchestrator/status.json. SIGTERM/SIGINT stop every job gracefully; a second signal
forces it.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import requests

from configs.logging_config import configure_logging
from configs.spark_config import SettingsError, load_job_registry, load_settings
from supervisor.manager import Orchestrator
from supervisor.scheduler import intervals_between, job_args
from supervisor.server import serve

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
    p.add_argument("command", nargs="?", default="run", choices=["run", "status", "backfill"])
    p.add_argument("--streaming", type=_bool, default=True, help="run the streaming jobs (default True)")
    p.add_argument("--batch", type=_bool, default=True, help="run the scheduled batch jobs (default True)")
    p.add_argument("--no-streaming", dest="streaming", action="store_false")
    p.add_argument("--no-batch", dest="batch", action="store_false")
    p.add_argument("--jobs", default=None, help="comma-separated job names (default: all enabled)")
    p.add_argument("--once", action="store_true", help="run the due batch jobs, then exit")
    p.add_argument("--port", type=int, default=None, help=f"status port (default ORCHESTRATOR_PORT or {DEFAULT_PORT})")
    p.add_argument("--job", help="backfill: the batch job")
    p.add_argument("--from", dest="first", type=_day, help="backfill: first date (YYYY-MM-DD)")
    p.add_argument("--to", dest="last", type=_day, help="backfill: last date, inclusive")
    return p


def _port(args) -> int:
    return args.port or int(os.environ.get("ORCHESTRATOR_PORT", DEFAULT_PORT))


def cmd_status(args, settings) -> int:
    try:
        status = requests.get(f"http://127.0.0.1:{_port(args)}/status", timeout=5).json()
        source = "live"
    except requests.RequestException:
        path = settings.state_root / "orchestrator" / "status.json"
        if not path.exists():
            print("orchestrator: not running and no status file", file=sys.stderr)
            return 1
        status, source = json.loads(path.read_text()), f"last written {path}"
    print(f"orchestrator ({source}): {'healthy' if status['healthy'] else 'UNHEALTHY'}, "
          f"uptime {status['uptime_seconds']}s, spark master {status['spark_master']}")
    print(f"{'job':22} {'kind':10} {'state':10} {'pid':>8} {'starts':>6} {'fail':>5} {'exit':>5}  detail")
    for name, job in status["jobs"].items():
        detail = f"next {job['next_fire']}" if job["kind"] == "batch" else f"uptime {job['uptime_seconds']}s"
        print(f"{name:22} {job['kind']:10} {job['state']:10} {job.get('pid') or '-':>8} "
              f"{job.get('starts', job.get('succeeded', 0)):>6} {job.get('failures', job.get('failed', 0)):>5} "
              f"{job.get('last_exit_code') if job.get('last_exit_code') is not None else '-':>5}  {detail}")
    return 0 if status["healthy"] else 1


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
    orch = Orchestrator(settings, registry, streaming=[], batch=[args.job])
    failures = 0
    for interval in intervals_between(first, last, spec.interval):
        orch.start_batch(args.job, interval)
        while orch.batch_runs:
            orch._reap_batches()
            time.sleep(0.5)
        status = orch.ledger.status(args.job, interval)
        print(f"backfill {args.job} {' '.join(job_args(spec, interval)[-2:])}: {status[0]}")
        failures += status[0] != "succeeded"
    return 1 if failures else 0


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
    log = configure_logging("orchestrator", log_dir=settings.log_dir)
    if args.command == "backfill":
        return cmd_backfill(args, settings, registry, log)
    streaming, batch = select_jobs(args, registry)
    orch = Orchestrator(settings, registry, streaming=streaming, batch=batch, once=args.once)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda signum, _frame: orch.request_shutdown(signum))
    server = serve(orch.status, os.environ.get("ORCHESTRATOR_HOST", "127.0.0.1"), _port(args))
    log.info("orchestrator started", extra={"streaming": streaming, "batch": batch, "port": _port(args)})
    try:
        return orch.run()
    finally:
        server.shutdown()
        log.info("orchestrator stopped")


if __name__ == "__main__":
    sys.exit(main())
