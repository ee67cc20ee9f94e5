"""The orchestrator as a real process, supervising small real scripts."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psutil
import pytest
import requests

from configs.spark_config import PROJECT_ROOT
from tests.integration.helpers import wait_status

REGISTRY = PROJECT_ROOT / "tests" / "fixtures" / "registry.yaml"


def start_orchestrator(tmp_path: Path, port: int, *args: str) -> subprocess.Popen:
    env = {**os.environ, "JOB_REGISTRY_PATH": str(REGISTRY), "STATE_ROOT": str(tmp_path / "state"),
           "LOG_DIR": str(tmp_path / "logs"), "ORCHESTRATOR_LAUNCHER": "python",
           "FIXTURE_OUT": str(tmp_path / "out"), "SPARK_MASTER_URL": "local[1]",
           "TRIGGER_INTERVAL": "1 second", "ORCHESTRATOR_CATCHUP_HOURS": "2"}
    return subprocess.Popen([sys.executable, "orchestrator.py", "--port", str(port), *args], cwd=PROJECT_ROOT,
                            env=env, stdout=subprocess.DEVNULL, stderr=(tmp_path / "orch.err").open("w"),
                            start_new_session=True)


def descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def test_crashing_job_is_restarted_until_fatal_and_clean_exit_is_not(tmp_path):
    orch = start_orchestrator(tmp_path, 18191, "--jobs", "crasher,finisher,sleeper")
    try:
        status = wait_status(18191, lambda s: s["jobs"]["crasher"]["state"] == "FATAL")
        assert status["jobs"]["crasher"]["starts"] == 3
        assert status["jobs"]["crasher"]["last_exit_code"] == 3
        status = wait_status(18191, lambda s: s["jobs"]["finisher"]["state"] == "EXITED")
        assert status["jobs"]["finisher"]["starts"] == 1
        assert status["jobs"]["sleeper"]["state"] == "RUNNING", "the others keep running"
        assert status["healthy"] is False and status["fatal_jobs"] == ["crasher"]
        assert requests.get("http://127.0.0.1:18191/health", timeout=2).status_code == 503
        metrics = requests.get("http://127.0.0.1:18191/metrics", timeout=2).text
        assert 'orchestrator_job_state{job="crasher",state="FATAL"} 1.0' in metrics
    finally:
        orch.send_signal(signal.SIGTERM)
        orch.wait(timeout=30)


@pytest.mark.parametrize("jobs", ["sleeper,stubborn"])
def test_sigterm_ends_every_child_within_the_timeout(tmp_path, jobs):
    orch = start_orchestrator(tmp_path, 18192, "--jobs", jobs)
    wait_status(18192, lambda s: all(j["state"] == "RUNNING" for j in s["jobs"].values()))
    children = descendants(orch.pid)
    assert len(children) >= 4, "each job and its own child"
    started = time.monotonic()
    orch.send_signal(signal.SIGTERM)
    assert orch.wait(timeout=30) == 0
    elapsed = time.monotonic() - started
    assert elapsed < 3 + 5, f"stop_timeout is 3s; took {elapsed:.1f}s"
    _, alive = psutil.wait_procs(children, timeout=5)
    assert alive == []
    status = json.loads((tmp_path / "state" / "orchestrator" / "status.json").read_text())
    assert {j["state"] for j in status["jobs"].values()} == {"STOPPED"}


def test_scheduled_batch_runs_once_per_interval_and_status_command(tmp_path):
    orch = start_orchestrator(tmp_path, 18193, "--jobs", "batch_ok", "--once")
    assert orch.wait(timeout=60) == 0
    runs = [json.loads(line) for line in (tmp_path / "out" / "batch_runs.jsonl").read_text().splitlines()]
    assert [r[0] for r in runs] == ["--from-hour"] and runs[0][2] == "--to-hour", "consecutive hours: one run"
    first, last = (datetime.strptime(h, "%Y-%m-%d %H:%M:%S") for h in (runs[0][1], runs[0][3]))
    assert (last - first) // timedelta(hours=1) + 1 in (2, 3), "each hour fired within the 2-hour horizon"
    previous = (datetime.now(UTC) - timedelta(hours=1)).strftime("%Y-%m-%d %H:00:00")
    assert runs[0][3] == previous
    again = start_orchestrator(tmp_path, 18193, "--jobs", "batch_ok", "--once")
    assert again.wait(timeout=60) == 0
    assert len((tmp_path / "out" / "batch_runs.jsonl").read_text().splitlines()) == len(runs), "no double run"


def test_bad_cli_arguments_exit_non_zero_naming_the_argument(tmp_path):
    env = {**os.environ, "JOB_REGISTRY_PATH": str(REGISTRY)}
    bad = subprocess.run([sys.executable, "orchestrator.py", "--streaming", "maybe"], check=False, cwd=PROJECT_ROOT,
                         env=env, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "--streaming" in bad.stderr
    unknown = subprocess.run([sys.executable, "orchestrator.py", "--jobs", "nope"], check=False, cwd=PROJECT_ROOT,
                             env=env, capture_output=True, text=True, timeout=60)
    assert unknown.returncode != 0 and "--jobs" in unknown.stderr
    backfill = subprocess.run([sys.executable, "orchestrator.py", "backfill", "--job", "nope"],
                              check=False, cwd=PROJECT_ROOT, env={**env, "STATE_ROOT": str(tmp_path)},
                              capture_output=True, text=True, timeout=60)
    assert backfill.returncode == 2 and "--job" in backfill.stderr


def test_job_without_streaming_progress_is_restarted_as_unhealthy(tmp_path):
    orch = start_orchestrator(tmp_path, 18194, "--jobs", "stale")
    try:
        status = wait_status(18194, lambda s: s["jobs"]["stale"]["failures"] >= 1, timeout=40)
        assert status["jobs"]["stale"]["unhealthy_restarts"] >= 1
    finally:
        orch.send_signal(signal.SIGTERM)
        orch.wait(timeout=30)
