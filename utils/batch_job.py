"""What every batch job shares: its interval arguments (one interval or a range) with clear
errors, the readiness check of its inputs, one Spark application for the whole range, reading a
date range of a partitioned dataset, and replacing exactly the partitions an interval produced.

A job script only says how one interval is computed:

    def body(spark, settings, args, interval, log) -> Outcome: ...
    if __name__ == "__main__":
        sys.exit(run_batch_job("hourly_aggregate", parser(), body))

Exit codes: 0 every interval written; 1 an interval failed; 2 bad arguments or settings;
75 (EX_TEMPFAIL) an interval's inputs are not complete yet (utils/readiness.py): nothing was
written, try later, or pass --force.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from pyspark.sql import DataFrame, Observation, SparkSession
from pyspark.sql import functions as F

from configs.logging_config import ContextLogger, configure_logging
from configs.spark_config import Settings, load_cli_settings, load_job_registry
from utils import readiness, storage
from utils.spark_utils import create_spark_session


def utc_now() -> datetime:
    return datetime.now(UTC)


# --- arguments -----------------------------------------------------------------------------------


def target_hour(value: str) -> datetime:
    """'YYYY-MM-DD HH:00:00' (or 'YYYY-MM-DDTHH') -> an aware UTC datetime on the hour, not future."""
    text = value.strip().replace("T", " ")
    for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d %H"):
        try:
            hour = datetime.strptime(text, fmt).replace(tzinfo=UTC)
            break
        except ValueError:
            continue
    else:
        raise argparse.ArgumentTypeError(f"expected 'YYYY-MM-DD HH:00:00', got {value!r}")
    if hour.minute or hour.second:
        raise argparse.ArgumentTypeError(f"must be on the hour (HH:00:00), got {value!r}")
    if hour + timedelta(hours=1) > utc_now():
        raise argparse.ArgumentTypeError(f"hour {value!r} has not ended yet")
    return hour


def target_date(value: str) -> date:
    """'YYYY-MM-DD' -> a date that is not in the future (UTC)."""
    try:
        day = date.fromisoformat(value.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected YYYY-MM-DD, got {value!r}") from None
    if day > utc_now().date():
        raise argparse.ArgumentTypeError(f"date {value!r} is in the future")
    return day


def positive_days(value: str) -> int:
    try:
        days = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number of days, got {value!r}") from None
    if days <= 0:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {days}")
    return days


@dataclass(frozen=True)
class Interval:
    """One hour or one day (UTC) of a batch job."""

    kind: str  # "hour" | "day"
    start: datetime  # aware, UTC

    @property
    def end(self) -> datetime:
        return readiness.interval_end(self.start, self.kind)

    @property
    def day(self) -> date:
        return self.start.date()

    @property
    def label(self) -> str:
        return self.start.strftime("%Y-%m-%d %H:00:00") if self.kind == "hour" else self.day.isoformat()


def _unit(kind: str) -> str:
    return "hour" if kind == "hour" else "date"


def add_interval_arguments(p: argparse.ArgumentParser, kind: str, *, single: Sequence[str],
                           default_help: str) -> None:
    """One interval (`single`, e.g. --target-hour) or a range (--from-hour/--to-hour or
    --from-date/--to-date, inclusive), plus --force and --result-file."""
    unit, kind_type = _unit(kind), (target_hour if kind == "hour" else target_date)
    example = "'YYYY-MM-DD HH:00:00'" if kind == "hour" else "YYYY-MM-DD"
    p.add_argument(*single, dest="target", type=kind_type, default=None,
                   help=f"the {unit} to compute, UTC, {example} (default: {default_help})")
    p.add_argument(f"--from-{unit}", dest="first", type=kind_type, default=None,
                   help=f"first {unit} of a range, inclusive: the whole range runs in one Spark application")
    p.add_argument(f"--to-{unit}", dest="last", type=kind_type, default=None,
                   help=f"last {unit} of a range, inclusive")
    p.add_argument("--force", action="store_true",
                   help="write even if the upstream watermarks have not passed the interval's end "
                        "(the run is recorded as forced)")
    p.add_argument("--result-file", type=Path, default=None,
                   help="append one JSON line per interval with its outcome (used by the orchestrator)")
    p.set_defaults(interval_kind=kind, target_flag=single[0])


def intervals_from_args(p: argparse.ArgumentParser, args: argparse.Namespace) -> list[Interval]:
    """The intervals a run covers, oldest first; exits 2 (naming the argument) when they do not add up."""
    kind, unit = args.interval_kind, _unit(args.interval_kind)
    if args.target is not None and (args.first is not None or args.last is not None):
        p.error(f"{args.target_flag} cannot be combined with --from-{unit}/--to-{unit}")
    if (args.first is None) != (args.last is None):
        p.error(f"--from-{unit} and --to-{unit} go together")

    def start_of(value) -> datetime:
        return value if isinstance(value, datetime) else datetime.combine(value, datetime.min.time(), tzinfo=UTC)

    if args.first is not None:
        first, last = start_of(args.first), start_of(args.last)
        if last < first:
            p.error(f"--to-{unit} {args.last} is before --from-{unit} {args.first}")
    else:
        default = (utc_now().replace(minute=0, second=0, microsecond=0) - timedelta(hours=1) if kind == "hour"
                   else start_of(utc_now().date() - timedelta(days=1)))
        first = last = start_of(args.target) if args.target is not None else default
    step = timedelta(hours=1) if kind == "hour" else timedelta(days=1)
    count = int((last - first) / step) + 1
    return [Interval(kind, first + i * step) for i in range(count)]


# --- reading and writing -----------------------------------------------------------------------------


def read_dataset(spark: SparkSession, settings: Settings, name: str, log: ContextLogger, *,
                 partition_col: str, first: date, last: date) -> DataFrame | None:
    """Partitions [first, last] of a dataset, or None (with a warning) when there are none.

    The dataset root is read (not the partition folders), so that Spark honours the streaming
    sink's `_spark_metadata` log: files a crashed micro-batch left behind are not part of it.
    """
    root = settings.dataset_path(name)
    wanted = [f"{partition_col}={first + timedelta(days=i)}" for i in range((last - first).days + 1)]
    present = [p for p in wanted if storage.is_dir(spark, f"{root}/{p}")]
    missing = sorted(set(wanted) - set(present))
    if missing:
        log.warning("input partitions missing", extra={"dataset": name, "missing": missing})
    if not present:
        return None
    return spark.read.parquet(root).filter(F.col(partition_col).between(F.lit(first), F.lit(last)))


def counted(df: DataFrame, name: str) -> tuple[DataFrame, Observation]:
    """`df` with its rows counted as they flow through the query (no extra Spark job)."""
    observation = Observation(name)
    return df.observe(observation, F.count(F.lit(1)).alias("rows")), observation


def write_partitions(df: DataFrame, settings: Settings, name: str, partition_by: list[str]) -> int:
    """Replace exactly the partitions present in `df` (dynamic partition overwrite); rows written.

    The rows are counted while they are written (an Observation): a count() afterwards would
    run the whole query a second time, or need it cached.
    """
    df, written = counted(df, f"{name}_written")
    (df.write.mode("overwrite").option("partitionOverwriteMode", "dynamic")
     .partitionBy(*partition_by).parquet(settings.dataset_path(name)))
    return written.get["rows"]


def replace_partition(spark: SparkSession, df: DataFrame | None, settings: Settings, name: str,
                      partition: dict[str, object]) -> int:
    """Replace one partition of `name` with `df` (rows written). An interval without rows
    replaces its partition with nothing: a re-run never leaves stale rows behind."""
    rows = 0 if df is None else write_partitions(df, settings, name, list(partition))
    if rows == 0:
        folder = "/".join(f"{k}={v}" for k, v in partition.items())
        storage.delete_tree(spark, f"{settings.dataset_path(name)}/{folder}")
    return rows


# --- the run ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    rows_read: int
    rows_written: int


Body = Callable[[SparkSession, Settings, argparse.Namespace, Interval, ContextLogger], Outcome]


def _report(path: Path | None, record: dict) -> None:
    """One line per interval, appended as soon as the interval is done, so that a run that fails
    half-way still tells which of its intervals were written."""
    if path is not None:
        with path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(record, default=str) + "\n")


def run_batch_job(name: str, parser: argparse.ArgumentParser, body: Body, argv: list[str] | None = None) -> int:
    """Parse (exit 2 naming the argument on bad input), check readiness (exit 75 when an
    interval's inputs are not complete, unless --force), then compute every interval in one
    Spark application, oldest first."""
    args = parser.parse_args(argv)
    intervals = intervals_from_args(parser, args)
    settings = load_cli_settings(name)
    try:
        spec = load_job_registry()[name]
    except (ValueError, KeyError) as exc:
        print(f"{name}: job registry: {exc}", file=sys.stderr)
        return 2
    log = configure_logging(name, log_dir=settings.log_dir, level=settings.log_level)
    log.info("starting", extra={"arguments": {k: str(v) for k, v in vars(args).items()},
                                "intervals": [i.label for i in intervals]})
    checks = [readiness.check(spec, i.start, state_root=settings.state_root) for i in intervals]
    waiting = [(i, c) for i, c in zip(intervals, checks, strict=True) if not c.ready]
    if waiting and not args.force:
        first, check = waiting[0]
        for interval, c in waiting:
            _report(args.result_file, {"interval": interval.start.isoformat(), "status": "not_ready",
                                       "reason": c.reason, "watermarks": c.watermarks})
        log.error("inputs not complete: nothing written", extra={
            "not_ready": [i.label for i, _ in waiting], "reason": check.reason})
        print(f"{name}: {len(waiting)} of {len(intervals)} intervals not ready, the first {first.label}: "
              f"{check.reason}. Nothing written; try again later, or pass --force "
              f"(exit code {readiness.NOT_READY_EXIT_CODE}).", file=sys.stderr)
        return readiness.NOT_READY_EXIT_CODE
    if waiting:
        log.warning("forced: inputs not complete", extra={"not_ready": [i.label for i, _ in waiting]})
    # Input rows are counted by Observations below a shuffle; when an interval has no rows, AQE's
    # empty-relation rule would cut that stage out of the final plan and lose its count.
    spark = create_spark_session(name, settings, extra_conf={
        "spark.sql.adaptive.optimizer.excludedRules":
            "org.apache.spark.sql.execution.adaptive.AQEPropagateEmptyRelation"})
    app_id = spark.sparkContext.applicationId
    try:
        for interval, check in zip(intervals, checks, strict=True):
            started = time.monotonic()
            try:
                outcome = body(spark, settings, args, interval, log)
            except Exception:
                log.exception("interval failed", extra={"label": interval.label})
                raise
            record = {"interval": interval.start.isoformat(), "status": "written", **asdict(outcome),
                      "duration_s": round(time.monotonic() - started, 2), "forced": not check.ready,
                      "watermarks": check.watermarks, "app_id": app_id}
            _report(args.result_file, record)
            log.info("interval written" if outcome.rows_written else "interval empty: partition replaced by nothing",
                     extra={**record, "label": interval.label})
    finally:
        spark.stop()
    log.info("exiting", extra={"exit_code": 0})
    return 0
