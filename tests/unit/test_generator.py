"""The event generator: determinism, fault rates, contract conformance (no Kafka needed)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections import Counter

from configs.spark_config import PROJECT_ROOT
from tools.world import World, WorldOptions


def generate(tmp_path, name: str, *args: str) -> dict:
    out = tmp_path / name
    cmd = [sys.executable, "-m", "tools.generate_events", "--no-kafka", "--truth-dir", str(out / "truth"),
           "--user-master-path", str(out / "users"), "--start", "2026-11-24T00:00:00Z", *args]
    result = subprocess.run(cmd, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_same_seed_same_records_byte_identical(tmp_path):
    generate(tmp_path, "a", "--app-events", "3000", "--seed", "5", "--malformed-rate", "0.05")
    generate(tmp_path, "b", "--app-events", "3000", "--seed", "5", "--malformed-rate", "0.05")
    generate(tmp_path, "c", "--app-events", "3000", "--seed", "6", "--malformed-rate", "0.05")
    for topic in ("app_events", "clickstream", "cdc_changes", "external_data"):
        a = (tmp_path / "a" / "truth" / f"{topic}.jsonl").read_bytes()
        assert a == (tmp_path / "b" / "truth" / f"{topic}.jsonl").read_bytes()
        assert a != (tmp_path / "c" / "truth" / f"{topic}.jsonl").read_bytes()


def test_sharded_generation_is_deterministic_and_keys_stay_unique(tmp_path):
    args = ("--app-events", "4000", "--seed", "5", "--processes", "2", "--duplicate-rate", "0.02")
    one = generate(tmp_path, "a", *args)
    two = generate(tmp_path, "b", *args)
    assert one["counts"] == two["counts"] and one["processes"] == 2
    truth = {}
    for topic in ("app_events", "clickstream", "cdc_changes", "external_data"):
        truth[topic] = (tmp_path / "a" / "truth" / f"{topic}.jsonl").read_bytes()
        assert truth[topic] == (tmp_path / "b" / "truth" / f"{topic}.jsonl").read_bytes()
    events = [json.loads(json.loads(line)["value"]) for line in truth["app_events"].splitlines()
              if json.loads(line)["kind"] == "valid"]
    assert len(events) >= 4000 and len({e["event_id"] for e in events}) == len(events)
    changes = [json.loads(line) for line in truth["cdc_changes"].splitlines()]
    snapshot = [c for c in changes if '"op":"r"' in (c["value"] or "")]
    assert len(snapshot) == 250, "one snapshot, from shard 0"
    created = [json.loads(c["value"]) for c in changes if '"op":"c"' in (c["value"] or "")]
    order_ids = [c.get("payload", c)["after"]["id"] for c in created]
    assert len(set(order_ids)) == len(order_ids), "order ids disjoint across shards"


def test_fault_rates_within_ten_percent_on_100k_records():
    world = World(WorldOptions(app_events=100_000, malformed_rate=0.02, duplicate_rate=0.03,
                               late_rate=0.01, users=1000))
    kinds = Counter()
    for rec in world.records():
        if rec.topic == "app_events":
            kinds[rec.kind] += 1
    valid = kinds["valid"] + kinds["late"]
    assert valid >= 99_000
    assert abs(kinds["malformed"] / kinds["valid"] - 0.02) <= 0.002
    assert abs(kinds["duplicate"] / valid - 0.03) <= 0.003
    # Late records the stream ended before could be delivered are never sent (the tail).
    assert abs(kinds["late"] / valid - 0.01) <= 0.001 + 60 / valid


def test_records_follow_the_contract():
    world = World(WorldOptions(app_events=2000, users=50))
    required = {"app_events": {"event_id", "event_type", "user_id", "session_id", "app_type", "event_timestamp"},
                "clickstream": {"click_id", "session_id", "user_id", "page_url", "app_type", "event_timestamp"},
                "external_data": {"record_id", "source", "fetched_at", "payload"}}
    ops, forms = Counter(), Counter()
    for rec in world.records():
        if rec.value is None:
            assert rec.topic == "cdc_changes" and rec.kind == "tombstone"
            continue
        obj = json.loads(rec.value)
        if rec.topic in required:
            assert required[rec.topic] <= set(obj), rec
            assert obj[next(f for f in ("event_timestamp", "fetched_at") if f in obj)].endswith("Z")
        else:
            forms["wrapped" if "payload" in obj else "bare"] += 1
            env = obj.get("payload", obj)
            ops[(f"{env['source']['schema']}.{env['source']['table']}", env["op"])] += 1
    assert {op for _, op in ops} >= {"r", "c", "u", "d"}
    assert {t for t, _ in ops} == {"public.users", "public.orders", "public.products"}
    assert forms["wrapped"] > 0 and forms["bare"] > 0


def test_user_master_written(tmp_path):
    import pandas as pd

    generate(tmp_path, "m", "--app-events", "500", "--users", "40")
    users = pd.read_parquet(tmp_path / "m" / "users")
    assert len(users) == 40 and {"user_id", "signup_date", "country", "plan"} <= set(users.columns)


def test_bad_generator_arguments_exit_2():
    result = subprocess.run([sys.executable, "-m", "tools.generate_events", "--malformed-rate", "2"],
                            check=False, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "--malformed-rate" in result.stderr


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_undelivered_records_exit_1(tmp_path):
    """Nothing listens on the port: every record times out and the generator says so."""
    env = {**os.environ, "KAFKA_EXTRA_OPTIONS": '{"message.timeout.ms": "2000"}'}
    result = subprocess.run([sys.executable, "-m", "tools.generate_events", "--app-events", "50",
                             "--bootstrap-servers", f"127.0.0.1:{free_port()}",
                             "--user-master-path", str(tmp_path / "um")],
                            check=False, capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 1
    assert "were not delivered" in result.stderr


def test_sigterm_stops_live_input_with_an_exact_truth(tmp_path):
    """A scenario ends its live input when it has seen enough: SIGTERM stops the generator after
    the record in hand, exit 0, and the truth holds exactly the records produced, the same
    records a run of that seed always starts with."""
    import signal
    import time

    out = tmp_path / "stopped"
    proc = subprocess.Popen([sys.executable, "-m", "tools.generate_events", "--no-kafka", "--truth-dir",
                             str(out / "truth"), "--user-master-path", str(out / "users"), "--start",
                             "2026-11-24T00:00:00Z", "--app-events", "1000000", "--seed", "9", "--rate", "1000",
                             "--malformed-rate", "0.05"], cwd=PROJECT_ROOT, stdout=subprocess.PIPE, text=True)
    time.sleep(4)
    proc.send_signal(signal.SIGTERM)
    stdout, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0
    summary = json.loads(stdout.strip().splitlines()[-1])
    assert summary["stopped_early"] and 0 < summary["records"] < 20_000
    generate(tmp_path, "full", "--app-events", "12000", "--seed", "9", "--malformed-rate", "0.05")
    produced = 0
    for topic in ("app_events", "clickstream", "cdc_changes", "external_data"):
        lines = (out / "truth" / f"{topic}.jsonl").read_text().splitlines()
        full = (tmp_path / "full" / "truth" / f"{topic}.jsonl").read_text().splitlines()
        assert lines == full[:len(lines)], topic
        produced += len(lines)
    assert produced == summary["records"] == sum(summary["counts"].values())
