"""Quarantine without a second read of the topic: a follower of a job's main query.

The main query validates every record once and counts its invalid ones per micro-batch (the
observed metric `consumed.quarantined`). The follower, a thread in the same driver, takes the
main query's committed micro-batches in order. For a batch that had invalid records it rereads
exactly that batch's Kafka offset range, validates it with the same function, and writes the
invalid records with their reason to _quarantine/<topic>/. A clean batch costs nothing; the
streaming query that used to read the topic a second time for this cost each job 13-16% of its
work (benchmarks/history.md).

Exactly once across crashes: a ledger in the checkpoint folder holds, per handled main batch,
the Kafka offsets up to which the topic is quarantined. A step writes one Parquet file per
quarantine date, named after the job and the batch (a rerun of the step replaces the same
files), then adds its ledger entry. After a restart, a batch whose count this driver did not
see is reread. Batch offsets come from the main query's checkpoint (`offsets/<batch>`), the
first batch's start from its source's initial offsets (`sources/0/0`).

The quarantine folder is a plain Parquet dataset: files appear in it by rename, whole. A folder
an earlier version's streaming file sink wrote is converted once (`adopt_sink_output`).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from urllib.parse import unquote, urlparse

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.streaming import StreamingQueryListener

from configs import locations
from configs.logging_config import get_logger
from configs.spark_config import Settings
from utils import storage
from utils import transformations as X

Offsets = dict[int, int]  # Kafka partition -> offset
# How long a batch committed while this driver runs may wait for its progress event (which
# carries the invalid count) before the follower rereads its range anyway.
COUNT_GRACE_SECONDS = 60.0
LEDGER_ENTRIES_KEPT = 20
# How often the follower looks for the main query's newly committed batches (a listing).
POLL_SECONDS = 2.0


def parse_offsets(text: str, topic: str) -> Offsets:
    """`topic`'s offsets in a checkpoint's offsets/<batch> or sources/0/0 file."""
    for line in text.lstrip("\x00").splitlines()[1:]:  # the first line is the log's version
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict) and isinstance(value.get(topic), dict):
            return {int(p): int(o) for p, o in value[topic].items()}
    raise ValueError(f"no offsets of topic {topic!r} in checkpoint entry {text[:200]!r}")


def pending(done: Offsets, end: Offsets) -> dict[int, tuple[int, int]]:
    """Per partition, the offsets [from, to) not yet quarantined up to `end`. A partition the
    ledger has not seen starts at the earliest offset (-2), as the Kafka source starts one."""
    return {p: (done.get(p, -2), to) for p, to in sorted(end.items()) if to > 0 and done.get(p, -2) < to}


def advance(done: Offsets, end: Offsets) -> Offsets:
    return {**done, **{p: max(done.get(p, 0), o) for p, o in end.items()}}


def write_invalid(spark: SparkSession, invalid: DataFrame, root: str, name: str) -> None:
    """`invalid` (quarantine rows) as one file `<name>.parquet` per quarantine date under `root`.
    Written to a hidden staging folder, then renamed into place: a rerun replaces the same files."""
    staging = locations.join(root, "_staging", name)
    invalid.repartition("quarantine_date").write.mode("overwrite").partitionBy("quarantine_date").parquet(staging)
    for uri, _size, _time in storage.data_files(spark, staging):
        partition = uri.rstrip("/").split("/")[-2]
        storage.replace(spark, uri, locations.join(root, partition, f"{name}.parquet"))
    storage.delete_tree(spark, staging)


def adopt_sink_output(spark: SparkSession, root: str) -> bool:
    """Turn a folder written by a streaming file sink into a plain dataset with the same rows:
    files its `_spark_metadata` log never committed (a killed micro-batch's) move to
    `_uncommitted/`, then the log is retired. Safe to rerun after a crash; False if no log."""
    log = locations.join(root, "_spark_metadata")
    if not storage.is_dir(spark, log):
        return False
    committed = {_same(uri) for uri in spark.read.parquet(root).inputFiles()}
    for uri, _size, _time in storage.data_files(spark, root):
        if _same(uri) not in committed:
            storage.replace(spark, uri, locations.join(root, "_uncommitted", uri.rsplit("/", 1)[-1]))
    storage.replace(spark, log, locations.join(root, "_spark_metadata_retired"))
    return True


def _same(uri: str) -> tuple[str, str, str]:
    """A file URI in one spelling (Spark writes file:///x where Hadoop lists file:/x)."""
    parts = urlparse(uri)
    return parts.scheme, parts.netloc, unquote(parts.path)


class Ledger:
    """One small JSON file per handled main batch, `<batch>`, the newest of which counts."""

    def __init__(self, spark: SparkSession, location: str):
        self.spark, self.location = spark, location

    def latest(self) -> tuple[int, Offsets] | None:
        batches = sorted(int(n) for n in storage.names(self.spark, self.location) if n.isdigit())
        if not batches:
            return None
        entry = json.loads(storage.read_text(self.spark, locations.join(self.location, str(batches[-1]))))
        return batches[-1], {int(p): o for p, o in entry["offsets"].items()}

    def add(self, batch: int, offsets: Offsets) -> None:
        storage.write_text(self.spark, locations.join(self.location, str(batch)),
                           json.dumps({"offsets": {str(p): o for p, o in sorted(offsets.items())}}))
        for old in (int(n) for n in storage.names(self.spark, self.location) if n.isdigit()):
            if old <= batch - LEDGER_ENTRIES_KEPT:
                storage.delete_tree(self.spark, locations.join(self.location, str(old)))


class _Counts(StreamingQueryListener):
    """The main query's invalid count per batch id, from its progress events."""

    def __init__(self, query_name: str):
        super().__init__()
        self.query_name = query_name
        self.by_batch: dict[int, int] = {}

    def onQueryStarted(self, event) -> None:
        pass

    def onQueryProgress(self, event) -> None:
        progress = event.progress
        metrics = (progress.observedMetrics or {}).get("consumed")
        if progress.name == self.query_name and metrics is not None:
            self.by_batch[progress.batchId] = int(metrics["quarantined"] or 0)

    def onQueryIdle(self, event) -> None:
        pass

    def onQueryTerminated(self, event) -> None:
        pass


class QuarantineFollower:
    """Writes `topic`'s invalid records for each committed batch of the job's query `query_name`;
    `validate` turns raw Kafka rows into rows with `_error` (the main query's own validation)."""

    def __init__(self, spark: SparkSession, settings: Settings, *, job: str, query_name: str, topic: str,
                 validate: Callable[[DataFrame], DataFrame], earlier_checkpoint: str = "quarantine"):
        self.spark, self.settings, self.job = spark, settings, job
        self.topic = settings.topics[topic]
        self.root = settings.quarantine_path(topic)
        self.checkpoint = settings.checkpoint_path(job, query_name)
        self.validate = validate
        self.name = f"{query_name}_quarantine"
        self.log = get_logger(job, query_name=self.name)
        self.ledger = Ledger(spark, settings.checkpoint_path(job, "quarantine_ledger"))
        # The streaming query an earlier version ran for this quarantine: where it stopped.
        self.earlier_checkpoint = settings.checkpoint_path(job, earlier_checkpoint)
        self.counts = _Counts(query_name)
        spark.streams.addListener(self.counts)
        self.batch: int | None = None  # the last main batch handled
        self.done: Offsets = {}
        self.seen_at_start = self._last_commit(self.checkpoint)
        self.waiting: dict[int, float] = {}
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"{job}-quarantine", daemon=True)

    # -- the main query's checkpoint ------------------------------------------------------------

    def _last_commit(self, checkpoint: str) -> int:
        ids = [int(n) for n in storage.names(self.spark, locations.join(checkpoint, "commits")) if n.isdigit()]
        return max(ids, default=-1)

    def _offsets(self, checkpoint: str, entry: str) -> Offsets | None:
        text = storage.read_text(self.spark, locations.join(checkpoint, entry))
        return None if text is None else parse_offsets(text, self.topic)

    def _resume(self) -> bool:
        """Where to go on from: the ledger, else the earlier quarantine query's checkpoint, else
        the main query's first offsets. False while the main query has not started yet."""
        adopt_sink_output(self.spark, self.root)
        entry = self.ledger.latest()
        if entry is not None and entry[0] <= self._last_commit(self.checkpoint):
            self.batch, self.done = entry
            return True
        if entry is not None:  # the main checkpoint was reset: keep the offsets, not the batch id
            self.log.warning("quarantine ledger is ahead of the main query's checkpoint",
                             extra={"ledger_batch": entry[0]})
            start = entry[1]
        else:
            earlier = self._last_commit(self.earlier_checkpoint)
            start = (self._offsets(self.earlier_checkpoint, f"offsets/{earlier}") if earlier >= 0
                     else self._offsets(self.checkpoint, "sources/0/0"))
            if start is None:
                return False
        self.batch, self.done = min(self._retained(), default=0) - 1, start
        return True

    def _retained(self) -> list[int]:
        """The batch ids whose offsets the main checkpoint still holds."""
        return [int(n) for n in storage.names(self.spark, locations.join(self.checkpoint, "offsets")) if n.isdigit()]

    # -- one step -------------------------------------------------------------------------------

    def step(self) -> bool:
        """Handle the main query's next committed batch; False when there is none yet."""
        if self.batch is None and not self._resume():
            return False
        batch = self.batch + 1
        if batch > self._last_commit(self.checkpoint):
            return False
        end = self._offsets(self.checkpoint, f"offsets/{batch}")
        invalid = self.counts.by_batch.get(batch)
        merged = end is None
        if merged:  # behind by more than the checkpoint keeps: its first entry spans the rest
            batch = min(b for b in self._retained() if b > batch)
            end, invalid = self._offsets(self.checkpoint, f"offsets/{batch}"), None
        ranges = pending(self.done, end)
        if ranges and invalid is None and not merged and batch > self.seen_at_start:
            first_seen = self.waiting.setdefault(batch, time.monotonic())
            if time.monotonic() - first_seen < COUNT_GRACE_SECONDS:
                return False  # its progress event (with the count) is on its way
        began = time.monotonic()
        if ranges and invalid != 0:
            write_invalid(self.spark, X.to_quarantine(self.validate(self._read(ranges))), self.root,
                          f"{self.job}-{batch:012d}")
        self.done = advance(self.done, end)
        self.ledger.add(batch, self.done)
        self.batch = batch
        self.waiting.pop(batch, None)
        self.counts.by_batch.pop(batch, None)
        if ranges and invalid != 0:
            reread = sum(t - f for f, t in ranges.values() if f >= 0)
            self.log.info("quarantine batch", extra={"batch_id": batch, "invalid_records": invalid,
                                                     "reread_records": reread,
                                                     "seconds": round(time.monotonic() - began, 2)})
        return True

    def _read(self, ranges: dict[int, tuple[int, int]]) -> DataFrame:
        def by_partition(i: int) -> str:
            return json.dumps({self.topic: {str(p): r[i] for p, r in ranges.items()}})

        return (self.spark.read.format("kafka").options(**self.settings.kafka_options())
                .option("assign", json.dumps({self.topic: sorted(ranges)}))
                .option("startingOffsets", by_partition(0)).option("endingOffsets", by_partition(1))
                .option("failOnDataLoss", str(self.settings.kafka_fail_on_data_loss).lower())
                .option("includeHeaders", "false").load())

    # -- life cycle -----------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                if not self.step():
                    self._stop.wait(POLL_SECONDS)
        except BaseException as exc:
            self.error = exc

    def start(self) -> QuarantineFollower:
        self._thread.start()
        return self

    def stop(self, timeout: float | None) -> None:
        """Stop after the running step (the next run goes on from the ledger)."""
        self._stop.set()
        if self._thread.ident is not None:
            self._thread.join(timeout)

    def finish(self) -> None:
        """Handle every batch the main query committed, then stop (an available-now run's end)."""
        self.stop(None)
        if self.error is not None:
            raise self.error
        while self.batch is None or self.batch < self._last_commit(self.checkpoint):
            if not self.step():
                time.sleep(0.5)
