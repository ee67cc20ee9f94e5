"""The orchestrator on the real stack: streaming jobs on live generated events; one driver is
SIGKILLed; the orchestrator restarts it; the outputs still equal the independent computation."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import timedelta

import pytest
import requests

from configs.spark_config import PROJECT_ROOT
from supervisor.process import driver_process
from tests import oracle
from tests.integration.helpers import Run

pytestmark = pytest.mark.integration
PORT = 18299


def status() -> dict:
    return requests.get(f"http://127.0.0.1:{PORT}/status", timeout=5).json()


def wait_for(predicate, timeout: float, what: str) -> dict:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = status()
            if predicate(last):
                return last
        except requests.RequestException:
            pass
        time.sleep(2)
    raise AssertionError(f"{what}: not reached in {timeout:.0f}s; last status {json.dumps(last)[:2000]}")


def progress(run: Run, job: str) -> dict:
    path = run.root / "state" / "progress" / f"{job}.json"
    return json.loads(path.read_text()) if path.exists() else {}


def test_driver_killed_is_restarted_and_outputs_stay_exact(stack, tmp_path):
    run = Run(tmp_path / "orch", f"or{uuid.uuid4().hex[:6]}_")
    common = ("--users", "200", "--duplicate-rate", "0.02", "--malformed-rate", "0.01")
    run.generate("--app-events", "4000", "--seed", "21", "--start", "2026-11-22T10:00:00Z", *common,
                 truth=run.root / "truth1")
    env = {**os.environ, **run.env, "KAFKA_MAX_OFFSETS_PER_TRIGGER": "400", "TRIGGER_INTERVAL": "2 seconds",
           "ORCHESTRATOR_PORT": str(PORT)}
    registry = run.root / "jobs.yaml"
    registry.write_text((PROJECT_ROOT / "configs" / "jobs.yaml").read_text()
                        .replace("start_seconds: 30", "start_seconds: 15")
                        .replace("backoff_initial_seconds: 5 ", "backoff_initial_seconds: 2 "))
    env["JOB_REGISTRY_PATH"] = str(registry)
    orch = subprocess.Popen([sys.executable, "orchestrator.py", "--no-batch", "--jobs", "event_aggregation"],
                            cwd=PROJECT_ROOT, env=env, stdout=(run.root / "orch.out").open("w"),
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for(lambda s: progress(run, "event_aggregation").get("events_aggregated_realtime", {})
                 .get("batch_id", -1) >= 2, 300, "first micro-batches")
        before = status()["jobs"]["event_aggregation"]
        os.kill(driver_process(before["pid"]), signal.SIGKILL)
        run.generate("--app-events", "4000", "--seed", "22", "--start", "2026-11-22T12:00:00Z", *common,
                     truth=run.root / "truth2")
        after = wait_for(lambda s: s["jobs"]["event_aggregation"]["starts"] >= 2
                         and s["jobs"]["event_aggregation"]["state"] == "RUNNING", 300, "restart")
        assert after["jobs"]["event_aggregation"]["restarts"] >= 1
        # Let the restarted job drain everything produced: idle after having processed data.
        deadline = time.monotonic() + 400
        while time.monotonic() < deadline:
            q = progress(run, "event_aggregation").get("events_aggregated_realtime", {})
            if q.get("input_rows") == 0 and (q.get("watermark") or "") > "2026-11-22T12:25":
                break
            time.sleep(3)
    finally:
        orch.send_signal(signal.SIGTERM)
        assert orch.wait(timeout=180) == 0

    # Both parts as one ground truth (part 2 starts after part 1's last event, so the final
    # watermark closes every window of part 1).
    combined = run.root / "truth"
    combined.mkdir()
    for topic in ("app_events", "clickstream", "cdc_changes", "external_data"):
        with (combined / f"{topic}.jsonl").open("w") as out:
            for part in ("truth1", "truth2"):
                out.write((run.root / part / f"{topic}.jsonl").read_text())
    expected = oracle.event_windows(combined, watermark=timedelta(minutes=2))
    df = run.dataset("events_aggregated_realtime")
    got = {(w.to_pydatetime(), u, t, a): (n, sorted(s))
           for w, u, t, a, n, s in zip(df.window_start.dt.tz_localize("UTC"), df.user_id, df.event_type,
                                       df.app_type, df.event_count, df.session_ids, strict=True)}
    assert len(df) == len(got), "no window written twice"
    assert got == expected
