"""Usage: python -m tools.generate_events [--app-events N] [--seed S] [--start ISO] [options]

Produce a seeded, realistic stream to the four contract topics (app_events, clickstream,
cdc_changes, external_data), write the user master data the enrichment job reads, and optionally
the ground truth (every record produced, with its kind) as JSON Lines for independent checks.

Delivery is `acks=all` with retries and a final flush; any failed delivery exits 1. SIGTERM or
SIGINT (to the process group with --processes > 1) stops it after the record in hand: it flushes,
closes the ground truth on the records produced and exits 0, so that a run of live input can end
whenever the reader has seen enough, with a truth that is still exact.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing
import shutil
import signal
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

from dateutil import parser as dtparser

from configs import locations
from configs.spark_config import load_settings
from tools.world import Record, World, WorldOptions


def _rate(value: str) -> float:
    try:
        rate = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}") from None
    if not 0.0 <= rate <= 0.5:
        raise argparse.ArgumentTypeError(f"must be between 0 and 0.5, got {rate}")
    return rate


def _positive_int(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {value!r}") from None
    if n <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {n}")
    return n


def _timestamp(value: str) -> datetime:
    try:
        ts = dtparser.isoparse(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO-8601 timestamp: {value!r}") from None
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m tools.generate_events",
                                description=__doc__.split("\n\n")[1])
    p.add_argument("--app-events", type=_positive_int, default=10_000,
                   help="how many app events to generate (other topics follow; default 10000)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--users", type=_positive_int, default=500)
    p.add_argument("--start", type=_timestamp, default=None,
                   help="event time of the first record (default: the start of the current hour "
                        "minus the span the stream will cover)")
    p.add_argument("--sessions-per-minute", type=float, default=20.0,
                   help="density of sessions in event time; with --app-events it sets the span")
    p.add_argument("--malformed-rate", type=_rate, default=0.0)
    p.add_argument("--duplicate-rate", type=_rate, default=0.0)
    p.add_argument("--late-rate", type=_rate, default=0.0)
    p.add_argument("--late-delay-minutes", type=float, default=60.0,
                   help="how far behind the stream a late record arrives (event time)")
    p.add_argument("--rate", type=float, default=0.0, help="records/s to produce (0 = as fast as possible)")
    p.add_argument("--processes", type=_positive_int, default=1,
                   help="generate in this many processes, each a shard of the world (same seed and "
                        "processes: same records; default 1)")
    p.add_argument("--truth-dir", type=Path, default=None, help="write ground-truth JSON Lines here")
    p.add_argument("--user-master-path", default=None,
                   help="where to write the user master Parquet, a path or s3a://bucket/prefix "
                        "(default: USER_MASTER_PATH)")
    p.add_argument("--no-kafka", action="store_true", help="do not produce; only truth and master data")
    p.add_argument("--client", choices=sorted(CLIENTS), default="librdkafka",
                   help="Kafka producer: librdkafka (confluent-kafka, default, fastest) or kafka-python")
    p.add_argument("--bootstrap-servers", default=None, help="default: KAFKA_BOOTSTRAP_SERVERS")
    return p


def options_from_args(args: argparse.Namespace) -> WorldOptions:
    start = args.start
    if start is None:
        span = timedelta(minutes=args.app_events / 7.0 / args.sessions_per_minute)
        hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        start = hour - span
    return WorldOptions(
        seed=args.seed, users=args.users, app_events=args.app_events, start=start,
        sessions_per_minute=args.sessions_per_minute, malformed_rate=args.malformed_rate,
        duplicate_rate=args.duplicate_rate, late_rate=args.late_rate,
        late_delay=timedelta(minutes=args.late_delay_minutes),
    )


class KafkaPythonProducer:
    """kafka-python (pure Python): acks=all, idempotent, retries, snappy via python-snappy."""

    def __init__(self, bootstrap: str, extra: dict[str, str]):
        from kafka import KafkaProducer

        self.failures = 0
        self.first_error: str | None = None
        self._producer = KafkaProducer(
            bootstrap_servers=bootstrap, acks="all", retries=10, linger_ms=20,
            batch_size=512 * 1024, compression_type="snappy", max_request_size=4 * 1024 * 1024,
            enable_idempotence=True,
            **{k.replace(".", "_"): v for k, v in extra.items()},
        )

    def _failed(self, exc: BaseException) -> None:
        self.failures += 1
        self.first_error = self.first_error or repr(exc)

    def send(self, topic: str, record: Record) -> None:
        self._producer.send(topic, key=record.key, value=record.value).add_errback(self._failed)

    def close(self) -> None:
        self._producer.flush()
        self._producer.close()


class LibrdkafkaProducer:
    """confluent-kafka (librdkafka, C): the same guarantees; batching, compression and I/O run in
    librdkafka's own threads, so the Python loop only builds records. Delivery reports are asked
    for failures only."""

    def __init__(self, bootstrap: str, extra: dict[str, str]):
        from confluent_kafka import Producer

        self.failures = 0
        self.first_error: str | None = None
        self._sent = 0
        self._producer = Producer({
            "bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
            "linger.ms": 20, "batch.size": 1024 * 1024, "compression.type": "snappy",
            "queue.buffering.max.messages": 200_000, "delivery.report.only.error": True,
            "on_delivery": self._delivered, **extra,
        })

    def _delivered(self, err, _msg) -> None:
        if err is not None:
            self.failures += 1
            self.first_error = self.first_error or str(err)

    def send(self, topic: str, record: Record) -> None:
        while True:
            try:
                self._producer.produce(topic, record.value, record.key)
                break
            except BufferError:
                # The local queue is full: wait for librdkafka to hand batches to the broker.
                self._producer.poll(0.05)
        self._sent += 1
        if self._sent % 5000 == 0:
            self._producer.poll(0)

    def close(self) -> None:
        undelivered = self._producer.flush(120)
        if undelivered:
            self.failures += undelivered
            self.first_error = self.first_error or f"{undelivered} records still queued after 120 s"


CLIENTS = {"librdkafka": LibrdkafkaProducer, "kafka-python": KafkaPythonProducer}


def write_user_master(world: World, location: str) -> None:
    """The user master as users.parquet in the folder at `location` (a path or s3a://...)."""
    import pandas as pd

    from utils import files

    frame = pd.DataFrame(world.user_master_rows())
    frame["signup_date"] = pd.to_datetime(frame["signup_date"]).dt.date
    files.write_parquet(frame, locations.normalize(location), "users.parquet")


# Set by SIGTERM/SIGINT: stop producing after the record in hand (each process its own copy).
STOP = threading.Event()


def produce_shard(args: argparse.Namespace, shard: int, shards: int, truth_dir: Path | None) -> dict:
    """Generate one shard of the world (the whole world when shards == 1) and produce it."""
    settings = load_settings()
    world = World(dataclasses.replace(options_from_args(args), shard=shard, shards=shards))
    topics = settings.topics
    producer = None if args.no_kafka else CLIENTS[args.client](
        args.bootstrap_servers or settings.kafka_bootstrap_servers, settings.kafka_extra_options)
    truth = {}
    if truth_dir:
        truth_dir.mkdir(parents=True, exist_ok=True)
        truth = {t: (truth_dir / f"{t}.jsonl").open("w", encoding="utf-8") for t in topics}
    rate = args.rate / shards
    label = f"generate_events[{shard}/{shards}]" if shards > 1 else "generate_events"
    started = time.monotonic()
    last_report = started
    n = 0
    try:
        for record in world.records():
            if producer:
                producer.send(topics[record.topic], record)
            if truth:
                truth[record.topic].write(record.truth_line() + "\n")
            n += 1
            if rate and n % 100 == 0:
                ahead = n / rate - (time.monotonic() - started)
                if ahead > 0:
                    time.sleep(ahead)
            now = time.monotonic()
            if now - last_report >= 5:
                print(f"{label}: {n} records, {n / (now - started):,.0f} records/s", file=sys.stderr, flush=True)
                last_report = now
            if STOP.is_set():
                break
    finally:
        for f in truth.values():
            f.close()
        if producer:
            producer.close()
    return {"records": n, "counts": world.counts, "failures": producer.failures if producer else 0,
            "first_error": producer.first_error if producer else None, "stopped": STOP.is_set()}


def run(args: argparse.Namespace) -> dict:
    settings = load_settings()
    options = options_from_args(args)
    write_user_master(World(options), args.user_master_path or settings.user_master_path)
    started = time.monotonic()
    if args.processes == 1:
        parts = [produce_shard(args, 0, 1, args.truth_dir)]
    else:
        shard_dirs = [args.truth_dir / "shards" / str(k) if args.truth_dir else None for k in range(args.processes)]
        with ProcessPoolExecutor(args.processes, mp_context=multiprocessing.get_context("fork")) as pool:
            parts = list(pool.map(produce_shard, [args] * args.processes, range(args.processes),
                                  [args.processes] * args.processes, shard_dirs))
        if args.truth_dir:
            merge_shard_truth(args.truth_dir, shard_dirs, settings.topics)
    elapsed = time.monotonic() - started
    counts: dict[str, int] = {}
    for part in parts:
        for key, value in part["counts"].items():
            counts[key] = counts.get(key, 0) + value
    n = sum(p["records"] for p in parts)
    summary = {
        "records": n, "seconds": round(elapsed, 3), "records_per_second": round(n / elapsed, 1),
        "counts": dict(sorted(counts.items())), "start": options.start.isoformat(),
        "failures": sum(p["failures"] for p in parts), "topics": settings.topics,
        "client": None if args.no_kafka else args.client, "processes": args.processes,
        "stopped_early": any(p["stopped"] for p in parts),
    }
    if args.truth_dir:
        (args.truth_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    if summary["failures"]:
        summary["first_error"] = next(p["first_error"] for p in parts if p["failures"])
    return summary


def merge_shard_truth(truth_dir: Path, shard_dirs: list[Path], topics: dict[str, str]) -> None:
    """One ground-truth file per topic: the shards' files one after the other."""
    for topic in topics:
        with (truth_dir / f"{topic}.jsonl").open("wb") as out:
            for shard_dir in shard_dirs:
                with (shard_dir / f"{topic}.jsonl").open("rb") as part:
                    shutil.copyfileobj(part, out)
    shutil.rmtree(truth_dir / "shards")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: STOP.set())
    summary = run(args)
    print(json.dumps(summary))
    if summary["failures"]:
        print(f"generate_events: {summary['failures']} records were not delivered: "
              f"{summary.get('first_error')}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
