"""The life cycle every streaming job shares: arguments, settings, logging, session, listener,
graceful stop on SIGTERM/SIGINT, and periodic restarts of queries whose static inputs changed.

A job script only says what its queries are:

    def build(spark, settings, available_now) -> list[QuerySpec]: ...
    if __name__ == "__main__":
        sys.exit(run_streaming_job("event_aggregation", build, __doc__))
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyspark.sql import SparkSession
from pyspark.sql.streaming import StreamingQuery

from configs.logging_config import ContextLogger, configure_logging
from configs.spark_config import Settings, load_cli_settings, load_job_registry
from utils import preflight
from utils.quarantine import QuarantineFollower
from utils.spark_utils import ProgressLogger, create_spark_session


@dataclass
class QuerySpec:
    """One streaming query of a job, restartable from its checkpoint."""

    name: str
    start: Callable[[], StreamingQuery]
    # When given, polled every `refresh_seconds`; a new value restarts the query (after its
    # running batch) so that it re-reads static inputs such as master data.
    refresh_signature: Callable[[], Hashable] | None = None
    # Writes the invalid records of this query's committed batches to the topic's quarantine.
    quarantine: QuarantineFollower | None = None


class GracefulStop:
    """Turns SIGTERM/SIGINT into a request to stop after the running micro-batch, and SIGUSR1
    into a standby's activation."""

    def __init__(self) -> None:
        self.requested = threading.Event()
        self.activated = threading.Event()

    def install(self) -> GracefulStop:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._handle)
        signal.signal(signal.SIGUSR1, lambda _signum, _frame: self.activated.set())
        return self

    def _handle(self, _signum: int, _frame: Any) -> None:
        self.requested.set()

    def wait_for_activation(self) -> bool:
        """A standby's wait: True once activated, False when asked to stop first."""
        while not self.activated.wait(0.1):
            if self.requested.is_set():
                return False
        return True


def last_batch_id(query: StreamingQuery) -> int:
    progress = query.lastProgress
    return -1 if progress is None else progress.batchId


def stop_after_batch(query: StreamingQuery, deadline: float) -> None:
    """Let the running micro-batch finish (until `deadline`), then stop the query.

    With a backlog the next batch starts as soon as one ends, so the trigger is hardly ever
    inactive: wait for the batch that was running to complete, not for a pause. A batch that
    has just started when `stop` comes is dropped uncommitted and re-run after a restart.
    """
    running = last_batch_id(query)
    while (query.isActive and query.status["isTriggerActive"] and last_batch_id(query) == running
           and time.monotonic() < deadline):
        time.sleep(0.2)
    if query.isActive:
        query.stop()


class QueryRunner:
    """Runs a job's queries until they finish (available-now), fail, or a stop is requested."""

    def __init__(self, specs: list[QuerySpec], log: ContextLogger, *, stop_timeout: float,
                 refresh_seconds: float, stopper: GracefulStop):
        self.specs = specs
        self.log = log
        self.stop_timeout = stop_timeout
        self.refresh_seconds = refresh_seconds
        self.stopper = stopper
        self.queries: dict[str, StreamingQuery] = {}
        self.signatures: dict[str, Hashable] = {}

    def start_all(self) -> None:
        for spec in self.specs:
            if spec.refresh_signature:
                self.signatures[spec.name] = spec.refresh_signature()
            self.queries[spec.name] = spec.start()
        for follower in self.followers:
            follower.start()

    @property
    def followers(self) -> list[QuarantineFollower]:
        return [spec.quarantine for spec in self.specs if spec.quarantine]

    def _failed(self) -> list[str]:
        failed = [n for n, q in self.queries.items() if not q.isActive and q.exception() is not None]
        return failed + [f.name for f in self.followers if f.error is not None]

    def _error(self, name: str) -> BaseException | None:
        if name in self.queries:
            return self.queries[name].exception()
        return next(f.error for f in self.followers if f.name == name)

    def _refresh(self) -> None:
        for spec in self.specs:
            if not spec.refresh_signature or not self.queries[spec.name].isActive:
                continue
            signature = spec.refresh_signature()
            if signature != self.signatures[spec.name]:
                self.log.info("static input changed: restarting query from its checkpoint",
                              extra={"query_name": spec.name})
                stop_after_batch(self.queries[spec.name], time.monotonic() + self.stop_timeout)
                self.signatures[spec.name] = signature
                self.queries[spec.name] = spec.start()

    def run(self) -> int:
        """0 when every query ended cleanly or was asked to stop; 1 when one failed."""
        began = time.monotonic()
        self.start_all()
        self.log.info("queries started", extra={"seconds": round(time.monotonic() - began, 1)})
        next_refresh = time.monotonic() + self.refresh_seconds
        while any(q.isActive for q in self.queries.values()) and not self.stopper.requested.is_set():
            if self._failed():
                break
            if time.monotonic() >= next_refresh:
                self._refresh()
                next_refresh = time.monotonic() + self.refresh_seconds
            time.sleep(0.5)
        failed = self._failed()
        deadline = time.monotonic() + self.stop_timeout
        for query in self.queries.values():
            stop_after_batch(query, deadline)
        for follower in self.followers:
            if failed or self.stopper.requested.is_set():
                follower.stop(max(0.0, deadline - time.monotonic()))
                continue
            try:  # every query ended cleanly (available-now): quarantine all that they committed
                follower.finish()
            except Exception as exc:
                follower.error = exc
                failed.append(follower.name)
        for name in failed:
            self.log.error("query failed", extra={"query_name": name, "error": str(self._error(name))})
        if self.stopper.requested.is_set():
            self.log.info("stopped on request after the running micro-batch")
        return 1 if failed else 0


