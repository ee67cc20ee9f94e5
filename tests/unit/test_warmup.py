"""The executors' warm-up: it runs the operators it claims to, in the background, and a failure
in it is logged without touching the job."""

from __future__ import annotations

from utils import warmup


class _Log:
    def __init__(self):
        self.records: list[tuple[str, str]] = []

    def info(self, message, extra=None):
        self.records.append(("info", message))

    def warning(self, message, extra=None):
        self.records.append(("warning", message))


def test_warm_up_parses_every_generated_record(spark):
    rows = warmup.warm_up_plan(spark, 2).collect()
    # Every record parsed (none dropped as unparsable), 50 users x the minutes each falls into.
    assert sum(r.n for r in rows) == warmup.ROWS
    assert {t for r in rows for t in r.types} == {"BIGINT"}


def test_warm_up_runs_in_the_background_and_logs(spark):
    log = _Log()
    thread = warmup.start_warm_up(spark, 2, log)
    thread.join(timeout=120)
    assert not thread.is_alive() and thread.daemon
    assert log.records == [("info", "warm-up done")]


def test_a_failed_warm_up_is_logged_not_raised(spark):
    class Stopped:
        sparkContext = spark.sparkContext

        def range(self, *args):
            raise RuntimeError("session stopped")

    log = _Log()
    warmup.start_warm_up(Stopped(), 2, log).join(timeout=60)
    assert log.records == [("warning", "warm-up failed (no effect on the job)")]
