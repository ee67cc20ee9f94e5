"""How a job is launched, without pyspark: its Spark configuration, and the `spark-submit`
command and environment the orchestrator, the tests and the benchmarks start it with.

The orchestrator imports this (never pyspark): building a command must not load a JVM bridge,
nor fail because the Kafka connector jars are missing (the job itself says so when it needs them).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from configs.spark_config import PROJECT_ROOT, Settings, get_settings, is_secret_key


def connector_jars(settings: Settings) -> list[str]:
    """The Spark-Kafka connector jars resolved by `make setup` (scripts/fetch_jars.sh); [] if none."""
    return sorted(str(p) for p in (settings.jars_dir / "spark").glob("*.jar"))


def s3_jars(settings: Settings) -> list[str]:
    """S3A: hadoop-aws and the AWS SDK modules it uses (scripts/fetch_jars.sh); [] if none."""
    return sorted(str(p) for p in (settings.jars_dir / "s3").glob("*.jar"))


def class_path(settings: Settings) -> list[str]:
    """The jars every job has on its driver's and executors' class path: the Kafka connector,
    and S3A for jobs whose locations are on an object store."""
    return connector_jars(settings) + (s3_jars(settings) if settings.uses_object_store else [])


def java_binary() -> Path:
    """The `java` that spark-submit and the workers start: JAVA_HOME's, else the one on PATH."""
    home = os.environ.get("JAVA_HOME")
    return (Path(home) / "bin" / "java") if home else Path(shutil.which("java") or "java").resolve()


def cds_files(settings: Settings) -> dict[str, str]:
    """What an archive depends on besides Spark's folder: the java binary and every jar of the
    class path (Spark's and ours), each with its size and modification time ("missing" if gone)."""
    java = java_binary().resolve()
    jars = [*sorted((spark_home() / "jars").glob("*.jar")), *map(Path, class_path(settings))]
    return {str(path): stamp(path) for path in [java, *jars]}


def cds_archives(settings: Settings) -> dict[str, Path]:
    """The class-data-sharing archives for this class path, Spark and Java: {"driver": path,
    "executor": path}. An archive only fits the class path and JVM it was recorded with, so the
    name carries a key of both: a job with other jars (S3A) or another Java looks for its own.

    The JVM also refuses an archive when a jar on its class path has another size or modification
    time than at recording (a re-created venv, a re-downloaded connector: same paths, new files),
    and says so only in a warning; so these are part of the key, and such a change records anew."""
    (java, java_stamp), *jars = cds_files(settings).items()
    identity = "\n".join([str(spark_home()), java, java_stamp, *(f"{jar}:{s}" for jar, s in jars)])
    key = hashlib.sha256(identity.encode()).hexdigest()[:12]
    return {role: settings.spark_cds_dir / f"{role}-{key}.jsa" for role in ("driver", "executor")}


def stamp(path: Path) -> str:
    """A file's size and modification time, as the JVM checks them for a CDS archive."""
    try:
        st = path.stat()
    except OSError:
        return "missing"
    return f"{st.st_size}:{st.st_mtime_ns}"


def cds_options(settings: Settings) -> dict[str, str]:
    """JVM options that use the recorded archives, for each archive that exists (none when CDS is
    off). -Xshare:auto: a stale or damaged archive is skipped with a warning, never fatal."""
    if not settings.spark_cds_enabled:
        return {}
    return {f"spark.{role}.extraJavaOptions": f"-XX:SharedArchiveFile={path} -Xshare:auto"
            for role, path in cds_archives(settings).items() if path.is_file()}


def s3_conf(settings: Settings) -> dict[str, str]:
    """S3A settings for a job whose locations are on an object store. The credentials, when set,
    go in Hadoop's configuration (secret-looking keys: never on a command line, redacted by Spark
    in its UI and event log); without them S3A asks the AWS default chain."""
    conf = {"spark.hadoop.fs.s3a.endpoint.region": settings.aws_region}
    if settings.s3_endpoint_url:
        conf.update({"spark.hadoop.fs.s3a.endpoint": settings.s3_endpoint_url,
                     "spark.hadoop.fs.s3a.path.style.access": "true",
                     "spark.hadoop.fs.s3a.connection.ssl.enabled":
                         str(settings.s3_endpoint_url.startswith("https://")).lower()})
    if settings.aws_access_key_id and settings.aws_secret_access_key:
        conf.update({"spark.hadoop.fs.s3a.access.key": settings.aws_access_key_id.get_secret_value(),
                     "spark.hadoop.fs.s3a.secret.key": settings.aws_secret_access_key.get_secret_value()})
    return conf


