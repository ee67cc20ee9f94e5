"""The runtime foundation, against real processes: cluster, broker, connector, stack lifecycle."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psutil
import pytest
import requests

from configs.spark_config import PROJECT_ROOT, load_settings
from utils.launch import spark_submit_command, spark_submit_env

pytestmark = pytest.mark.integration



def _worker_app_ids(ui_port: int) -> set[str]:
    state = requests.get(f"http://127.0.0.1:{ui_port}/json/", timeout=5).json()
    return {e["appid"] for e in state.get("executors", [])}


def test_spark_submit_runs_executors_on_both_workers(stack, tmp_path):
    release = tmp_path / "release"
    command = spark_submit_command(
        PROJECT_ROOT / "tests/integration/apps/hold_executors.py", [str(release)],
        master="spark://127.0.0.1:7077",
        conf={"spark.executor.cores": "1", "spark.cores.max": "2", "spark.executor.memory": "512m",
              "spark.driver.host": "127.0.0.1"},
    )
    app = subprocess.Popen(
        command, env=spark_submit_env(), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        deadline = time.monotonic() + 120
        app_id = None
        while time.monotonic() < deadline and app_id is None:
            master = requests.get("http://127.0.0.1:8080/json/", timeout=5).json()
            apps = [a for a in master.get("activeapps", []) if a["name"] == "hold-executors"]
            app_id = apps[0]["id"] if apps else None
            time.sleep(1)
        assert app_id, "the application never registered with the master"
        while time.monotonic() < deadline:
            on_1, on_2 = app_id in _worker_app_ids(8081), app_id in _worker_app_ids(8082)
            if on_1 and on_2:
                break
            time.sleep(1)
        assert on_1 and on_2, f"executors on worker-1: {on_1}, on worker-2: {on_2}"
        _orchestrator_sees_a_starved_application_waiting(release)
    finally:
        release.touch()
        out, _ = app.communicate(timeout=120)
    assert app.returncode == 0
    assert "sum=999000" in out


def _orchestrator_sees_a_starved_application_waiting(release: Path) -> None:
    """Beside the running application, one whose executors fit no worker (64 GB each): the
    orchestrator's reading of the master (supervisor.health) shows it waiting, the other not."""
    from supervisor import health

    command = spark_submit_command(
        PROJECT_ROOT / "tests/integration/apps/hold_executors.py", [str(release)],
        master="spark://127.0.0.1:7077",
        conf={"spark.cores.max": "1", "spark.executor.memory": "64g", "spark.driver.host": "127.0.0.1"})
    starved = subprocess.Popen(command, env=spark_submit_env(), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline, master = time.monotonic() + 120, {}
        while time.monotonic() < deadline:
            master = health.spark_master("spark://127.0.0.1:7077")
            if master["apps"].count("hold-executors") == 2:
                break
            time.sleep(1)
        assert master["apps"].count("hold-executors") == 2, master
        assert master["apps_waiting"] == ["hold-executors"], "one waits, the other runs"
        assert master["alive_workers"] == 2 and master["cores"] >= master["cores_used"] >= 2, master
    finally:
        os.killpg(starved.pid, signal.SIGTERM)
        starved.wait(timeout=60)


def test_kafka_messages_read_back_by_spark_connector(stack, spark_cluster_session):
    from kafka import KafkaProducer

    from utils.spark_utils import read_kafka_batch

    topic = f"roundtrip-{uuid.uuid4().hex[:8]}"
    payloads = [json.dumps({"n": i, "text": f"message {i} é"}) for i in range(500)]
    producer = KafkaProducer(bootstrap_servers="127.0.0.1:9092", acks="all",
                             compression_type="snappy")
    for p in payloads:
        producer.send(topic, p.encode("utf-8"))
    producer.flush()
    producer.close()

    df = read_kafka_batch(spark_cluster_session, topic, load_settings())
    got = [r.v for r in df.selectExpr("CAST(value AS STRING) AS v").collect()]
    assert len(got) == len(payloads)
    assert sorted(got) == sorted(payloads)


# --- Lifecycle of a second, private stack on other ports ------------------------------------------

PRIVATE_PORTS = {
    "KAFKA_PORT": "19092", "KAFKA_CONTROLLER_PORT": "19093",
    "SPARK_MASTER_PORT": "17077", "SPARK_MASTER_WEBUI_PORT": "18090",
    "SPARK_WORKER1_WEBUI_PORT": "18091", "SPARK_WORKER2_WEBUI_PORT": "18092", "SPARK_HISTORY_UI_PORT": "18093",
}


def _stack_cli(stack_dir: Path, *args: str, extra_env: dict | None = None):
    env = {**os.environ, **PRIVATE_PORTS, "STACK_DIR": str(stack_dir), "STATE_ROOT": str(stack_dir / "state"),
           "STACK_LOG_DIR": str(stack_dir / "logs"),
           "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:19092",
           "SPARK_WORKER_MEMORY": "512m", **(extra_env or {})}
    return subprocess.run([sys.executable, "-m", "tools.stack", *args], check=False, cwd=PROJECT_ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def _pids(stack_dir: Path) -> list[int]:
    return [int(p.read_text()) for p in (stack_dir / "run").glob("*.pid")]


def _processes_mentioning(text: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if any(text in part for part in proc.info["cmdline"] or []):
                found.append(proc)
        except psutil.Error:
            continue
    return found


def test_stop_leaves_nothing_and_restart_reuses_kraft_storage(stack, tmp_path):
    stack_dir = tmp_path / "stack"
    first = None
    try:
        first = _stack_cli(stack_dir, "up")
    finally:
        if first is None or first.returncode != 0:
            _stack_cli(stack_dir, "down")  # a failed or timed-out start leaves nothing on the next test's ports
    assert first.returncode == 0, first.stdout + first.stderr
    pids = _pids(stack_dir)
    assert len(pids) == 5, "broker, master, two workers, History Server"
    meta = (stack_dir / "kafka" / "data" / "meta.properties").read_text()

    stopped = _stack_cli(stack_dir, "down")
    assert stopped.returncode == 0
    assert not [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != "zombie"]
    assert _processes_mentioning(str(stack_dir)) == []
    again = _stack_cli(stack_dir, "down")
    assert again.returncode == 0 and "not running" in again.stdout

    second = _stack_cli(stack_dir, "up", "--no-spark")
    try:
        assert second.returncode == 0, second.stdout + second.stderr
        assert (stack_dir / "kafka" / "data" / "meta.properties").read_text() == meta
        kafka_log = (stack_dir / "logs" / "kafka.log").read_text()
        assert kafka_log.count("formatting KRaft storage") == 1
    finally:
        _stack_cli(stack_dir, "down")
    assert _processes_mentioning(str(stack_dir)) == []


def test_stack_up_recorded_the_class_data_sharing_archives(stack):
    """The session's `stack up` trained the jobs' CDS archives; a recording that fails only
    warns (the jobs then start slower), so this is where a broken training shows."""
    from tools import cds

    settings = load_settings()
    assert not settings.spark_cds_enabled or cds.missing(settings) == [], "see 'stack: class-data sharing:'"


def test_start_fails_fast_naming_a_taken_port(tmp_path):
    stack_dir = tmp_path / "stack"
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", int(PRIVATE_PORTS["KAFKA_PORT"])))
        blocker.listen()
        started = time.monotonic()
        result = _stack_cli(stack_dir, "up", "--no-spark")
    assert result.returncode != 0
    assert "port 19092 (KAFKA_PORT)" in result.stderr
    assert time.monotonic() - started < 30
    assert _pids(stack_dir) == [] if (stack_dir / "run").exists() else True


def test_write_kafka_stream_delivers_every_row(stack, spark_cluster_session, tmp_path):
    from utils.spark_utils import write_kafka_stream

    spark = spark_cluster_session
    source = tmp_path / "in"
    source.mkdir()
    (source / "rows.json").write_text("\n".join(json.dumps({"k": f"k{i}", "v": f"value {i}"}) for i in range(50)))
    topic = f"sink-{uuid.uuid4().hex[:8]}"
    stream = spark.readStream.schema("k string, v string").json(str(source)).selectExpr("k AS key", "v AS value")
    query = write_kafka_stream(stream, topic=topic, checkpoint_location=str(tmp_path / "ckpt"),
                               query_name="to-kafka", settings=load_settings(), available_now=True)
    query.awaitTermination()
    from utils.spark_utils import read_kafka_batch

    got = read_kafka_batch(spark, topic, load_settings()).selectExpr("CAST(value AS STRING) AS v").collect()
    assert sorted(r.v for r in got) == sorted(f"value {i}" for i in range(50))
