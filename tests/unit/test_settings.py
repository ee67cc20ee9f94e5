"""Typed settings: defaults, environment overrides, invalid values, redaction, the registry."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from configs.logging_config import configure_logging
from configs.spark_config import PROJECT_ROOT, Settings, SettingsError, load_job_registry, load_settings


@pytest.fixture
def clean_env(monkeypatch):
    for name in list(Settings.model_fields):
        monkeypatch.delenv(name.upper(), raising=False)
    return monkeypatch


def test_defaults_match_the_contract(clean_env):
    s = load_settings()
    assert s.kafka_bootstrap_servers == "127.0.0.1:9092"
    assert s.spark_master_url == "spark://127.0.0.1:7077"
    assert Path(s.output_root).name == "outputs"
    assert s.trigger_interval == "10 seconds"
    assert s.topics == {t: t for t in ("app_events", "clickstream", "cdc_changes", "external_data")}
    assert s.kafka_fail_on_data_loss is True


def test_environment_overrides(clean_env):
    clean_env.setenv("KAFKA_BOOTSTRAP_SERVERS", "broker:29092")
    clean_env.setenv("OUTPUT_ROOT", "/data/out")
    clean_env.setenv("KAFKA_MAX_OFFSETS_PER_TRIGGER", "5000")
    clean_env.setenv("TRIGGER_INTERVAL", "30 seconds")
    clean_env.setenv("KAFKA_EXTRA_OPTIONS", '{"security.protocol": "SASL_SSL", "sasl.jaas.config": "jaas-s3cr3t"}')
    s = load_settings()
    assert s.kafka_bootstrap_servers == "broker:29092" and s.output_root == "/data/out"
    assert s.kafka_max_offsets_per_trigger == 5000 and s.trigger_interval == "30 seconds"
    assert s.kafka_options()["kafka.security.protocol"] == "SASL_SSL"
    assert s.redacted()["kafka_extra_options"]["sasl.jaas.config"] == "***"
    assert "jaas-s3cr3t" not in json.dumps(s.redacted())


def test_extra_spark_conf_is_applied_last(clean_env):
    from utils.launch import spark_conf

    hdfs = "org.apache.spark.sql.execution.streaming.state.HDFSBackedStateStoreProvider"
    assert "RocksDB" in spark_conf("t", load_settings(), streaming=True)["spark.sql.streaming.stateStore.providerClass"]
    clean_env.setenv("SPARK_EXTRA_CONF", json.dumps({"spark.sql.streaming.stateStore.providerClass": hdfs,
                                                     "spark.hadoop.fs.s3a.secret.key": "s3cr3t"}))
    s = load_settings()
    assert spark_conf("t", s, streaming=True)["spark.sql.streaming.stateStore.providerClass"] == hdfs
    assert "s3cr3t" not in json.dumps(s.redacted())


@pytest.mark.parametrize(("var", "value"), [
    ("KAFKA_TOPIC_PARTITIONS", "many"), ("KAFKA_TOPIC_PARTITIONS", "0"),
    ("TRIGGER_INTERVAL", "10s"), ("SPARK_EXECUTOR_MEMORY", "lots"),
    ("KAFKA_EXTRA_OPTIONS", "{not json"), ("KAFKA_STARTING_OFFSETS", "yesterday"),
    ("KAFKA_FAIL_ON_DATA_LOSS", "perhaps"),
    ("SPARK_EXTRA_CONF", "[1]"), ("SPARK_EXTRA_CONF", '{"executor.memory": "2g"}'),
])
def test_invalid_values_name_the_variable(clean_env, var, value):
    clean_env.setenv(var, value)
    with pytest.raises(SettingsError, match=var):
        load_settings()


def test_job_registry_lists_every_job_with_valid_schedules():
    jobs = load_job_registry()
    assert {n for n, j in jobs.items() if j.kind == "streaming"} == {
        "event_aggregation", "clickstream_analysis", "cdc_transformation", "data_enrichment"}
    assert {n for n, j in jobs.items() if j.kind == "batch"} == {
        "hourly_aggregate", "daily_summary", "user_segmentation"}
    assert all(j.script_path.is_file() for j in jobs.values())


def test_registry_rejects_a_bad_cron(tmp_path):
    bad = tmp_path / "jobs.yaml"
    bad.write_text("jobs:\n  x: {kind: batch, script: orchestrator.py, schedule: '99 * * * *', interval: hour}\n")
    with pytest.raises(ValueError, match="invalid cron"):
        load_job_registry(bad)


def test_json_logs_carry_bound_context(tmp_path):
    log = configure_logging("unit-job", run_id="r1", log_dir=tmp_path, console=False)
    log.bind(query_id="q1", batch_id=7).info("batch done", extra={"input_rows": 10})
    for handler in logging.getLogger().handlers:
        handler.flush()
    record = json.loads((tmp_path / "unit-job.log").read_text().splitlines()[-1])
    assert record["job"] == "unit-job" and record["run_id"] == "r1"
    assert record["query_id"] == "q1" and record["batch_id"] == 7 and record["input_rows"] == 10
    assert record["message"] == "batch done" and record["levelname"] == "INFO"


def test_every_documented_setting_can_come_from_a_dot_env_file(tmp_path):
    """Settings the README lists as environment variables or `.env` lines are all read from `.env`."""
    import subprocess
    import sys

    registry = tmp_path / "jobs.yaml"
    registry.write_text((PROJECT_ROOT / "configs" / "jobs.yaml").read_text())
    (tmp_path / ".env").write_text(
        "ORCHESTRATOR_PORT=18123\nORCHESTRATOR_HOST=127.0.0.2\nORCHESTRATOR_CATCHUP_HOURS=48\nLOG_LEVEL=DEBUG\n"
        f"SPARK_DRIVER_HOST=orchestrator\nSPARK_DRIVER_BIND_ADDRESS=0.0.0.0\nJOB_REGISTRY_PATH={registry}\n")
    code = ("from configs.spark_config import load_settings, load_job_registry\n"
            "from utils.launch import spark_conf\n"
            "s = load_settings(); c = spark_conf('x', s, streaming=False)\n"
            "print(s.orchestrator_port, s.orchestrator_host, s.orchestrator_catchup_hours, s.log_level,"
            " c['spark.driver.host'], c['spark.driver.bindAddress'], s.job_registry_path == load_settings()"
            ".job_registry_path, len(load_job_registry()))")
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(PROJECT_ROOT)}
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                         check=True, timeout=60).stdout.split()
    assert out == ["18123", "127.0.0.2", "48.0", "DEBUG", "orchestrator", "0.0.0.0", "True", "7"]
