"""How jobs are launched: no secret on a command line, UIs on 127.0.0.1 without kill links, and
an orchestrator that never loads pyspark."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest

from configs.spark_config import PROJECT_ROOT, load_settings
from utils import launch
from utils.launch import cds_archives, spark_conf, spark_submit_command, spark_submit_env

SECRET = "s3cr3t-value-that-must-not-leak"


def test_secret_settings_go_to_an_owner_only_properties_file_not_to_argv(tmp_path):
    settings = load_settings(state_root=tmp_path, spark_extra_conf={
        "spark.hadoop.fs.s3a.secret.key": SECRET, "spark.hadoop.fs.s3a.access.key": "AKIA-EXAMPLE",
        "spark.sql.shuffle.partitions": "3"})
    cmd = spark_submit_command(PROJECT_ROOT / "jobs/batch/daily_summary.py", ["--target-date", "2026-11-24"],
                               master="local[1]", settings=settings)
    assert not any(SECRET in arg or "AKIA-EXAMPLE" in arg for arg in cmd)
    assert "spark.sql.shuffle.partitions=3" in cmd, "other settings stay on the command line"
    props = cmd[cmd.index("--properties-file") + 1]
    mode = stat.S_IMODE((tmp_path / "secrets" / props.rsplit("/", 1)[1]).stat().st_mode)
    assert mode == 0o600
    assert f"spark.hadoop.fs.s3a.secret.key {SECRET}\n" in open(props).read()  # noqa: SIM115
    # The same secrets again: the same file, written once.
    assert spark_submit_command(PROJECT_ROOT / "jobs/batch/daily_summary.py", [], master="local[1]",
                                settings=settings)[cmd.index("--properties-file") + 1] == props


def test_ui_binds_to_loopback_without_kill_links_unless_configured():
    conf = spark_conf("x", load_settings(), streaming=False)
    assert conf["spark.ui.killEnabled"] == "false" and conf["spark.driver.bindAddress"] == "127.0.0.1"
    assert spark_submit_env({"PATH": "/usr/bin"})["SPARK_LOCAL_IP"] == "127.0.0.1"
    assert spark_submit_env({"SPARK_DRIVER_BIND_ADDRESS": "0.0.0.0"})["SPARK_LOCAL_IP"] == "0.0.0.0"
    assert spark_submit_env({"SPARK_LOCAL_IP": "10.0.0.5"})["SPARK_LOCAL_IP"] == "10.0.0.5"


def test_the_orchestrator_and_the_stack_tool_never_load_pyspark():
    code = ("import sys, orchestrator, tools.stack, tools.demo, supervisor.manager; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pyspark', 'py4j')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True,
                         check=True, timeout=60)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(("path", "code", "says"), [
    ("supervisor/probe.py", "import pyspark\n", "must not import pyspark"),
    ("supervisor/probe.py", "from utils.spark_utils import create_spark_session\n", "loads pyspark"),
    ("utils/probe.py", "from jobs.batch import daily_summary\n", "must not import jobs/"),
])
def test_ruff_forbids_the_imports_that_break_the_layering(path, code, says):
    """`make test` runs ruff over the tree: these imports would fail it (TID251)."""
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "--stdin-filename", path, "-"], input=code,
                            cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 1 and "TID251" in result.stdout and says in result.stdout, result.stdout


def test_a_spark_home_of_another_version_is_refused_naming_both(tmp_path, monkeypatch):
    from utils.launch import SparkHomeMismatchError, spark_home, spark_version

    pinned = spark_home()
    other = tmp_path / "spark-3.5.1"
    (other / "jars").mkdir(parents=True)
    (other / "jars" / "spark-core_2.12-3.5.1.jar").write_bytes(b"")
    monkeypatch.setenv("SPARK_HOME", str(other))
    with pytest.raises(SparkHomeMismatchError, match=r"is Spark 3\.5\.1, but the project pins pyspark 4\.2\.0"):
        spark_home()
    monkeypatch.setenv("SPARK_HOME", str(pinned))
    assert spark_home() == pinned and spark_version(pinned) == "4.2.0"


def test_jars_on_the_class_path_and_cds_archives_used_only_when_present(tmp_path):
    jars = tmp_path / "jars"
    (jars / "spark").mkdir(parents=True)
    (jars / "spark" / "spark-sql-kafka.jar").write_bytes(b"")
    # The CDS options alone (the C1-only driver has its own test).
    settings = load_settings(jars_dir=jars, spark_cds_dir=tmp_path / "cds", state_root=tmp_path,
                             spark_driver_c1_only=False)
    conf = spark_conf("x", settings, streaming=True)
    assert conf["spark.driver.extraClassPath"] == conf["spark.executor.extraClassPath"] == str(
        jars / "spark" / "spark-sql-kafka.jar")
    cmd = spark_submit_command("job.py", master="local[1]", settings=settings)
    assert "--jars" not in cmd, "nothing is copied to the executors per application"
    # No archive yet: no JVM option (a job starts as before).
    assert not any("extraJavaOptions" in k for k in conf)
    archives = cds_archives(settings)
    assert set(archives) == {"driver", "executor"}
    for path in archives.values():
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(b"stale or damaged: the JVM skips it (-Xshare:auto)")
    conf = spark_conf("x", settings, streaming=True)
    for role, path in archives.items():
        assert conf[f"spark.{role}.extraJavaOptions"] == f"-XX:SharedArchiveFile={path} -Xshare:auto"
    assert not any("extraJavaOptions" in k for k in spark_conf(
        "x", load_settings(jars_dir=jars, spark_cds_dir=tmp_path / "cds", spark_cds_enabled=False,
                                spark_driver_c1_only=False), streaming=True))
    # Another class path (S3A's jars) has archives of its own: these do not fit it.
    (jars / "s3").mkdir()
    (jars / "s3" / "hadoop-aws.jar").write_bytes(b"")
    s3 = load_settings(jars_dir=jars, spark_cds_dir=tmp_path / "cds", output_root="s3a://b/o",
                       spark_driver_c1_only=False)
    assert set(cds_archives(s3).values()).isdisjoint(archives.values())
    assert not any("extraJavaOptions" in k for k in spark_conf("x", s3, streaming=True))


def test_a_streaming_driver_compiles_with_c1_only_beside_its_cds_archive(tmp_path):
    """SPARK_DRIVER_C1_ONLY (default on): the streaming driver's JVM gets -XX:TieredStopAtLevel=1
    after its CDS options; executors and batch drivers keep both compilers; SPARK_EXTRA_CONF wins."""
    c1 = "-XX:TieredStopAtLevel=1"
    settings = load_settings(jars_dir=tmp_path / "jars", spark_cds_dir=tmp_path / "cds", state_root=tmp_path)
    assert spark_conf("x", settings, streaming=True)["spark.driver.extraJavaOptions"] == c1, "without archives"
    archives = cds_archives(settings)
    for path in archives.values():
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(b"x")
    cds = {role: f"-XX:SharedArchiveFile={path} -Xshare:auto" for role, path in archives.items()}
    conf = spark_conf("x", settings, streaming=True)
    assert conf["spark.driver.extraJavaOptions"] == f"{cds['driver']} {c1}"
    assert conf["spark.executor.extraJavaOptions"] == cds["executor"]
    assert spark_conf("x", settings, streaming=False)["spark.driver.extraJavaOptions"] == cds["driver"]
    off = settings.model_copy(update={"spark_driver_c1_only": False})
    assert spark_conf("x", off, streaming=True)["spark.driver.extraJavaOptions"] == cds["driver"]
    mine = settings.model_copy(update={"spark_extra_conf": {"spark.driver.extraJavaOptions": "-Xss4m"}})
    assert spark_conf("x", mine, streaming=True)["spark.driver.extraJavaOptions"] == "-Xss4m"



def test_the_cds_archives_are_recorded_anew_when_a_jar_is_replaced_at_the_same_path(tmp_path, monkeypatch):
    # The JVM skips an archive whose class path jars changed size or time (only a warning says
    # so): a re-created venv must not leave every job starting without its archive.
    home = tmp_path / "pyspark"
    (home / "jars").mkdir(parents=True)
    (home / "jars" / "spark-core.jar").write_bytes(b"core")
    monkeypatch.setattr(launch, "spark_home", lambda: home)
    (tmp_path / "jars" / "spark").mkdir(parents=True)
    connector = tmp_path / "jars" / "spark" / "spark-sql-kafka.jar"
    connector.write_bytes(b"kafka")
    settings = load_settings(jars_dir=tmp_path / "jars", spark_cds_dir=tmp_path / "cds", state_root=tmp_path)
    first = cds_archives(settings)
    assert cds_archives(settings) == first, "the same files: the same archives"
    os.utime(home / "jars" / "spark-core.jar", ns=(1, 1))
    second = cds_archives(settings)
    assert set(second.values()).isdisjoint(first.values()), "Spark's own jar re-installed"
    connector.write_bytes(b"kafka, another build")
    assert set(cds_archives(settings).values()).isdisjoint(second.values()), "the connector re-downloaded"


def test_a_job_starts_when_its_cds_archive_is_stale_or_damaged(tmp_path):
    """What -Xshare:auto promises, checked on this machine's JVM: a damaged archive is skipped."""
    java = spark_submit_env({"PATH": "/usr/bin:/bin"}).get("JAVA_HOME")
    damaged = tmp_path / "x.jsa"
    damaged.write_bytes(b"\0" * 4096)
    exe = f"{java}/bin/java" if java else "java"
    done = subprocess.run([exe, f"-XX:SharedArchiveFile={damaged}", "-Xshare:auto", "-version"],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