def spark_conf(app_name: str, settings: Settings, *, streaming: bool) -> dict[str, str]:
    """The Spark configuration every job starts from (sized for a 2-core box by default)."""
    conf = {
        "spark.app.name": f"{settings.app_name_prefix}-{app_name}",
        "spark.driver.memory": settings.spark_driver_memory,
        "spark.executor.memory": settings.spark_executor_memory,
        "spark.executor.cores": str(settings.spark_executor_cores),
        "spark.cores.max": str(settings.spark_cores_max),
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.adaptive.enabled": "true",
        "spark.sql.adaptive.coalescePartitions.enabled": "true",
        "spark.sql.shuffle.partitions": str(settings.spark_shuffle_partitions),
        "spark.sql.sources.partitionOverwriteMode": "dynamic",
        "spark.sql.parquet.compression.codec": "snappy",
        "spark.ui.enabled": str(settings.spark_ui_enabled).lower(),
        # The UI's kill links stop jobs and stages of a running application: off by default.
        "spark.ui.killEnabled": "false",
        "spark.ui.showConsoleProgress": "false",
        # Executor logs on the workers roll at 16 MB, five files kept (the workers also delete
        # finished applications' folders: scripts/spark-node.sh).
        "spark.executor.logs.rolling.strategy": "size",
        "spark.executor.logs.rolling.maxSize": str(16 * 1024 * 1024),
        "spark.executor.logs.rolling.maxRetainedFiles": "5",
        "spark.driver.host": settings.spark_driver_host,
        "spark.driver.bindAddress": settings.spark_driver_bind_address,
        # Executors import nothing from the project today (no Python UDFs), but keep the code
        # importable there: the same path on every node (native stack and containers alike).
        "spark.pyspark.python": os.environ.get("PYSPARK_PYTHON", sys.executable),
        "spark.executorEnv.PYTHONPATH": str(PROJECT_ROOT),
    }
    if settings.spark_event_log_enabled:
        # Spark refuses to start when the folder is missing; rolling keeps each file bounded.
        settings.event_log_dir.mkdir(parents=True, exist_ok=True)
        conf.update({
            "spark.eventLog.enabled": "true",
            "spark.eventLog.dir": settings.event_log_dir.resolve().as_uri(),
            "spark.eventLog.rolling.enabled": "true",
            "spark.eventLog.rolling.maxFileSize": "16m",
        })
    if streaming:
        conf.update(
            {
                "spark.sql.streaming.stateStore.providerClass": (
                    "org.apache.spark.sql.execution.streaming.state.RocksDBStateStoreProvider"
                ),
                "spark.sql.streaming.stateStore.rocksdb.changelogCheckpointing.enabled": "true",
                "spark.sql.streaming.metricsEnabled": "true",
                # Adaptive execution does not apply to stateful streaming; the state store has
                # as many partitions as shuffle partitions, fixed at the first checkpoint.
                "spark.sql.streaming.noDataMicroBatches.enabled": "true",
            }
        )
    if settings.uses_object_store:
        conf.update(s3_conf(settings))
    # On the class path of the driver and the executors, not in spark.jars: nothing is copied to
    # each executor per application, the JVMs can map the classes from a CDS archive (only the
    # class path's classes can be archived), and Hadoop finds S3AFileSystem (its own class loader
    # does not see spark.jars: "not found" under spark-submit). The jars are at the same path on
    # every node (the project folder, or /processing in the image).
    conf["spark.driver.extraClassPath"] = conf["spark.executor.extraClassPath"] = ":".join(class_path(settings))
    conf.update(cds_options(settings))
    if streaming and settings.spark_driver_c1_only:
        driver = "spark.driver.extraJavaOptions"
        conf[driver] = f"{conf.get(driver, '')} -XX:TieredStopAtLevel=1".strip()
    conf.update(settings.spark_extra_conf)
    return conf


