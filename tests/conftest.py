"""Shared fixtures: one local SparkSession for unit tests, one real stack for integration tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from configs.spark_config import PROJECT_ROOT, load_settings


@pytest.fixture(scope="session")
def spark():
    """One local SparkSession for every unit test of a pure transform."""
    from utils.spark_utils import create_spark_session

    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    settings = load_settings(spark_ui_enabled=False, spark_shuffle_partitions=2, spark_event_log_enabled=False)
    session = create_spark_session("unit-tests", settings, master="local[2]")
    yield session
    session.stop()


@pytest.fixture(scope="session")
def stack():
    """The real local stack (Kafka, Spark master + 2 workers, History Server, S3 server), started
    once per test session.

    If the stack was already running (a developer's `make stack-up`), it is reused and left
    running; otherwise it is started here and stopped at the end.
    """
    from tools import stack as stack_mod

    already_up = all(stack_mod.read_pid(c) is not None for c in stack_mod.components(with_s3=True))
    if not already_up:
        stack_mod.up(with_s3=True)
    yield stack_mod
    if not already_up and not os.environ.get("KEEP_STACK"):
        stack_mod.down()


@pytest.fixture
def tmp_outputs(tmp_path: Path):
    """An output root and checkpoint root private to one test."""
    out, ckpt = tmp_path / "outputs", tmp_path / "checkpoints"
    out.mkdir()
    ckpt.mkdir()
    return out, ckpt


__all__ = ["PROJECT_ROOT"]


@pytest.fixture(scope="session")
def spark_cluster_session(stack):
    """A SparkSession on the real 2-worker cluster, shared by the integration tests."""
    from pyspark.sql import SparkSession

    from utils.spark_utils import create_spark_session

    active = SparkSession.getActiveSession()
    if active is not None:
        active.stop()
    # It holds its executor all session long, beside the jobs' own: the small size leaves the
    # workers room for four streaming jobs and a batch job at the default 2g.
    session = create_spark_session("integration-tests", load_settings(spark_executor_memory="1g"),
                                   master="spark://127.0.0.1:7077")
    yield session
    session.stop()
