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


def test_kafka_keeps_its_data_in_its_volume():
    kafka = SERVICES["kafka"]
    mounts = dict(v.split(":", 1) for v in kafka["volumes"])
    assert kafka["environment"]["KAFKA_LOG_DIRS"].startswith(mounts["kafka-data"])


def test_no_architecture_specific_paths():
    for name in ("Dockerfile", "docker-compose.yml", "scripts/spark-node.sh", "scripts/healthcheck.sh"):
        text = (PROJECT_ROOT / name).read_text()
        assert not re.search(r"amd64|arm64|x86_64|aarch64", text.replace("-amd64 or -arm64", "")), name


def test_every_platform_service_has_a_role_the_health_check_knows():
    script = (PROJECT_ROOT / "scripts" / "healthcheck.sh").read_text()
    known = set(re.findall(r"^\s+([a-z-]+)\)$", script, flags=re.M))
    for name, service in SERVICES.items():
        if service.get("image", "").startswith("${PLATFORM_IMAGE"):
            assert service["environment"]["PLATFORM_ROLE"] in known, name
        else:
            assert service["healthcheck"]["test"], f"{name}: its own image needs its own health check"


def test_a_container_without_a_role_is_unhealthy_with_the_reason():
    done = subprocess.run(["bash", str(PROJECT_ROOT / "scripts" / "healthcheck.sh")], capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin"}, check=False)
    assert done.returncode == 1 and "PLATFORM_ROLE is ''" in done.stderr
    tool = subprocess.run(["bash", str(PROJECT_ROOT / "scripts" / "healthcheck.sh")], capture_output=True,
                          env={"PATH": "/usr/bin:/bin", "PLATFORM_ROLE": "tool"}, check=False)
    assert tool.returncode == 0


def test_minio_profile_and_one_setting_to_use_it():
    assert SERVICES["minio"]["profiles"] == ["s3"] and SERVICES["minio-bucket"]["profiles"] == ["s3"]
    assert re.fullmatch(r"minio/minio:RELEASE\.\S+", SERVICES["minio"]["image"]), "a pinned release, not latest"
    assert SERVICES["minio-bucket"]["depends_on"]["minio"]["condition"] == "service_healthy"
    assert SERVICES["minio-bucket"]["command"] == ["python", "-m", "tools.stack", "bucket"]
    env = SERVICES["orchestrator"]["environment"]
    for var in ("OUTPUT_ROOT", "CHECKPOINT_ROOT", "USER_MASTER_PATH"):
        assert env[var].startswith("${DATA_ROOT:-/processing}/"), var
    assert env["S3_ENDPOINT_URL"] == "${S3_ENDPOINT_URL-http://minio:9000}"


def test_images_pinned():
    images = [s["image"] for s in SERVICES.values() if "image" in s and not s["image"].startswith("${")]
    assert all(":" in i and not i.endswith(":latest") for i in images), images
    froms = re.findall(r"^FROM (\S+)", (PROJECT_ROOT / "Dockerfile").read_text(), flags=re.M)
    assert all(re.search(r":\d", f) for f in froms), froms
