"""Dataset locations are URIs: plain paths, file:// and s3a://bucket/prefix; nothing in jobs/ or
utils/ handles one with pathlib (a static check, itself tested on examples)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from configs import locations
from configs.spark_config import SettingsError, load_settings, settings_for_env
from utils.launch import spark_conf, spark_submit_command

ROOT = Path(__file__).resolve().parents[2]


def test_locations_are_normalized_and_joined():
    assert locations.normalize("s3a://bucket/prefix/") == "s3a://bucket/prefix"
    assert locations.normalize("file:///data/out") == "file:///data/out"
    assert locations.normalize("outputs") == str(Path.cwd() / "outputs")
    assert locations.join("s3a://b/p", "_quarantine", "app_events") == "s3a://b/p/_quarantine/app_events"
    assert locations.local_path("file:///data/out") == Path("/data/out")
    assert locations.local_path("s3a://b/p") is None and locations.is_object_store("s3a://b/p")
    with pytest.raises(ValueError, match="use s3a://"):
        locations.normalize("s3://bucket/x")
    with pytest.raises(ValueError, match="needs a bucket"):
        locations.normalize("s3a://")


def test_settings_take_uris_and_name_the_variable_when_wrong(monkeypatch):
    s = load_settings(output_root="s3a://lake/platform/outputs", checkpoint_root="s3a://lake/platform/ckpt")
    assert s.dataset_path("enriched_events") == "s3a://lake/platform/outputs/enriched_events"
    assert s.quarantine_path("app_events") == "s3a://lake/platform/outputs/_quarantine/app_events"
    assert s.checkpoint_path("event_aggregation", "windows") == "s3a://lake/platform/ckpt/event_aggregation/windows"
    assert s.uses_object_store and not load_settings().uses_object_store
    monkeypatch.setenv("OUTPUT_ROOT", "s3://lake/outputs")
    with pytest.raises(SettingsError, match=r"OUTPUT_ROOT.*use s3a://"):
        load_settings()


def test_a_childs_settings_come_from_its_environment():
    child = settings_for_env({"OUTPUT_ROOT": "s3a://b/o", "PATH": "/usr/bin", "AWS_REGION": "eu-central-1"})
    assert child.output_root == "s3a://b/o" and child.aws_region == "eu-central-1" and child.uses_object_store


def test_s3a_settings_only_for_object_stores_and_credentials_never_on_the_command_line(tmp_path):
    local = spark_conf("x", load_settings(state_root=tmp_path), streaming=False)
    assert not any(k.startswith("spark.hadoop.fs.s3a") for k in local)
    assert "/s3/" not in local["spark.driver.extraClassPath"]
    s = load_settings(output_root="s3a://lake/out", s3_endpoint_url="http://127.0.0.1:9000", aws_region="eu-west-1",
                      aws_access_key_id="AKIA-TEST", aws_secret_access_key="s3cr3t-never-shown", state_root=tmp_path)
    conf = spark_conf("x", s, streaming=True)
    assert conf["spark.hadoop.fs.s3a.endpoint"] == "http://127.0.0.1:9000"
    assert conf["spark.hadoop.fs.s3a.path.style.access"] == "true"
    assert conf["spark.hadoop.fs.s3a.connection.ssl.enabled"] == "false"
    assert conf["spark.hadoop.fs.s3a.endpoint.region"] == "eu-west-1"
    if (s.jars_dir / "s3").is_dir():
        assert "hadoop-aws-3.5.0.jar" in conf["spark.driver.extraClassPath"]
        assert conf["spark.executor.extraClassPath"] == conf["spark.driver.extraClassPath"]
    cmd = " ".join(spark_submit_command("job.py", master="local[1]", settings=s))
    assert "s3cr3t-never-shown" not in cmd and "AKIA-TEST" not in cmd and "--properties-file" in cmd
    assert "s3cr3t-never-shown" not in str(s.redacted()) and "s3cr3t-never-shown" not in repr(s)


# What names a dataset location in the code: a settings attribute or method.
LOCATION_NAMES = {"output_root", "checkpoint_root", "user_master_path", "dataset_path", "quarantine_path",
                  "checkpoint_path"}


def pathlib_on_locations(source: str) -> list[str]:
    """Where `source` wraps a location in Path(...) or joins one with `/`."""
    found = []

    def names(node: ast.AST) -> set[str]:
        return {n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute)} | {
            n.id for n in ast.walk(node) if isinstance(n, ast.Name)}

    for node in ast.walk(ast.parse(source)):
        if (isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) in
                ("Path", "PurePath") and any(LOCATION_NAMES & names(a) for a in node.args)):
            found.append(f"line {node.lineno}: Path() of a location")
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div) and LOCATION_NAMES & names(node.left):
            found.append(f"line {node.lineno}: a location joined with /")
    return found


@pytest.mark.parametrize(("code", "bad"), [
    ("p = Path(settings.dataset_path('x'))", True),
    ("p = settings.output_root / 'x'", True),
    ("files = Path(settings.user_master_path).rglob('*')", True),
    ("p = locations.join(settings.output_root, 'x')", False),
    ("p = Path(__file__).resolve().parents[2]", False),
])
def test_the_static_check_finds_pathlib_on_a_location(code, bad):
    assert bool(pathlib_on_locations(code)) is bad


def test_no_dataset_location_goes_through_pathlib_in_jobs_or_utils():
    found = {str(p.relative_to(ROOT)): hits for p in [*ROOT.glob("jobs/**/*.py"), *ROOT.glob("utils/**/*.py")]
             if (hits := pathlib_on_locations(p.read_text()))}
    assert not found, found
