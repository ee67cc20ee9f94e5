"""A streaming job's start-up check of what it cannot run without: the Kafka broker with the
job's topics, and (for the enrichment) the user master. Missing either, the job ends at once with
a message naming what is missing and exit code 78 (EX_CONFIG), which the orchestrator takes as
FATAL without retrying: a restart cannot fix a wrong address or an absent file.

No pyspark here: the check runs before the JVM starts, in a second instead of a minute.
"""

from __future__ import annotations

import socket
import time

from configs.spark_config import Settings

MISSING_DEPENDENCY_EXIT_CODE = 78


def kafka_client_options(extra: dict[str, str]) -> dict[str, str]:
    """KAFKA_EXTRA_OPTIONS (Java client names, e.g. security.protocol) as kafka-python arguments."""
    from kafka import KafkaConsumer

    options = {k.replace(".", "_"): v for k, v in extra.items()}
    return {k: v for k, v in options.items() if k in KafkaConsumer.DEFAULT_CONFIG}


def kafka_problem(settings: Settings, topics: list[str], timeout: float) -> str | None:
    """Why the broker cannot serve `topics` (it does not answer within `timeout`, or a topic is
    missing), or None."""
    from kafka import KafkaConsumer
    from kafka.errors import KafkaError

    deadline = time.monotonic() + timeout
    last_error = "no answer"
    while True:
        try:
            if not any(_connects(server) for server in settings.kafka_bootstrap_servers.split(",")):
                raise ConnectionRefusedError("no bootstrap server accepts a connection")
            consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers, request_timeout_ms=10_000,
                                     **kafka_client_options(settings.kafka_extra_options))
            try:
                existing = consumer.topics()
            finally:
                consumer.close()
            missing = [t for t in topics if t not in existing]
            if not missing:
                return None
            last_error = (f"topic(s) {', '.join(missing)} do not exist on {settings.kafka_bootstrap_servers} "
                          "(create them: python -m tools.stack topics)")
        except (KafkaError, OSError, ValueError) as exc:
            last_error = (f"Kafka at {settings.kafka_bootstrap_servers} does not answer "
                          f"({exc.__class__.__name__}: {exc})")
        if time.monotonic() >= deadline:
            return f"{last_error}; waited {timeout:.0f}s (KAFKA_BOOTSTRAP_SERVERS, STARTUP_CHECK_SECONDS)"
        time.sleep(2)


def _connects(server: str) -> bool:
    """A TCP connection to host:port opens within 3 s (the broker's process is there at all)."""
    host, _, port = server.strip().rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=3):
            return True
    except (OSError, ValueError):
        return False


def user_master_problem(settings: Settings) -> str | None:
    from utils import files

    fs, path = files.filesystem(settings.user_master_path, settings)
    if not files.exists(fs, path):
        return (f"no user master at {settings.user_master_path} (USER_MASTER_PATH): write one with "
                "python -m tools.generate_events --no-kafka, or point USER_MASTER_PATH at yours")
    return None


def problems(settings: Settings, topics: list[str], *, user_master: bool) -> list[str]:
    found = [kafka_problem(settings, topics, settings.startup_check_seconds)]
    if user_master:
        found.append(user_master_problem(settings))
    return [p for p in found if p]
