"""The orchestrator on the real stack: streaming jobs on live generated events; one driver is
SIGKILLed; the orchestrator restarts it; the outputs still equal the independent computation."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import uuid

import psutil
import pytest

from supervisor.process import driver_process
from tests.integration.helpers import Orchestrator, Run, merge_truth, read_progress, wait_until_drained, window_figures

pytestmark = pytest.mark.integration
PORT = 18299
SECRET = "never-on-a-command-line-42"


def test_driver_killed_is_restarted_and_outputs_stay_exact(stack, tmp_path):
    run = Run(tmp_path / "orch", f"or{uuid.uuid4().hex[:6]}_")
    common = ("--users", "200", "--duplicate-rate", "0.02", "--malformed-rate", "0.01")
    run.generate("--app-events", "4000", "--seed", "21", "--start", "2026-11-22T10:00:00Z", *common,
                 truth=run.root / "truth1")
    orch = Orchestrator(run, PORT, "--jobs", "event_aggregation",
                        env={"KAFKA_MAX_OFFSETS_PER_TRIGGER": "400", "TRIGGER_INTERVAL": "2 seconds",
                             # A secret-looking setting (harmless here): it must not reach any argv.
                             "SPARK_EXTRA_CONF": json.dumps({"spark.hadoop.fs.s3a.secret.key": SECRET})},
                        registry_edits={"start_seconds: 30": "start_seconds: 15",
                                        "backoff_initial_seconds: 5 ": "backoff_initial_seconds: 2 "}).start()
    try:
        orch.wait_for(lambda s: (read_progress(run, "event_aggregation").get("events_aggregated_realtime", {})
                                 .get("batch_id") or -1) >= 2, 300, "first micro-batches")
        before = orch.status()["jobs"]["event_aggregation"]
        tree = psutil.Process(orch.proc.pid).children(recursive=True)
        assert {p.name() for p in tree} >= {"java", "python"}, "the spark-submit JVM and the Python driver"
        for proc in tree:
            with contextlib.suppress(psutil.NoSuchProcess):
                assert SECRET not in " ".join(proc.cmdline()), proc.cmdline()
        os.kill(driver_process(before["pid"]), signal.SIGKILL)
        run.generate("--app-events", "4000", "--seed", "22", "--start", "2026-11-22T12:00:00Z", *common,
                     truth=run.root / "truth2")
        after = orch.wait_for(lambda s: s["jobs"]["event_aggregation"]["starts"] >= 2
                              and s["jobs"]["event_aggregation"]["state"] == "RUNNING", 300, "restart")
        assert after["jobs"]["event_aggregation"]["restarts"] >= 1
        wait_until_drained(run, "event_aggregation", "events_aggregated_realtime",
                           min_watermark="2026-11-22T12:25", timeout=400)
    finally:
        assert orch.stop() == 0

    # Part 2 starts after part 1's last event, so the final watermark closes every window of part 1.
    figures = window_figures(run, merge_truth(run, [run.root / "truth1", run.root / "truth2"]))
    assert figures["exact"], figures
