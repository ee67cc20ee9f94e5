"""A streaming job's start-up check names what is missing (a real socket, nothing listening)."""

from __future__ import annotations

import socket
import subprocess
import sys

from configs.spark_config import PROJECT_ROOT, load_settings
from utils import preflight


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_broker_that_does_not_answer_and_a_missing_user_master_are_named(tmp_path):
    port = free_port()
    settings = load_settings(kafka_bootstrap_servers=f"127.0.0.1:{port}", user_master_path=tmp_path / "none",
                             startup_check_seconds=0)
    found = preflight.problems(settings, ["app_events"], user_master=True)
    assert f"Kafka at 127.0.0.1:{port} does not answer" in found[0] and "KAFKA_BOOTSTRAP_SERVERS" in found[0]
    assert f"no user master at {tmp_path / 'none'} (USER_MASTER_PATH)" in found[1]


def test_the_job_exits_78_before_starting_spark(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(PROJECT_ROOT),
           "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}",
           "STARTUP_CHECK_SECONDS": "0", "LOG_DIR": str(tmp_path / "logs"), "STATE_ROOT": str(tmp_path / "state"),
           "USER_MASTER_PATH": str(tmp_path / "none")}
    done = subprocess.run([sys.executable, "jobs/streaming/data_enrichment.py"], check=False, cwd=PROJECT_ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == preflight.MISSING_DEPENDENCY_EXIT_CODE == 78
    assert "data_enrichment: cannot start: Kafka at 127.0.0.1:" in done.stderr
    assert "cannot start: no user master at" in done.stderr