def local_ip_env(env, settings: Settings | None = None):
    """SPARK_LOCAL_IP for a driver JVM: Spark binds its UI (kill links and all) to every
    interface unless it is set, whatever spark.driver.bindAddress says. Default: the bind address."""
    bind = settings.spark_driver_bind_address if settings else env.get("SPARK_DRIVER_BIND_ADDRESS", "127.0.0.1")
    env.setdefault("SPARK_LOCAL_IP", bind)
    return env


class SparkHomeMismatchError(RuntimeError):
    """SPARK_HOME points at a Spark other than the pinned pyspark's."""


def spark_version(home: Path) -> str | None:
    """The Spark version of a distribution, from its spark-core jar's name."""
    jar = next(iter(sorted((home / "jars").glob("spark-core_*-*.jar"))), None)
    return jar.stem.rsplit("-", 1)[1] if jar else None


def spark_home() -> Path:
    """The Spark distribution inside the pinned pyspark package (found without importing it).

    A SPARK_HOME set in the environment would win over it for spark-submit, and a Spark of
    another version there fails late and obscurely (the Kafka connector and the Python side are
    built for the pinned one): it is used only when its version is the pinned one."""
    spec = importlib.util.find_spec("pyspark")
    if spec is None or spec.origin is None:
        raise FileNotFoundError("pyspark is not installed; run 'make setup' first")
    pinned = Path(spec.origin).parent
    other = os.environ.get("SPARK_HOME")
    if other and Path(other).resolve() != pinned.resolve():
        want, got = importlib.metadata.version("pyspark"), spark_version(Path(other))
        if got != want:
            raise SparkHomeMismatchError(f"SPARK_HOME={other} is Spark {got or 'unknown'}, but the project pins "
                                         f"pyspark {want}: unset SPARK_HOME (the pinned one is used) or point it "
                                         f"at a Spark {want}")
        return Path(other)
    return pinned


def spark_submit_env(base: dict[str, str] | None = None, settings: Settings | None = None) -> dict[str, str]:
    """Environment for a `spark-submit` child: the venv's Python, the project on the path, and
    the driver bound to 127.0.0.1 unless configured otherwise."""
    env = local_ip_env(dict(os.environ if base is None else base), settings)
    env["SPARK_HOME"] = str(spark_home())
    env.setdefault("PYSPARK_PYTHON", sys.executable)
    env.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    path = env.get("PYTHONPATH", "")
    if str(PROJECT_ROOT) not in path.split(os.pathsep):
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PROJECT_ROOT), path) if p)
    return env


def secrets_file(secrets: dict[str, str], folder: Path) -> Path:
    """A Spark properties file with `secrets`, readable only by its owner (0600), named by a hash
    of its content so that concurrent launches never write the same file differently."""
    text = "".join(f"{k} {v}\n" for k, v in sorted(secrets.items()))
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = folder / f"spark-{hashlib.sha256(text.encode()).hexdigest()[:16]}.properties"
    if not path.exists():
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        tmp.replace(path)
    return path


def spark_submit_command(script: Path | str, args: Sequence[str] = (), *, master: str,
                         settings: Settings | None = None, conf: dict[str, str] | None = None,
                         streaming: bool = True) -> list[str]:
    """The `spark-submit` command line for a job script on `master`.

    Settings that must be known before the driver JVM starts (connector jars on the class path,
    driver memory) go on the command line; the session builder cannot change them any more.
    Secret-looking settings (password, secret, token, key...) never do: anyone on the host can
    read a command line (`ps`). They go in a properties file only the owner can read.
    """
    settings = settings or get_settings()
    base = {**spark_conf(Path(script).stem, settings, streaming=streaming), **(conf or {})}
    base.pop("spark.app.name")
    jars = base.pop("spark.jars", "")
    cmd = [str(spark_home() / "bin" / "spark-submit"), "--master", master,
           "--driver-memory", base.pop("spark.driver.memory"), *(["--jars", jars] if jars else [])]
    secrets = {k: v for k, v in base.items() if is_secret_key(k)}
    if secrets:
        cmd += ["--properties-file", str(secrets_file(secrets, settings.state_root / "secrets"))]
    for key, value in base.items():
        if key not in secrets:
            cmd += ["--conf", f"{key}={value}"]
    return [*cmd, str(script), *args]
