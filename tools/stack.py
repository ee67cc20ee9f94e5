"""Native local stack: a Kafka broker (KRaft), a Spark standalone master with two workers and
the History Server, and with --s3 (or S3=1) an S3-compatible server (moto's server mode).

Usage: python -m tools.stack {up|down|status|topics} [--no-kafka] [--no-spark] [--s3]

Each component is a real process started from the project's scripts, in its own process group,
with its pid in `.stack/run/<name>.pid` and its output in `logs/stack/<name>.log`. `down` stops
exactly the processes named by those pidfiles (and their groups: a worker's executors), and is
safe to run twice. Ports, memory and cores come from the environment (see README).
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import requests

from configs.spark_config import PROJECT_ROOT, TOPICS, load_settings
from utils import files

STACK_DIR = Path(os.environ.get("STACK_DIR", PROJECT_ROOT / ".stack"))
RUN_DIR = STACK_DIR / "run"
LOG_DIR = Path(os.environ.get("STACK_LOG_DIR", PROJECT_ROOT / "logs" / "stack"))
HOST = "127.0.0.1"


class StackError(RuntimeError):
    """The stack could not be brought to the requested state; the message says why."""


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, str(default))
    try:
        return int(raw)
    except ValueError:
        raise StackError(f"{name} must be an integer, got {raw!r}") from None


@dataclass(frozen=True)
class Component:
    name: str
    command: tuple[str, ...]
    ports: dict[str, int]
    env: dict[str, str] = field(default_factory=dict)
    # Substrings of the process command line that prove a pid is still ours: the start script
    # (while the shell prepares the command) or the JVM main class (after it has exec'd).
    markers: tuple[str, ...] = ()

    @property
    def pidfile(self) -> Path:
        return RUN_DIR / f"{self.name}.pid"

    @property
    def logfile(self) -> Path:
        return LOG_DIR / f"{self.name}.log"


def s3_wanted() -> bool:
    """S3=1 in the environment, or an S3 server this stack started earlier and still runs."""
    return os.environ.get("S3", "") not in ("", "0") or (RUN_DIR / "s3.pid").exists()


def s3_component() -> Component:
    return Component(
        "s3", (sys.executable, "-m", "moto.server", "-H", HOST, "-p", str(_env_int("S3_PORT", 9000))),
        {"S3_PORT": _env_int("S3_PORT", 9000)}, markers=("moto.server",))


def components(with_s3: bool | None = None) -> list[Component]:
    kafka_port = _env_int("KAFKA_PORT", 9092)
    controller_port = _env_int("KAFKA_CONTROLLER_PORT", 9093)
    master_port = _env_int("SPARK_MASTER_PORT", 7077)
    master_ui = _env_int("SPARK_MASTER_WEBUI_PORT", 8080)
    python = sys.executable
    base_env = {"PYTHON": python, "SPARK_MASTER_HOST": HOST}
    comps = [
        Component(
            "kafka",
            ("bash", str(PROJECT_ROOT / "scripts" / "kafka-broker.sh")),
            {"KAFKA_PORT": kafka_port, "KAFKA_CONTROLLER_PORT": controller_port},
            {"KAFKA_HOST": HOST, "KAFKA_DATA_DIR": str(STACK_DIR / "kafka" / "data"),
             "KAFKA_CONFIG": str(STACK_DIR / "kafka" / "server.properties")},
            markers=("kafka-broker.sh", "kafka.Kafka"),
        ),
        Component(
            "spark-master",
            ("bash", str(PROJECT_ROOT / "scripts" / "spark-node.sh"), "master"),
            {"SPARK_MASTER_PORT": master_port, "SPARK_MASTER_WEBUI_PORT": master_ui},
            base_env,
            markers=("spark-node.sh", "org.apache.spark.deploy.master.Master"),
        ),
    ]
    comps.append(
        Component(
            "spark-history",
            ("bash", str(PROJECT_ROOT / "scripts" / "spark-node.sh"), "history"),
            {"SPARK_HISTORY_UI_PORT": _env_int("SPARK_HISTORY_UI_PORT", 18080)},
            {**base_env, "SPARK_HISTORY_LOG_DIR": str(load_settings().event_log_dir)},
            markers=("spark-node.sh", "org.apache.spark.deploy.history.HistoryServer"),
        ))
    for n in (1, 2):
        ui_port = _env_int(f"SPARK_WORKER{n}_WEBUI_PORT", master_ui + n)
        comps.append(
            Component(
                f"spark-worker-{n}",
                ("bash", str(PROJECT_ROOT / "scripts" / "spark-node.sh"), "worker", str(n)),
                {f"SPARK_WORKER{n}_WEBUI_PORT": ui_port},
                {**base_env, "SPARK_MASTER_PORT": str(master_port),
                 "SPARK_WORKER_WEBUI_PORT": str(ui_port), "SPARK_WORKER_HOST": HOST,
                 "SPARK_WORKER_DIR": str(STACK_DIR / "spark" / f"worker-{n}")},
                markers=("spark-node.sh", "org.apache.spark.deploy.worker.Worker"),
            )
        )
    if with_s3 is None:
        with_s3 = s3_wanted()
    if with_s3:
        comps.append(s3_component())
    return comps


def read_pid(comp: Component) -> int | None:
    """The pid of a running component we started, or None (stale pidfiles are removed)."""
    try:
        pid = int(comp.pidfile.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    try:
        proc = psutil.Process(pid)
        cmdline = " ".join(proc.cmdline())
        alive = proc.status() != psutil.STATUS_ZOMBIE and any(m in cmdline for m in comp.markers)
    except psutil.Error:
        alive = False
    if not alive:
        comp.pidfile.unlink(missing_ok=True)
        return None
    return pid


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return True
    return False


def start(comp: Component) -> int:
    for var, port in comp.ports.items():
        if port_in_use(port):
            raise StackError(
                f"cannot start {comp.name}: port {port} ({var}) on {HOST} is already in use; "
                f"free it or set {var} to another port"
            )
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **comp.env, **{k: str(v) for k, v in comp.ports.items()}}
    with comp.logfile.open("ab") as log:
        proc = subprocess.Popen(
            comp.command, cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )
    comp.pidfile.write_text(f"{proc.pid}\n")
    return proc.pid


def stop(comp: Component, timeout: float = 30.0) -> bool:
    """Stop one component and its process group; True if something was stopped."""
    pid = read_pid(comp)
    if pid is None:
        return False
    group = _group_members(pid)
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    _gone, alive = psutil.wait_procs(group, timeout=timeout)
    for proc in alive:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=5)
    comp.pidfile.unlink(missing_ok=True)
    return True


def _group_members(pgid: int) -> list[psutil.Process]:
    members = []
    for proc in psutil.process_iter(["pid"]):
        try:
            if os.getpgid(proc.pid) == pgid:
                members.append(proc)
        except (ProcessLookupError, PermissionError):
            continue
    return members


def kafka_ready(bootstrap: str) -> bool:
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    try:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=3000,
                                 client_id="stack-health")
    except (KafkaError, OSError, ValueError):
        return False
    try:
        admin.describe_cluster()
        return True
    except (KafkaError, OSError):
        return False
    finally:
        admin.close()


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=3).ok
    except requests.RequestException:
        return False


def master_state(ui_port: int) -> dict | None:
    try:
        return requests.get(f"http://{HOST}:{ui_port}/json/", timeout=3).json()
    except (requests.RequestException, ValueError):
        return None


def alive_workers(state: dict | None) -> int:
    if not state:
        return 0
    return sum(1 for w in state.get("workers", []) if w.get("state") == "ALIVE")


def _wait(what: str, check, comp: Component, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        if read_pid(comp) is None:
            raise StackError(f"{comp.name} exited during start-up; see {comp.logfile}")
        time.sleep(1)
    raise StackError(f"{what} not healthy after {timeout:.0f}s; see {comp.logfile}")


def ensure_topics(bootstrap: str, partitions: int, names: list[str] | None = None) -> list[str]:
    """Create the missing topics among `names` (default: the four contract topics); return the new ones."""
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic
    from kafka.errors import TopicAlreadyExistsError

    settings = load_settings()
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="stack-topics")
    try:
        existing = set(admin.list_topics())
        wanted = names or [settings.topics[t] for t in TOPICS]
        new = [NewTopic(t, num_partitions=partitions, replication_factor=1)
               for t in wanted if t not in existing]
        if new:
            try:
                admin.create_topics(new)
            except TopicAlreadyExistsError:
                pass
        return [t.name for t in new]
    finally:
        admin.close()


def _wait_for_broker(bootstrap: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not kafka_ready(bootstrap):
        if time.monotonic() > deadline:
            raise StackError(f"Kafka broker at {bootstrap} not reachable after {timeout:.0f}s")
        time.sleep(2)


def up(with_kafka: bool = True, with_spark: bool = True, timeout: float = 120.0, with_s3: bool | None = None) -> None:
    comps = {c.name: c for c in components(with_s3)}
    settings = load_settings()
    master_ui = comps["spark-master"].ports["SPARK_MASTER_WEBUI_PORT"]
    wanted = ([comps["kafka"]] if with_kafka else []) + (
        [comps["spark-master"], comps["spark-worker-1"], comps["spark-worker-2"], comps["spark-history"]]
        if with_spark else []) + ([comps["s3"]] if "s3" in comps else [])
    for comp in wanted:
        if read_pid(comp) is None:
            pid = start(comp)
            print(f"stack: started {comp.name} (pid {pid}, log {comp.logfile})")
            if comp.name == "spark-master":
                _wait("Spark master", lambda: master_state(master_ui) is not None, comp, timeout)
        else:
            print(f"stack: {comp.name} already running")
    if with_kafka:
        bootstrap = f"{HOST}:{comps['kafka'].ports['KAFKA_PORT']}"
        _wait(f"Kafka broker at {bootstrap}", lambda: kafka_ready(bootstrap), comps["kafka"],
              timeout)
        created = ensure_topics(bootstrap, settings.kafka_topic_partitions)
        print(f"stack: kafka ready at {bootstrap}; topics created: {created or 'none (exist)'}")
    if with_spark:
        _wait("two ALIVE Spark workers",
              lambda: alive_workers(master_state(master_ui)) >= 2, comps["spark-worker-2"],
              timeout)
        print(f"stack: spark master ready at spark://{HOST}:"
              f"{comps['spark-master'].ports['SPARK_MASTER_PORT']} (UI http://{HOST}:{master_ui})"
              " with 2 ALIVE workers")
        history = f"http://{HOST}:{comps['spark-history'].ports['SPARK_HISTORY_UI_PORT']}"
        _wait("Spark History Server", lambda: _answers(f"{history}/api/v1/applications"), comps["spark-history"],
              timeout)
        print(f"stack: spark history server at {history} (event logs {load_settings().event_log_dir})")
    if with_kafka and with_spark:
        from tools import cds  # imports tools.stack

        master = f"spark://{HOST}:{comps['spark-master'].ports['SPARK_MASTER_PORT']}"
        print("stack: class-data sharing:", cds.ensure(settings, master), flush=True)
    if "s3" in comps:
        endpoint = f"http://{HOST}:{comps['s3'].ports['S3_PORT']}"
        _wait(f"S3 server at {endpoint}", lambda: _answers(f"{endpoint}/moto-api/"), comps["s3"], timeout)
        print(f"stack: S3-compatible server (moto, in memory) at {endpoint}: set S3_ENDPOINT_URL={endpoint}")


def stop_orchestrator(state_root: Path | None = None, timeout: float = 150.0) -> bool:
    """Stop the orchestrator that holds the state folder's lock (SIGTERM: it stops its jobs
    gracefully), then any child it recorded that is still alive (after a SIGKILLed orchestrator).
    True if something was stopped."""
    from supervisor import children
    from supervisor.process import driver_process

    state_dir = Path(state_root or load_settings().state_root) / "orchestrator"
    stopped = False
    pid = children.holder(state_dir / "orchestrator.lock")
    if pid is not None:
        try:
            proc = psutil.Process(pid)
            proc.terminate()
            proc.wait(timeout=timeout)
        except psutil.TimeoutExpired:
            proc.kill()
        except psutil.NoSuchProcess:
            pass
        stopped = True
    for rec in children.load(state_dir / "children.json"):
        if children.is_alive(rec) or children.group_alive(rec.pgid):
            children.stop_group(rec, 60.0, lambda p: os.kill(driver_process(p), signal.SIGTERM))
            stopped = True
    return stopped


def down() -> None:
    # The orchestrator and its jobs first, so their Spark applications end before the cluster goes.
    if stop_orchestrator():
        print("stack: orchestrator and its jobs stopped")
    # Workers before the master, the master before the broker: each sees a clean goodbye.
    for comp in reversed(components(with_s3=True)):
        print(f"stack: {comp.name} {'stopped' if stop(comp) else 'not running'}")


def status() -> bool:
    comps = components()
    all_up = True
    for comp in comps:
        pid = read_pid(comp)
        all_up &= pid is not None
        ports = ", ".join(f"{k}={v}" for k, v in comp.ports.items())
        print(f"{comp.name:15} {'RUNNING pid ' + str(pid) if pid else 'STOPPED':20} {ports}  "
              f"log {comp.logfile}")
    state = master_state(comps[1].ports["SPARK_MASTER_WEBUI_PORT"])
    if state is not None:
        print(f"spark master: status {state.get('status')}, "
              f"{alive_workers(state)} ALIVE workers, {len(state.get('activeapps', []))} apps")
    return all_up


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.stack", description=__doc__.split("\n")[0])
    parser.add_argument("action", choices=["up", "down", "status", "topics", "bucket"],
                        help="topics: only create the contract topics on KAFKA_BOOTSTRAP_SERVERS; "
                             "bucket: only create the bucket(s) of s3a:// OUTPUT_ROOT, CHECKPOINT_ROOT, "
                             "USER_MASTER_PATH")
    parser.add_argument("--no-kafka", action="store_true", help="leave the broker out")
    parser.add_argument("--no-spark", action="store_true", help="leave the Spark cluster out")
    parser.add_argument("--s3", action="store_true", help="also an S3-compatible server (or S3=1)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for health")
    args = parser.parse_args(argv)
    try:
        if args.action == "up":
            up(not args.no_kafka, not args.no_spark, args.timeout, with_s3=True if args.s3 else None)
        elif args.action == "topics":
            settings = load_settings()
            _wait_for_broker(settings.kafka_bootstrap_servers, args.timeout)
            created = ensure_topics(settings.kafka_bootstrap_servers, settings.kafka_topic_partitions)
            print(f"stack: topics created: {created or 'none (exist)'}")
        elif args.action == "bucket":
            settings = load_settings()
            made = {files.ensure_bucket(loc, settings) for loc in (settings.output_root, settings.checkpoint_root,
                                                                   settings.user_master_path)} - {None}
            print(f"stack: buckets ready: {', '.join(sorted(made)) or 'none (all locations are local)'}")
        elif args.action == "down":
            down()
        else:
            return 0 if status() else 1
    except StackError as exc:
        print(f"stack: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