def wait_as_standby(ready_file: Path, stopper: GracefulStop, log: ContextLogger) -> bool:
    """A warm standby's wait (supervisor/standby.py): announce this driver's pid, then wait for
    SIGUSR1 (True: start the queries) or SIGTERM (False: exit). The SIGUSR1 handler is installed
    before the announcement, so the supervisor never activates a driver that would die of it."""
    ready_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = ready_file.with_suffix(f".{os.getpid()}")
    tmp.write_text(str(os.getpid()))
    tmp.replace(ready_file)
    log.info("standby ready: waiting for SIGUSR1 to start the queries")
    try:
        activated = stopper.wait_for_activation()
    finally:
        if ready_file.exists() and ready_file.read_text().strip() == str(os.getpid()):
            ready_file.unlink()
    if activated:
        log.info("standby activated")
    return activated


BuildFn = Callable[[SparkSession, Settings, bool], list[QuerySpec]]


def run_streaming_job(name: str, build: BuildFn, doc: str | None, argv: list[str] | None = None, *,
                      needs_user_master: bool = False) -> int:
    parser = argparse.ArgumentParser(prog=f"jobs/streaming/{name}.py",
                                     description=(doc or "").strip().split("\n\n")[0])
    parser.add_argument("--available-now", action="store_true",
                        help="process everything on the topics, write what the watermark has "
                             "closed, and exit 0")
    parser.add_argument("--standby", action="store_true",
                        help="start the session, then wait for SIGUSR1 before starting the queries "
                             "(a warm standby the orchestrator activates when the running driver dies)")
    args = parser.parse_args(argv)
    settings = load_cli_settings(name)
    stopper = GracefulStop().install()
    log = configure_logging(name, log_dir=settings.log_dir, level=settings.log_level)
    log.info("starting", extra={"available_now": args.available_now, "settings": settings.redacted()})
    spec = load_job_registry(settings.job_registry_path).get(name)
    topics = [settings.topics[t] for t in (spec.topics if spec else ())]
    missing = preflight.problems(settings, topics, user_master=needs_user_master)
    if missing:
        for problem in missing:
            log.error(f"cannot start: {problem}")
            print(f"{name}: cannot start: {problem}", file=sys.stderr)
        return preflight.MISSING_DEPENDENCY_EXIT_CODE
    began = time.monotonic()
    spark = create_spark_session(name, settings, streaming=True)
    log.info("spark session ready", extra={"seconds": round(time.monotonic() - began, 1)})
    try:
        if args.standby and not wait_as_standby(settings.standby_file(name), stopper, log):
            log.info("exiting", extra={"exit_code": 0})
            return 0
        progress_dir = settings.state_root / "progress"
        progress_dir.mkdir(parents=True, exist_ok=True)
        context = spark.sparkContext
        spark.streams.addListener(ProgressLogger(log, progress_dir / f"{name}.json",
                                                 app={"app_id": context.applicationId, "ui_url": context.uiWebUrl}))
        specs = build(spark, settings, args.available_now)
        runner = QueryRunner(specs, log, stop_timeout=settings.stop_timeout_seconds,
                             refresh_seconds=settings.user_master_refresh_seconds, stopper=stopper)
        code = runner.run()
    finally:
        spark.stop()
    log.info("exiting", extra={"exit_code": code})
    return code
