"""docker-compose.yml and Dockerfile, checked without a Docker engine: the official Compose
schema, the services/ports/volumes/health checks the platform needs, hadolint, and that the
containers run the same scripts as the native stack."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from configs.spark_config import PROJECT_ROOT

SCHEMA = PROJECT_ROOT.parent / "shared" / "schemas" / "compose-spec.json"
COMPOSE = yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
SHARED_MOUNTS = {"outputs": "/processing/outputs", "checkpoints": "/processing/checkpoints",
                 "logs": "/processing/logs"}


def test_compose_file_is_valid_against_the_official_schema():
    jsonschema.validate(COMPOSE, json.loads(SCHEMA.read_text()))


def test_services_and_ui_ports_published_on_localhost():
    assert {"spark-master", "spark-worker-1", "spark-worker-2", "orchestrator"} <= set(SERVICES)
    expected = {"spark-master": {"8080", "7077"}, "spark-worker-1": {"8081"}, "spark-worker-2": {"8082"},
                "orchestrator": {"8099"}, "spark-history": {"18080"}}
    for name, ports in expected.items():
        published = {}
        for spec in SERVICES[name]["ports"]:
            host_ip, host_port, _ = spec.rsplit(":", 2)
            published[host_port] = host_ip
        assert ports <= set(published), name
        assert all(ip == "${BIND_ADDRESS:-127.0.0.1}" for ip in published.values()), name


@pytest.mark.parametrize("service", ["spark-master", "spark-worker-1", "spark-worker-2", "orchestrator"])
def test_shared_volumes_mounted_at_the_same_path(service):
    mounts = dict(v.split(":", 1) for v in SERVICES[service]["volumes"])
    for volume, path in SHARED_MOUNTS.items():
        assert mounts.get(volume) == path, f"{service}: {volume}"
        assert volume in COMPOSE["volumes"]


def test_health_checks_and_dependency_conditions():
    for name in ("spark-master", "spark-worker-1", "spark-worker-2", "spark-history", "orchestrator", "kafka"):
        assert SERVICES[name]["healthcheck"]["test"], name
    history = SERVICES["spark-history"]["environment"]
    assert history["PLATFORM_ROLE"] == "spark-history" and "spark-history)" in (
        PROJECT_ROOT / "scripts" / "healthcheck.sh").read_text()
    assert history["SPARK_HISTORY_LOG_DIR"].startswith("/processing/state/"), "where the orchestrator's drivers log"
    assert "state:/processing/state" in SERVICES["orchestrator"]["volumes"]
    assert SERVICES["spark-worker-1"]["depends_on"]["spark-master"]["condition"] == "service_healthy"
    orch = SERVICES["orchestrator"]["depends_on"]
    nodes = ("spark-master", "spark-worker-1", "spark-worker-2")
    assert all(orch[w]["condition"] == "service_healthy" for w in nodes)
    assert orch["kafka-topics"] == {"condition": "service_completed_successfully", "required": False}


def test_kafka_and_generator_only_in_the_demo_profile():
    assert SERVICES["kafka"]["image"].startswith("apache/kafka:4.")
    assert SERVICES["kafka"]["profiles"] == ["demo"] and SERVICES["generator"]["profiles"] == ["demo"]
    assert "profiles" not in SERVICES["orchestrator"]
    bootstrap = SERVICES["orchestrator"]["environment"]["KAFKA_BOOTSTRAP_SERVERS"]
    assert bootstrap == "${KAFKA_BOOTSTRAP_SERVERS:-kafka:9092}"


def test_worker_cores_and_memory_configurable():
    env = SERVICES["spark-worker-1"]["environment"]
    assert env["SPARK_WORKER_CORES"].startswith("${SPARK_WORKER_CORES:-")
    assert env["SPARK_WORKER_MEMORY"].startswith("${SPARK_WORKER_MEMORY:-")


def _commands() -> list[list[str]]:
    cmds = [s["command"] for s in SERVICES.values() if "command" in s]
    docker = (PROJECT_ROOT / "Dockerfile").read_text()
    for line in re.findall(r"^(?:CMD|HEALTHCHECK .*CMD) (\[.*\])$", docker, flags=re.M):
        cmds.append(json.loads(line))
    for s in SERVICES.values():
        test = s.get("healthcheck", {}).get("test", [])
        if test and test[0] == "CMD":
            cmds.append(test[1:])
    return cmds


def test_container_commands_refer_to_scripts_that_exist_and_the_native_stack_uses():
    stack_source = (PROJECT_ROOT / "tools" / "stack.py").read_text()
    referenced = set()
    for cmd in _commands():
        for part in cmd:
            if part.endswith((".sh", ".py")):
                assert (PROJECT_ROOT / part).is_file(), part
                referenced.add(part)
            if part == "-m":
                module = cmd[cmd.index("-m") + 1]
                assert (PROJECT_ROOT / (module.replace(".", "/") + ".py")).is_file(), module
    assert "scripts/spark-node.sh" in referenced and "orchestrator.py" in referenced
    assert '"spark-node.sh"' in stack_source, "the native stack starts Spark with the same script"


def test_dockerfile_passes_hadolint():
    hadolint = Path(sys.executable).parent / "hadolint"
    dockerfile = str(PROJECT_ROOT / "Dockerfile")
    result = subprocess.run([str(hadolint), dockerfile], check=False, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_ignored_hadolint_rule_is_justified():
    lines = (PROJECT_ROOT / "Dockerfile").read_text().splitlines()
    for i, line in enumerate(lines):
        if "hadolint ignore" in line:
            assert lines[i - 1].startswith("#") and len(lines[i - 1]) > 20, f"line {i + 1} needs a reason above"


def test_dockerfile_shape():
    text = (PROJECT_ROOT / "Dockerfile").read_text()
    assert "FROM python:3.11" in text and "openjdk-17-jre-headless" in text
    assert text.index("COPY requirements.txt") < text.index("COPY --chown=platform:platform . /processing")
    assert re.search(r"^USER \d+", text, flags=re.M) and "HEALTHCHECK" in text
    assert "fetch_jars.sh" in text, "connector jars come from the same pom at build time"
    assert shlex.split("WORKDIR /processing")[1] in text
