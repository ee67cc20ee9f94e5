"""Usage: python -m tools.cds [--force]

Records the class-data-sharing (CDS) archives that the jobs' driver and executor JVMs start from
(settings SPARK_CDS_ENABLED, SPARK_CDS_DIR). A JVM that maps its classes from an archive skips
loading and verifying them from the jars: the largest share of a job's start-up on this stack
(BENCHMARKS.md, start-up). `make stack-up` runs this once; the archives are kept until the
class path, Spark or Java changes (their names carry a key of those). Each archive has a list of
the files it was recorded from beside it (`<archive>.files.json`); archives that a changed file
has made useless for good are deleted when the stack starts (about 100 MB each).

The training is one real run of event_aggregation on the cluster over a few hundred generated
records (a few malformed) on topics of its own, in a temporary folder: once its query has
committed a batch with rows and its quarantine follower has written the malformed ones (the read,
validation, state store, file sink and quarantine paths are then loaded), `jcmd VM.cds
dynamic_dump` writes the driver's and the executor's archive under temporary names, renamed when
complete, so a job never maps a half-written archive.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from configs.spark_config import PROJECT_ROOT, TOPICS, load_settings, settings_for_env
from utils.launch import cds_archives, cds_files, java_binary, spark_submit_command, spark_submit_env, stamp

TRAINING_APP_EVENTS = 400
# Some malformed records, so that the quarantine follower's reread and write run in the training.
TRAINING_MALFORMED_RATE = "0.05"
# A system property that tells the training's driver and executor JVMs apart in `ps`.
ROLE_PROPERTY = "platform.cds.role"


def missing(settings) -> list[Path]:
    return [p for p in cds_archives(settings).values() if not p.is_file()]


def _files_list(archive: Path) -> Path:
    return archive.with_name(archive.name + ".files.json")


def note_files(settings) -> None:
    """Write, beside each current archive that lacks it, the files it was recorded from."""
    for path in cds_archives(settings).values():
        if path.is_file() and not _files_list(path).is_file():
            _files_list(path).write_text(json.dumps(cds_files(settings), indent=0))


def prune(settings) -> list[Path]:
    """Delete the archives no JVM can use any more: one of the files it was recorded from has
    changed or is gone (or it predates these lists), and the half-written ones of a recording
    that died. Archives of another class path that still fits its files (S3A) are kept."""
    current = set(cds_archives(settings).values())
    removed = []
    for path in sorted(settings.spark_cds_dir.glob("*.jsa")):
        listed = _files_list(path)
        try:
            files = json.loads(listed.read_text())
        except (OSError, ValueError):
            files = None
        if path in current or (files and all(stamp(Path(f)) == s for f, s in files.items())):
            continue
        path.unlink(missing_ok=True)
        listed.unlink(missing_ok=True)
        removed.append(path)
    for path in settings.spark_cds_dir.glob("*.partial"):
        pid = path.suffixes[-2].lstrip(".")
        if not (pid.isdigit() and psutil.pid_exists(int(pid))):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def trained(log_lines: list[str]) -> bool:
    """The training job's log shows a committed batch with rows and a quarantine batch written:
    every class of the read, validation, state store, file sink and quarantine paths is loaded."""
    records = [json.loads(line) for line in log_lines if line.startswith("{")]
    return (any(r.get("message") == "batch progress" and r.get("input_rows") for r in records)
            and any(r.get("message") == "quarantine batch" and r.get("invalid_records") for r in records))


def _wait_for_batches(log: Path, job: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if job.poll() is not None:
            raise RuntimeError(f"CDS training job exited with {job.returncode} before its first batches")
        if trained(log.read_text().splitlines() if log.exists() else []):
            return
        time.sleep(1)
    raise RuntimeError(f"CDS training job did not both commit a batch with rows and quarantine its malformed "
                       f"records within {timeout:.0f} s")


def _dump(role: str, path: Path) -> None:
    """jcmd VM.cds dynamic_dump on the training's JVM of `role` (started with RecordDynamicDumpInfo)."""
    marker = f"-D{ROLE_PROPERTY}={role}"
    pids = [p.pid for p in psutil.process_iter(["cmdline"]) if marker in (p.info["cmdline"] or ())]
    if len(pids) != 1:
        raise RuntimeError(f"CDS training: expected one {role} JVM, found {len(pids)}")
    jcmd = java_binary().parent / "jcmd"
    done = subprocess.run([str(jcmd), str(pids[0]), "VM.cds", "dynamic_dump", str(path)],
                          capture_output=True, text=True, timeout=300, check=False)
    if done.returncode != 0 or not path.is_file():
        raise RuntimeError(f"CDS training: jcmd dump of the {role} failed: {done.stdout[-1000:]}{done.stderr[-1000:]}")


