"""Fault tolerance, proven on the real stack (Kafka broker, Spark master and two workers).

Each scenario produces generated events with ground truth, injects one fault, and compares the
final outputs with the independent computation in tests/oracle.py: nothing lost, nothing
doubled. Figures go to logs/chaos/ (see conftest.py) and from there to RELIABILITY.md.

    make test-chaos
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import psutil
import pytest
from kafka import KafkaAdminClient, TopicPartition

from benchmarks.startup import STANDBY  # the registry edit that gives event_aggregation a warm standby
from supervisor.scheduler import Ledger
from tests import oracle
from tests.integration.helpers import (
    JOB_ENV,
    STREAMING,
    Orchestrator,
    Run,
    create_topics,
    four_outputs_figures,
    merge_truth,
    read_progress,
    run_jobs,
    start_generator,
    wait_until_drained,
    window_figures,
)
from tools.world import MALFORMED_KINDS, iso

pytestmark = pytest.mark.chaos

JOB, DATASET = "event_aggregation", "events_aggregated_realtime"
PORT = 18399
BOOTSTRAP = "127.0.0.1:9092"
MASTER_UI = 8080
# Quick restarts and a short "stable" time so that five kills in a row are five restarts.
FAST = {"start_seconds: 30": "start_seconds: 10", "backoff_initial_seconds: 5 ": "backoff_initial_seconds: 2 ",
        "stable_seconds: 300": "stable_seconds: 20"}
ENV = {"KAFKA_MAX_OFFSETS_PER_TRIGGER": "1000", "TRIGGER_INTERVAL": "2 seconds"}
LIVE = ("--users", "200", "--duplicate-rate", "0.02", "--malformed-rate", "0.01")


def new_run(tmp_path: Path, name: str) -> Run:
    return Run(tmp_path / name, f"{name[:6]}{uuid.uuid4().hex[:6]}_")


def batch_id(run: Run, job: str = JOB, query: str = DATASET) -> int:
    """The last committed micro-batch of the query (-1 before the first)."""
    batch = read_progress(run, job).get(query, {}).get("batch_id")
    return -1 if batch is None else batch


def job_status(status: dict, job: str = JOB) -> dict:
    return status["jobs"][job]


def exit_codes(run: Run, job: str) -> list[int]:
    """The exit codes a job logged itself, run after run (a SIGKILLed run logs none)."""
    return [r["exit_code"] for r in run.log_records(job) if r.get("message") == "exiting"]


def final_watermark(truth: Path) -> str:
    """The watermark event_aggregation reaches once it has read everything (minus a second)."""
    latest = oracle.max_event_time(truth, "app_events", "event_timestamp")
    return iso(latest - timedelta(minutes=2, seconds=1))


def finish_generator(gen: subprocess.Popen, timeout: float = 900) -> int:
    try:
        return gen.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(gen.pid, signal.SIGKILL)
        return -9


def stop_generator(gen: subprocess.Popen) -> None:
    """End live input once a scenario's faults are over instead of waiting out the generator's
    count (minutes of CI): it stops after the record in hand, and its truth holds exactly the
    records it produced (tools/generate_events.py)."""
    gen.send_signal(signal.SIGTERM)
    assert finish_generator(gen, timeout=120) == 0


def app_records(truth: Path) -> int:
    return sum(1 for _ in (truth / "app_events.jsonl").open())


@dataclass
class Live:
    """A scenario on live input: the generator producing 100 records/s (up to three minutes for
    10,000 app events, so input keeps arriving through the fault; drain() ends it) and the
    orchestrator."""

    run: Run
    truth: Path
    orch: Orchestrator
    gen: subprocess.Popen

    def drain(self, timeout: float = 600) -> None:
        """End the live input and wait for event_aggregation to have read everything."""
        stop_generator(self.gen)
        wait_until_drained(self.run, JOB, DATASET, min_watermark=final_watermark(self.truth), timeout=timeout)


@contextmanager
def live(tmp_path: Path, name: str, seed: int, start: str, *orchestrator_args: str,
         app_events: int = 10000, env: dict[str, str] | None = None,
         registry_edits: dict[str, str] | None = None) -> Iterator[Live]:
    run = new_run(tmp_path, name)
    truth = run.root / "truth"
    gen = start_generator(run, truth, "--app-events", str(app_events), "--seed", str(seed), "--start", start,
                          *LIVE, "--rate", "100")
    orch = Orchestrator(run, PORT, *orchestrator_args, env={**ENV, **(env or {})},
                        registry_edits={**FAST, **(registry_edits or {})}).start()
    try:
        # A readiness gate, not a speed check: with four jobs starting at once on two cores, the
        # first micro-batch of a stateful query has taken over three minutes (CI, 2026-11-26).
        orch.wait_for(lambda s: batch_id(run) >= 2, 600, "first micro-batches")
        yield Live(run, truth, orch, gen)
    finally:
        orch.stop()
        finish_generator(gen, timeout=1)


def record(rows: dict, scenario: str, done: str, figures: dict, recovery: str, truth: Path) -> None:
    rows[scenario] = {
        "scenario": scenario, "what was done": done,
        "records in": f"{app_records(truth):,} app_events records = {figures['events_expected']:,} distinct "
                      "valid events in closed windows",
        "records out": f"{figures['events_out']:,} events in {figures['windows_out']:,} windows",
        "lost": figures["lost"], "duplicated": figures["duplicated"], "recovery (s)": recovery,
        "result": "exact" if figures["exact"] else "MISMATCH",
    }


# -- 1 and 6: driver killed, then output unwritable -----------------------------------------------


def test_driver_killed_three_times_then_output_unwritable(stack, tmp_path, reliability):
    """One live run of event_aggregation under the orchestrator with a warm standby, two faults in
    turn: its driver killed three times (twice with the standby ready, which takes over; then
    without waiting for the next one), then its output folder made unwritable until it fails
    twice (the standby, when ready, takes the first failure; the second starts cold)."""
    reliability.start("1 driver killed")
    reliability.start("6 unwritable output")
    recoveries = []
    # A secret-looking setting (harmless here): it must reach no command line of any child.
    secret = "never-on-a-command-line-42"
    # Up to 22,000 app events at 100 records/s (about 5.5 minutes, ended once both faults are over):
    # input keeps arriving through both faults, also on a slow host.
    standbys = set()
    with live(tmp_path, "killdriver", 31, "2026-11-19T10:00:00Z", "--jobs", JOB, app_events=22000,
              env={"SPARK_EXTRA_CONF": json.dumps({"spark.hadoop.fs.s3a.secret.key": secret})},
              registry_edits=STANDBY) as sc:
        run, truth, orch = sc.run, sc.truth, sc.orch
        tree = psutil.Process(orch.proc.pid).children(recursive=True)
        assert {p.name() for p in tree} >= {"java", "python"}, "the spark-submit JVM and the Python driver"
        for proc in tree:
            with contextlib.suppress(psutil.NoSuchProcess):
                assert secret not in " ".join(proc.cmdline()), proc.cmdline()
        last, paths = -1, []
        for i in range(3):
            status = orch.wait_for(lambda s, last=last, i=i: job_status(s)["state"] == "RUNNING"
                                   and batch_id(run) > last and (i == 2 or job_status(s)["standby"] == "ready"),
                                   300, f"a micro-batch (and a ready standby) before kill {i + 1}")
            standby = job_status(status)["standby_pid"]
            standbys.add(standby)
            # The whole driver: the spark-submit JVM (which hosts the SparkContext's JVM side) and
            # the Python process, as a host or container crash would take them.
            leader = job_status(status)["pid"]
            members = [leader, *(c.pid for c in psutil.Process(leader).children(recursive=True))]
            assert any("java" in psutil.Process(m).name() for m in members), "the driver JVM is in the group"
            os.killpg(leader, signal.SIGKILL)
            killed, last = time.monotonic(), batch_id(run)
            after = orch.wait_for(lambda s, i=i, last=last: job_status(s)["starts"] >= i + 2
                                  and batch_id(run) > last, 300, f"recovery from kill {i + 1}")
            recoveries.append(time.monotonic() - killed)
            paths.append("standby" if job_status(after)["pid"] == standby else "cold")
        killed_status = job_status(orch.status())

        out = run.root / "outputs" / DATASET
        held = out.with_name(DATASET + ".held")
        try:
            # Stable again (the failure count resets after stable_seconds), so that two failed
            # starts are a backoff, not the way to FATAL.
            base = orch.wait_for(lambda s: job_status(s)["consecutive_failures"] == 0, 120, "stable")
            failures, last = job_status(base)["failures"], batch_id(run)
            assert sc.gen.poll() is None, "the generator still produces"
            # Tests run as root here, for whom permissions do not stop a write; a file where the
            # folder was fails the same writes (mkdir/create under the path), the way EACCES would.
            out.rename(held)
            out.write_text("simulated fault: the output folder is not writable\n")
            failed = orch.wait_for(lambda s: job_status(s)["failures"] >= failures + 2, 400, "two failed attempts")
            backoff_states = job_status(failed)
            out.unlink()
            held.rename(out)
            fixed = time.monotonic()
            orch.wait_for(lambda s: batch_id(run) > last and job_status(s)["state"] == "RUNNING", 400,
                          "recovery after the fix")
            recovery = time.monotonic() - fixed
        finally:
            if held.exists():
                out.unlink(missing_ok=True)
                held.rename(out)
        sc.drain()
        # Through three SIGKILLs and two failed starts: each malformed app event once, no more.
        quarantine = quarantine_when_caught_up(run, truth, "app_events")
    errors = [r for r in run.log_records(JOB) if r.get("levelname") == "ERROR"]
    assert any(str(out) in json.dumps(e) for e in errors), "the failure names the output path"
    assert "BACKOFF" in (run.root / "orchestrator.out").read_text()
    figures = window_figures(run, truth)
    record(reliability, "1 driver killed", "SIGKILL to the event_aggregation driver's process group (the "
           "spark-submit JVM and the Python driver) 3x while the generator produced 100 records/s; the "
           f"orchestrator restarted it each time (`standby: true`; taken over by: {', '.join(paths)})", figures,
           "kill -> next committed batch: " + ", ".join(f"{r:.0f}" for r in recoveries), truth)
    record(reliability, "6 unwritable output", "then, in the same run, the output folder replaced by a file "
           f"until 2 failed starts (consecutive failures {backoff_states['consecutive_failures']}, state "
           f"{backoff_states['state']}; the job's error names the path), then restored", figures,
           f"fix -> next committed batch: {recovery:.0f}", truth)
    assert killed_status["restarts"] >= 3, killed_status
    assert paths[:2] == ["standby", "standby"], paths
    assert not any(psutil.pid_exists(p) for p in standbys if p), "the orchestrator's stop stops its standby"
    assert figures["exact"], figures
    assert (Counter(base64.b64decode(v) for v in quarantine.raw_value_base64)
            == oracle.malformed_values(truth, "app_events"))


def quarantine_when_caught_up(run: Run, truth: Path, topic: str, timeout: float = 180) -> pd.DataFrame:
    """_quarantine/<topic>/ once it holds as many records as were malformed, or at the timeout:
    the quarantine follows its job's committed micro-batches by a step."""
    want, deadline = len(oracle.malformed(truth, topic)), time.monotonic() + timeout
    while True:
        df = run.dataset(f"_quarantine/{topic}")
        if (df is not None and len(df) >= want) or time.monotonic() > deadline:
            return df if df is not None else pd.DataFrame({"raw_value_base64": []})
        time.sleep(2)


