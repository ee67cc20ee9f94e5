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


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def cli(tmp_path: Path, port: int, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "JOB_REGISTRY_PATH": str(REGISTRY), "STATE_ROOT": str(tmp_path / "state"),
           "ORCHESTRATOR_PORT": str(port)}
    return subprocess.run([sys.executable, "orchestrator.py", *args], cwd=PROJECT_ROOT, env=env,
                          capture_output=True, text=True, timeout=60, check=False)


def test_a_second_orchestrator_is_refused_and_a_killed_one_is_succeeded_by_adoption(tmp_path):
    orch = start_orchestrator(tmp_path, 18195, "--jobs", "sleeper")
    try:
        first = wait_status(18195, lambda s: s["jobs"]["sleeper"]["state"] == "RUNNING")
        second = start_orchestrator(tmp_path, 18196, "--jobs", "sleeper")
        assert second.wait(timeout=60) == 1
        assert f"another orchestrator (pid {orch.pid}) is running" in (tmp_path / "orch.err").read_text()
        # The OOM killer, kill -9: the job outlives its orchestrator (its own session)...
        sleeper = first["jobs"]["sleeper"]["pid"]
        tree = [sleeper, *(p.pid for p in descendants(sleeper))]
        os.kill(orch.pid, signal.SIGKILL)
        orch.wait(timeout=10)
        assert all(alive(p) for p in tree)
        down = cli(tmp_path, 18195, "status")
        assert down.returncode == 1 and "not running (last status written at" in down.stderr, down.stderr
        # ...and the next orchestrator adopts it instead of starting a second one.
        orch = start_orchestrator(tmp_path, 18195, "--jobs", "sleeper")
        adopted = wait_status(18195, lambda s: s["jobs"]["sleeper"]["state"] == "RUNNING")
        assert adopted["jobs"]["sleeper"]["pid"] == sleeper and adopted["jobs"]["sleeper"]["starts"] == 1
        assert cli(tmp_path, 18195, "status").returncode == 0
    finally:
        orch.send_signal(signal.SIGTERM)
        assert orch.wait(timeout=30) == 0
    _, left = psutil.wait_procs([psutil.Process(p) for p in tree if alive(p)], timeout=10)
    assert left == [], (f"an adopted job is stopped like our own; left: {[(p.pid, p.name()) for p in left]}; "
                        f"orchestrator's log: {(tmp_path / 'orch.err').read_text()[-2000:]}")
    records = json.loads((tmp_path / "state" / "orchestrator" / "children.json").read_text())
    assert records == []


def test_one_job_is_stopped_started_and_restarted_while_the_others_run(tmp_path):
    orch = start_orchestrator(tmp_path, 18197, "--jobs", "sleeper,stubborn,crasher")
    try:
        status = wait_status(18197, lambda s: s["jobs"]["sleeper"]["state"] == "RUNNING"
                             and s["jobs"]["crasher"]["state"] == "FATAL")
        other = status["jobs"]["stubborn"]["pid"]
        stopped = cli(tmp_path, 18197, "stop", "sleeper")
        assert stopped.returncode == 0 and "stop sleeper requested" in stopped.stdout
        wait_status(18197, lambda s: s["jobs"]["sleeper"]["state"] == "STOPPED")
        assert cli(tmp_path, 18197, "start", "sleeper").returncode == 0
        started = wait_status(18197, lambda s: s["jobs"]["sleeper"]["state"] == "RUNNING")
        first = started["jobs"]["sleeper"]["pid"]
        assert cli(tmp_path, 18197, "restart", "sleeper").returncode == 0
        restarted = wait_status(18197, lambda s: s["jobs"]["sleeper"]["state"] == "RUNNING"
                                and s["jobs"]["sleeper"]["pid"] != first)
        assert restarted["jobs"]["sleeper"]["failures"] == 0, "an operator's restart is not a failure"
        assert restarted["jobs"]["stubborn"]["pid"] == other and restarted["jobs"]["stubborn"]["state"] == "RUNNING"
        # start clears FATAL (the crasher fails again at once: FATAL after its 3 attempts).
        assert cli(tmp_path, 18197, "start", "crasher").returncode == 0
        again = wait_status(18197, lambda s: s["jobs"]["crasher"]["starts"] >= 6
                            and s["jobs"]["crasher"]["state"] == "FATAL")
        assert again["jobs"]["crasher"]["starts"] == 6
        unknown = cli(tmp_path, 18197, "stop", "nope")
        assert unknown.returncode == 1 and "'nope' is unknown" in unknown.stderr
    finally:
        orch.send_signal(signal.SIGTERM)
        assert orch.wait(timeout=30) == 1, "a FATAL job at the end makes the exit code 1"
    gone = cli(tmp_path, 18197, "stop", "sleeper")
    assert gone.returncode == 1 and "not running" in gone.stderr