def record(settings, master: str, timeout: float = 300.0) -> dict[str, Path]:
    """Run the training and put both archives in place; raises RuntimeError when it fails."""
    from kafka import KafkaAdminClient

    from tools import stack

    archives = cds_archives(settings)
    settings.spark_cds_dir.mkdir(parents=True, exist_ok=True)
    partial = {role: path.with_suffix(f".{os.getpid()}.partial") for role, path in archives.items()}
    topics = {t: f"_cds_training_{os.getpid()}_{t}" for t in TOPICS}
    stack.ensure_topics(settings.kafka_bootstrap_servers, 1, names=list(topics.values()))
    try:
        with tempfile.TemporaryDirectory(prefix="cds-training-") as tmp:
            root = Path(tmp)
            env = spark_submit_env({
                **os.environ, "OUTPUT_ROOT": str(root / "outputs"), "CHECKPOINT_ROOT": str(root / "checkpoints"),
                "STATE_ROOT": str(root / "state"), "LOG_DIR": str(root / "logs"),
                "USER_MASTER_PATH": str(root / "users"), "SPARK_EVENT_LOG_ENABLED": "false",
                "SPARK_CDS_ENABLED": "false", **{f"TOPIC_{t.upper()}": name for t, name in topics.items()}})
            subprocess.run([sys.executable, "-m", "tools.generate_events", "--app-events", str(TRAINING_APP_EVENTS),
                            "--malformed-rate", TRAINING_MALFORMED_RATE,
                            "--user-master-path", str(root / "users")],
                           cwd=PROJECT_ROOT, env=env, check=True, capture_output=True, timeout=timeout)
            conf = {f"spark.{role}.extraJavaOptions": f"-XX:+RecordDynamicDumpInfo -D{ROLE_PROPERTY}={role}"
                    for role in partial}
            cmd = spark_submit_command(PROJECT_ROOT / "jobs" / "streaming" / "event_aggregation.py", [],
                                       master=master, settings=settings_for_env(env), conf=conf)
            with (root / "job.out").open("w") as out:
                job = subprocess.Popen(cmd, cwd=PROJECT_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                       start_new_session=True)
                try:
                    _wait_for_batches(root / "logs" / "event_aggregation.log", job, timeout)
                    # Dumped from the running JVMs (jcmd), not at their exit: an executor is stopped
                    # by its worker with SIGKILL 10 s after SIGTERM, which can cut an exit-time dump.
                    for role, path in partial.items():
                        _dump(role, path)
                finally:
                    os.killpg(job.pid, signal.SIGTERM)
                    job.wait(timeout=120)
        for role, path in partial.items():
            if not path.is_file():
                raise RuntimeError(f"CDS training wrote no {role} archive ({path})")
            _files_list(archives[role]).unlink(missing_ok=True)
            path.replace(archives[role])
        note_files(settings)
        return archives
    finally:
        for path in partial.values():
            path.unlink(missing_ok=True)
        admin = KafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers, client_id="cds")
        try:
            admin.delete_topics(list(topics.values()))
        finally:
            admin.close()


def ensure(settings=None, master: str | None = None) -> str:
    """Record the archives unless they exist (or CDS is off); says what it did."""
    settings = settings or load_settings()
    if not settings.spark_cds_enabled:
        return "off (SPARK_CDS_ENABLED=false)"
    note_files(settings)
    removed = prune(settings)
    pruned = f"; {len(removed)} unusable archive files deleted" if removed else ""
    if not missing(settings):
        return f"archives in place ({settings.spark_cds_dir}){pruned}"
    started = time.monotonic()
    try:
        record(settings, master or settings.spark_master_url)
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        # An optimisation only: a machine without jcmd (a bare JRE) or a failed training run must
        # not stop the stack; the jobs then start as without archives.
        return f"not recorded, jobs start without archives ({str(exc)[:300]}){pruned}"
    return f"archives recorded in {time.monotonic() - started:.0f} s ({settings.spark_cds_dir}){pruned}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.cds", description=__doc__.split("\n\n")[1])
    parser.add_argument("--force", action="store_true", help="record again even if the archives exist")
    args = parser.parse_args(argv)
    settings = load_settings()
    if args.force:
        for path in cds_archives(settings).values():
            path.unlink(missing_ok=True)
    print(f"cds: {ensure(settings)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