# -- 2 and 3: worker lost, then broker stopped and killed ------------------------------------------


def alive_worker_ids() -> set[str]:
    state = stack_state()
    return {w["id"] for w in state.get("workers", []) if w.get("state") == "ALIVE"}


def stack_state() -> dict:
    from tools import stack as stack_mod

    return stack_mod.master_state(MASTER_UI) or {}


def component(stack, name: str):
    return next(c for c in stack.components() if c.name == name)


def wait(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(1)
    raise AssertionError(f"{what}: not within {timeout:.0f}s")


def job_executors_on(worker_ui_port: int, app_name: str) -> list[str]:
    """The running executors a worker holds for the application named `app_name`."""
    import requests

    state = requests.get(f"http://127.0.0.1:{worker_ui_port}/json/", timeout=5).json()
    return [f"{e['appid']}/{e['id']}" for e in state.get("executors", []) if e["appdesc"]["name"] == app_name]


def test_worker_lost_then_broker_stopped_and_killed(stack, tmp_path, reliability):
    """One live run of event_aggregation under the orchestrator, three infrastructure faults in
    turn: a Spark worker crashes (and rejoins), the broker stops gracefully, the broker is killed."""
    reliability.start("2 worker lost")
    reliability.start("3 broker stop and kill")
    worker, kafka = component(stack, "spark-worker-2"), component(stack, "kafka")

    def restart_broker() -> float:
        """Start the broker; seconds until the job commits its next micro-batch."""
        last = batch_id(run)  # a batch running at the stop has committed (or failed) by now
        stack.start(kafka)
        restarted = time.monotonic()
        # Recovery is measured on the job, not on a probe client: the job may well reach the
        # broker before an admin client does.
        orch.wait_for(lambda s: batch_id(run) > last, 400, "a micro-batch after the broker came back")
        wait(lambda: stack.kafka_ready(BOOTSTRAP), 120, "broker back")
        return time.monotonic() - restarted

    # Two 1-core executors: the master spreads them over the two workers, so the lost worker
    # certainly held one of the job's executors. Up to 20,000 app events (about 5 minutes of input,
    # ended once the faults are over).
    with live(tmp_path, "infra", 32, "2026-11-19T14:00:00Z", "--jobs", JOB, app_events=20000,
              env={"SPARK_EXECUTOR_CORES": "1", "SPARK_CORES_MAX": "2"}) as sc:
        run, truth, orch = sc.run, sc.truth, sc.orch
        try:
            before = alive_worker_ids()
            assert len(before) == 2
            held = job_executors_on(worker.ports["SPARK_WORKER2_WEBUI_PORT"], f"data-platform-{JOB}")
            assert held, "the worker to be killed runs an executor of the job"
            # A crash, not a shutdown: the worker and its executors (same process group) die at once.
            os.killpg(stack.read_pid(worker), signal.SIGKILL)
            killed, last = time.monotonic(), batch_id(run)
            wait(lambda: len(alive_worker_ids()) == 1, 120, "the master drops the lost worker")
            orch.wait_for(lambda s: batch_id(run) >= last + 3, 300, "progress on the remaining worker")
            carried_on = time.monotonic() - killed
            assert job_status(orch.status())["starts"] == 1, "the job carried on without a restart"
            stack.start(worker)
            restarted = time.monotonic()
            rejoined = wait(lambda: (ids := alive_worker_ids()) and len(ids) == 2 and ids - before, 180,
                            "the worker rejoins")
            rejoin = time.monotonic() - restarted

            assert sc.gen.poll() is None, "the generator still produces"
            stack.stop(kafka)  # graceful: SIGTERM, the broker closes its logs
            time.sleep(15)
            graceful = restart_broker()
            # A crash: SIGKILL to the broker's process group, no flush, no clean shutdown marker;
            # on restart the broker recovers its logs.
            assert sc.gen.poll() is None, "the generator still produces"
            os.killpg(stack.read_pid(kafka), signal.SIGKILL)
            wait(lambda: stack.read_pid(kafka) is None and not stack.port_in_use(kafka.ports["KAFKA_PORT"]), 60,
                 "the killed broker's port free")
            time.sleep(5)
            crashed = restart_broker()
            # The producer rides out both outages (acks=all, retries): the generator exits 0.
            sc.drain()
            restarts = job_status(orch.status())["restarts"]
        finally:
            if stack.read_pid(worker) is None:
                stack.start(worker)
                wait(lambda: len(alive_worker_ids()) == 2, 180, "worker 2 back")
            if stack.read_pid(kafka) is None:
                stack.start(kafka)
                wait(lambda: stack.kafka_ready(BOOTSTRAP), 120, "broker back")
    figures = window_figures(run, truth)
    record(reliability, "2 worker lost", f"SIGKILL to spark-worker-2's process group (worker + executor {held[0]} "
           "of the job's two 1-core executors) mid-stream, restarted after the job had committed 3 more "
           f"batches; new worker {sorted(rejoined)}",
           figures, f"3 batches on one worker after {carried_on:.0f}; rejoined {rejoin:.0f} after restart", truth)
    record(reliability, "3 broker stop and kill", "then, in the same run, the Kafka broker stopped (SIGTERM) for "
           "15 s and started again, later SIGKILLed (no clean shutdown) and started again; job restarts by the "
           f"orchestrator: {restarts}; generator exit 0", figures,
           f"broker start -> next committed batch: {graceful:.0f} after the stop, {crashed:.0f} after the kill", truth)
    assert figures["exact"], figures


# -- 4 -------------------------------------------------------------------------------------------


def test_poison_burst_is_quarantined_and_no_job_stops(stack, tmp_path, reliability):
    reliability.start("4 poison input")
    run = new_run(tmp_path, "poison")
    # 0.28 malformed per valid record: about a fifth of all records (18.3% measured at 0.25).
    summary = run.generate("--app-events", "3000", "--seed", "34", "--start", "2026-11-18T06:00:00Z",
                           "--users", "200", "--malformed-rate", "0.28", "--duplicate-rate", "0.02")
    counts = summary["counts"]
    share = sum(n for k, n in counts.items() if k.endswith(":malformed")) / summary["records"]
    started = time.monotonic()
    codes = run_jobs(run, STREAMING, "--available-now", extra_env=JOB_ENV)
    took = time.monotonic() - started
    assert codes == dict.fromkeys(STREAMING, 0), codes
    kinds = Counter(r["note"] for t in ("app_events", "clickstream", "cdc_changes", "external_data")
                    for r in oracle.malformed(run.truth, t))
    assert set(kinds) == set(MALFORMED_KINDS)
    quarantined = 0
    for topic in ("app_events", "clickstream", "cdc_changes", "external_data"):
        df = run.dataset(f"_quarantine/{topic}")
        assert len(df) == len(oracle.malformed(run.truth, topic)), topic
        assert df.error.str.len().gt(0).all(), topic
        quarantined += len(df)
    figures = window_figures(run, run.truth)
    record(reliability, "4 poison input", f"burst of {summary['records']:,} records, {share:.1%} malformed "
           f"({len(kinds)} kinds); the four jobs --available-now: all exit 0 in {took:.0f} s; "
           f"{quarantined:,} records quarantined with a reason = malformed produced", figures, "n/a (no stop)",
           run.truth)
    assert 0.19 <= share <= 0.23, share
    assert figures["exact"], figures


# -- 5 -------------------------------------------------------------------------------------------


def process_trees(pids: list[int]) -> list[psutil.Process]:
    """The processes and all their descendants (adopted children are not the orchestrator's)."""
    out = []
    for pid in pids:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc = psutil.Process(pid)
            out += [proc, *proc.children(recursive=True)]
    return out


def drivers_per_job() -> dict[str, int]:
    """Python drivers per streaming job in the process table, and applications per job on the master."""
    procs = Counter()
    for proc in psutil.process_iter(["cmdline"]):
        cmd = proc.info["cmdline"] or []
        if cmd and "python" in os.path.basename(cmd[0]):
            procs.update(j for j in STREAMING if any(arg.endswith(f"jobs/streaming/{j}.py") for arg in cmd))
    apps = Counter(a["name"].removeprefix("data-platform-") for a in stack_state().get("activeapps", []))
    return {j: (procs[j], apps[j]) for j in STREAMING}


def test_orchestrator_killed_then_shutdown_under_load_then_resume(stack, tmp_path, reliability):
    """SIGKILL to the orchestrator while four streaming jobs and a batch run are running: the next
    orchestrator adopts them (one driver per job at all times, the batch interval run once); then
    SIGTERM under load stops everything with exit 0 and leaves nothing; a third start resumes."""
    scenario = "5 orchestrator killed, shutdown under load"
    reliability.start(scenario)
    run = new_run(tmp_path, "orchkill")
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    # Part 1, on the topics before the orchestrator starts: about two hours of event time from
    # three hours ago, so that hourly intervals become ready as soon as data_enrichment has read it.
    run.generate("--app-events", "3000", "--seed", "35", "--start", iso(now - timedelta(hours=3)),
                 "--sessions-per-minute", f"{3000 / 8.5 / 120:.3f}", *LIVE, truth=run.root / "truth1")
    jobs = ",".join([*STREAMING, "hourly_aggregate"])
    env = {**ENV, "ORCHESTRATOR_CATCHUP_HOURS": "24"}

    def orchestrator() -> Orchestrator:
        return Orchestrator(run, PORT, "--jobs", jobs, batch=True, env=env, registry_edits=FAST).start()

    orch = orchestrator()
    gen = None
    try:
        before = orch.wait_for(lambda s: job_status(s, "hourly_aggregate")["state"] == "RUNNING", 600,
                               "a batch run of hourly_aggregate in flight")
        assert all(job_status(before, j)["state"] in ("STARTING", "RUNNING") for j in STREAMING), before
        drivers = {j: job_status(before, j)["pid"] for j in STREAMING}
        batch_run = job_status(before, "hourly_aggregate")["running"]
        orch.proc.kill()  # SIGKILL: no goodbye, children keep running in their own sessions
        orch.proc.wait(timeout=10)
        killed = time.monotonic()
        assert all(psutil.pid_exists(p) for p in drivers.values())

        orch = orchestrator()
        counts = []
        adopted = orch.wait_for(lambda s: counts.append(drivers_per_job()) is None
                                and all(job_status(s, j)["state"] == "RUNNING" for j in STREAMING), 120,
                                "the jobs adopted")
        adoption = time.monotonic() - killed
        assert {j: job_status(adopted, j)["pid"] for j in STREAMING} == drivers, "adopted, not restarted"
        assert all(job_status(adopted, j)["starts"] == 1 for j in STREAMING)
        ledger = Ledger(run.root / "state" / "orchestrator" / "ledger.sqlite")

        def batch_settled(_status) -> bool:
            counts.append(drivers_per_job())
            rows = [r for r in ledger.rows("hourly_aggregate") if r["run_id"] == batch_run["run_id"]]
            return bool(rows) and all(r["status"] != "running" for r in rows)

        orch.wait_for(batch_settled, 300, "the adopted batch run finished")
        ran = [r for r in ledger.rows("hourly_aggregate") if r["run_id"] == batch_run["run_id"]]
        assert [r["interval_start"] for r in ran] == batch_run["intervals"]
        assert {(r["status"], r["attempts"]) for r in ran} == {("succeeded", 1)}, ran
        # Never two drivers of a job (a job still starting may not have registered with the master yet).
        assert all(procs == 1 and apps <= 1 for c in counts for procs, apps in c.values()), counts
        assert counts[-1] == dict.fromkeys(STREAMING, (1, 1)), counts[-1]

        # Part 2, live: the shutdown comes while it is being produced and processed.
        # It starts after part 1's last event: nothing in it is behind the watermark part 1 left.
        later = oracle.max_event_time(run.root / "truth1", "app_events", "event_timestamp") + timedelta(minutes=1)
        gen = start_generator(run, run.root / "truth2", "--app-events", "8000", "--seed", "36", "--start",
                              iso(later), *LIVE, "--rate", "100")
        last = batch_id(run)
        orch.wait_for(lambda s: batch_id(run) >= last + 3, 300, "part 2 being processed")
        assert gen.poll() is None, "the generator finished before the shutdown: no load to shut down under"
        records = json.loads((run.root / "state" / "orchestrator" / "children.json").read_text())
        tree = process_trees([orch.proc.pid, *(r["pid"] for r in records)])
        started = time.monotonic()
        assert orch.stop(timeout=180) == 0
        took = time.monotonic() - started
        orphans = [p.pid for p in tree if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        assert not orphans, f"left behind: {orphans}"
        unclean = [j for j in STREAMING if exit_codes(run, j) != [0]]
        assert not unclean, f"not stopped by themselves with exit 0 (SIGKILLed?): {unclean}"
        wait(lambda: not stack_state().get("activeapps"), 60, "no application left on the cluster")

        orch = orchestrator()
        stop_generator(gen)
        truth = merge_truth(run, [run.root / "truth1", run.root / "truth2"])
        wait_until_drained(run, JOB, DATASET, min_watermark=final_watermark(truth), timeout=900)
        orch.wait_for(lambda s: all(all(q.get("idle") for q in read_progress(run, j).values()) for j in STREAMING)
                      and job_status(s, "hourly_aggregate")["state"] != "RUNNING"
                      and not job_status(s, "hourly_aggregate")["ready_pending"], 600, "everything caught up")
        counts.append(drivers_per_job())
        assert counts[-1] == dict.fromkeys(STREAMING, (1, 1)), counts[-1]
    finally:
        final_exit = orch.stop(timeout=180)
        if gen is not None:
            finish_generator(gen, timeout=1)
    assert final_exit == 0
    wait(lambda: not stack_state().get("activeapps"), 60, "no application left after the final stop")
    outputs = four_outputs_figures(run, truth)
    hours = [r for r in ledger.rows("hourly_aggregate") if r["status"] != "waiting"]
    assert all((r["status"], r["attempts"]) == ("succeeded", 1) for r in hours), hours
    done = {datetime.fromisoformat(r["interval_start"]) for r in hours}
    expected = {k: v for k, v in oracle.hourly(truth).items() if k[0] in done}
    hourly = run.dataset("hourly_aggregates")
    got = {(h.to_pydatetime(), t, a): (n, u, s) for h, t, a, n, u, s in zip(
        pd.to_datetime(hourly.hour_start, utc=True), hourly.event_type, hourly.app_type, hourly.event_count,
        hourly.unique_users, hourly.unique_sessions, strict=True)}
    figures = window_figures(run, truth)
    record(reliability, scenario, f"SIGKILL to the orchestrator with 4 streaming jobs and an hourly batch run "
           f"({len(batch_run['intervals'])} intervals) running; the next orchestrator adopted all five in "
           f"{adoption:.0f} s (1 driver and 1 application per job in {len(counts)} samples; the batch intervals "
           f"ran once). Then SIGTERM under load: exit 0 in {took:.0f} s, {len(tree)} processes, 0 orphans, 0 apps "
           f"left; resumed. Exact: {', '.join(j for j, ok in outputs.items() if ok)}; {len(done)} hours = oracle",
           figures, f"adopted {adoption:.0f}; stop {took:.0f}", truth)
    assert took <= 60 + 15
    assert outputs == dict.fromkeys(STREAMING, True), outputs
    assert got == expected
    assert figures["exact"], figures


# -- 7 -------------------------------------------------------------------------------------------


def first_deliveries(records: list[dict]) -> list[dict]:
    """The surviving records as the job sees them: where the deletion took an event's first
    delivery, its re-delivery is the first one the job reads (no late records in this scenario)."""
    seen = {json.loads(r["value"])["event_id"] for r in records if r["kind"] == "valid"}
    out = []
    for record in records:
        if record["kind"] == "duplicate" and (event_id := json.loads(record["value"])["event_id"]) not in seen:
            seen.add(event_id)
            out.append({**record, "kind": "valid", "note": "first delivery deleted"})
        else:
            out.append(record)
    return out



def test_offsets_aged_out_follow_fail_on_data_loss(stack, tmp_path, reliability):
    reliability.start("7 offsets aged out")
    run = new_run(tmp_path, "agedout")
    # One partition: offset i of the topic is line i of the ground truth.
    create_topics(run, partitions=1)
    common = ("--users", "200", "--duplicate-rate", "0.02", "--malformed-rate", "0.01")
    run.generate("--app-events", "2000", "--seed", "37", "--start", "2026-11-16T10:00:00Z", *common,
                 truth=run.root / "truth1")
    assert run_jobs(run, (JOB,), "--available-now", extra_env=JOB_ENV) == {JOB: 0}
    run.generate("--app-events", "2000", "--seed", "38", "--start", "2026-11-16T12:00:00Z", *common,
                 truth=run.root / "truth2")
    first, second = app_records(run.root / "truth1"), app_records(run.root / "truth2")
    cut = first + second // 2
    # What retention does, made immediate: the log start offset moves past unread records.
    admin = KafkaAdminClient(bootstrap_servers=BOOTSTRAP)
    try:
        admin.delete_records({TopicPartition(run.env["TOPIC_APP_EVENTS"], 0): cut})
    finally:
        admin.close()
    before = window_figures(run, run.root / "truth1")

    strict = run_jobs(run, (JOB,), "--available-now", extra_env=JOB_ENV)
    assert strict[JOB] != 0, "failOnDataLoss=true stops the job"
    assert "failOnDataLoss" in (run.root / f"{JOB}.out").read_text()
    assert window_figures(run, run.root / "truth1") == before, "nothing written past the gap"

    lenient = run_jobs(run, (JOB,), "--available-now", extra_env={**JOB_ENV, "KAFKA_FAIL_ON_DATA_LOSS": "false"})
    assert lenient == {JOB: 0}
    survivors = run.root / "truth2_kept"
    survivors.mkdir()
    for topic in ("clickstream", "cdc_changes", "external_data"):
        shutil.copy(run.root / "truth2" / f"{topic}.jsonl", survivors / f"{topic}.jsonl")
    (survivors / "app_events.jsonl").write_text("".join(
        json.dumps(r) + "\n" for r in first_deliveries(oracle.load(run.root / "truth2", "app_events")[second // 2:])))
    truth = merge_truth(run, [run.root / "truth1", survivors])
    figures = window_figures(run, truth)
    record(reliability, "7 offsets aged out", f"{second // 2:,} unread app_events records deleted "
           "(DeleteRecords, as retention would). failOnDataLoss=true: job exits non-zero naming the option, "
           "outputs untouched; =false: skips to the earliest offset, outputs = oracle over the surviving records",
           figures, "n/a (operator decision)", truth)
    assert figures["exact"], figures
