"""The benchmark's report and its small helpers: a full `make bench` takes an hour, so a typo in
the Markdown it writes at the very end must fail here, not there."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from benchmarks import jfr, report
from benchmarks.common import percentile as _percentile
from benchmarks.report import run_section as to_markdown
from benchmarks.stages import OTHER, executor_cpu_s, stage_times
from configs.spark_config import duration_seconds as _seconds

RSS = {"driver": 700, "executor": 1500}
JOB = {"exit_code": 0, "rows": 5_000_000, "wall_s": 600.0, "batches": 27, "rows_per_s_wall": 8_000,
       "rows_per_s_in_batches": 8_500, "driver_start_to_first_batch_s": 70.0, "ratio_to_ceiling": 0.24,
       "batch_ms_p50": None, "batch_ms_max": None,
       "peak_rss_mib": RSS}
RESULTS = {
    "when": "2026-11-26T00:00:00+00:00", "machine": "test", "command": "make bench",
    "generator": {"records": 10, **{f"{k}_records_per_s": 1.0 for k in (
        "librdkafka", "librdkafka_2_processes", "kafka-python", "no_kafka", "no_kafka_2_processes")}},
    "streaming": {"events": 5_000_000, "topic_partitions": 2, "topics": {
        "app_events": {"ceiling": {"rows": 5_000_000, "seconds": 142.7, "rows_per_s": 35_026},
                       "event_aggregation": JOB, "data_enrichment": {**JOB, "exit_code": 1}},
        "cdc_changes": {"ceiling": {"rows": 5_000_000, "seconds": 100.0, "rows_per_s": 50_000},
                        "cdc_transformation": {**JOB, "batch_ms_p50": 9000, "batch_ms_max": 20000}}}},
    "sustained": [{"target_records_per_s": 6000.0, "generator_records_per_s": 5999.0, "app_events_per_s": 3560,
                   "processed_app_events_per_s": 3409, "drained_s_after_generator": 12.0, "kept_up": True,
                   "trigger_s": 10.0, "batches": 22, "batch_ms_p50": 9426, "batch_ms_p95": 26888,
                   "peak_rss_mib": RSS, "files_per_date_partition_per_hour": 700}],
    "latency": [{"target_records_per_s": 2000.0, "seconds": 120.0, "app_events_per_s": 1150, "trigger_s": 10.0,
                 "drained_s_after_generator": 8.0, "kept_up": True, "warmup_s": 60,
                 "jobs": {"event_aggregation": {"batches": 11, "batch_ms_p50": 6000, "batch_ms_p95": 9500,
                                                "warmup_batch_ms_max": 28000, "caught_up_s": 95.5,
                                                "processed_app_events_per_s": 1100},
                          "data_enrichment": {"batches": 11, "batch_ms_p50": 7000, "batch_ms_p95": 12500,
                                              "processed_app_events_per_s": 1100}},
                 "enriched_e2e_s": {"rows": 130000, "p50": 12.1, "p95": 21.0, "max": 30.2}}],
    "small_files": {"events": 1000, "days": 7, "hours": 6, "layouts": {
        "147": {"files": 24696, "write_s": 90.0, "hourly_range_s": 120.5, "daily_s": 30.1},
        "1": {"files": 168, "write_s": 20.0, "hourly_range_s": 40.2, "daily_s": 15.0}}},
    "parsing": {"records": 1000, "steps": {"parse to VARIANT": {"seconds": 2.0, "rows_per_s": 500}}},
    "sweep": {"events": 1000, "runs": [{**JOB, "setting": "defaults", "round": 1, "vs_defaults": 1.0},
                                       {**JOB, "setting": "4 Kafka partitions", "round": 2, "vs_defaults": 1.2}]},
    "startup": {"launch": {"events": 5000, "rounds": 1, "runs": {
        "before": [{"python_started": 4.5, "session_ready": 16.4, "queries_started": 21.9, "first_batch": 32.2,
                    "first_batch_main_query": 35.0}],
        "class path + CDS": [{"python_started": 3.0, "session_ready": 9.0, "queries_started": 12.0,
                              "first_batch": 14.0, "first_batch_main_query": None}]},
        "median_first_batch_s": {"before": 32.2, "class path + CDS": 14.0},
        "median_first_batch_main_query_s": {"before": 35.0, "class path + CDS": None}},
        "recovery": {"kills": 2, "kill_to_next_batch_s": {"before": [44.0, 50.1], "after": [25.0, None]},
                     "median_s": {"before": 50.1, "after": 25.0}}},
    "peer": {"events": 1000, "event_aggregation": {
        "topic": "app_events",
        "project": {**JOB, "batch_s_by_query": {"events_aggregated_realtime": 80.0, "quarantine": 50.0},
                    "executor_cpu_s": 300.0},
        "peer": {"rows": 5_000_000, "wall_s": 480.0, "batch_s": 70.0, "executor_cpu_s": 240.0}, "ratio_wall": 0.8,
        "ratio_cpu": 0.8, "same_output": True}},
    "batch": {"events": 10_000_000, "session_start_s": 16.9, "spark_scan_s": 8.1,
              **{name: {"spark_s": 6.7, "duckdb_s": 0.48, "ratio": 13.8, "rows": 24, "rows_match": True}
                 for name in ("hourly_aggregate", "daily_summary", "user_segmentation")}},
    "storage": {"events": 1000, "batch_events": 2000, "hours": 6,
                "streaming": {"local": {**JOB, "rows_per_s_in_batches": 9000}, "s3": JOB, "s3_vs_local": 0.94},
                "backfill": {"local": {"wall_s": 30.0}, "s3": {"wall_s": 45.0}, "s3_vs_local": 1.5}},
}


def test_report_has_every_section_and_flags_failures():
    text = to_markdown(RESULTS)
    for heading in ("**Generator**", "**JSON path**", "**Streaming**", "**Sustained rate**", "**Tuning sweep**",
                    "**Start-up**", "**Batch**"):
        assert heading in text
    assert "| app_events | data_enrichment (exit 1) |" in text and "| app_events | event_aggregation |" in text
    assert ("| cdc_changes | ceiling: read + same parsing and validation + count | 5,000,000 | 100.0 | "
            "50,000 |") in text
    assert "| cdc_changes | cdc_transformation | 5,000,000 | 600.0 | 8,000 | 8,500 | 0.24 | 27 | 9000 / 20000 |" in text
    assert "clickstream" not in text, "a topic left out of the run has no rows"
    assert "| parse to VARIANT | 2.0 | 500 |" in text
    assert "| 4 Kafka partitions | 2 | 8,500 | 1.2 | 600.0 | 27 | None / None | 700 / 1500 |" in text
    assert "| 6,000 | 5,999 | 3,560 | 3,409 | 12.0 | yes | 22 | 9426 / 26888 (10) | 700 / 1500 | 700 |" in text
    assert "| user_segmentation | 6.7 | 0.48 | 13.8 | 24 (yes) |" in text
    assert "| event_aggregation `--available-now`, rows/s in batches | 9,000 | 8,500 | 0.94 |" in text
    assert "| hourly backfill of 6 hours, wall s | 30.0 | 45.0 | 1.5 |" in text
    assert ("| 2,000 | 1,150 | yes | 8.0 | 6000 / 9500 (11) | 7000 / 12500 (11) | 28000 / – | 95.5 / – | "
            "12.1 / 21.0 / 30.2 |") in text and "the first 60 s" in text
    assert "| 147 | 24,696 | 90.0 | 120.5 | 30.1 |" in text and "hourly backfill of 6 h, s" in text
    assert "| before | 1 | 4.5 | 16.4 | 21.9 | 32.2 | 35.0 |" in text
    assert "| class path + CDS | 1 | 3.0 | 9.0 | 12.0 | 14.0 | None |" in text
    assert "| after | 25.0, None | 25.0 |" in text
    assert ("| event_aggregation | app_events | 600.0 | 480.0 | 0.8 | 300.0 / 240.0 | 0.8 | 5,000,000 | 5,000,000 | "
            "events_aggregated_realtime 80.0, quarantine 50.0 | 70.0 | yes |") in text
    # A result stored before the CPU figure shows a dash there.
    old = {"events": 10, "x": {k: v for k, v in RESULTS["peer"]["event_aggregation"].items() if k != "ratio_cpu"}}
    assert "| x | app_events | 600.0 | 480.0 | 0.8 | 300.0 / 240.0 | – |" in "\n".join(report.md_peer(old))


def test_goals_say_met_not_met_or_not_measured():
    stored = {area: {"git": "abc1234", "when": "2026-11-30T01:00:00+00:00", "result": RESULTS[area]}
              for area in ("startup", "peer", "latency")}
    rows = "\n".join(report.md_goals(stored))
    assert "| 14.0 | ≤ 15 s | met | git abc1234, 2026-11-30 |" in rows
    assert "| 25.0 | ≤ 20 s | not met |" in rows
    assert "| 0.8 | ≥ 1.0 | not met |" in rows
    # Both kept up at 1,150 app events/s; data_enrichment's p95 is above the trigger.
    assert "| 9.5, 12.5 at 1,150 | ≤ trigger (10 s) | not met |" in rows
    assert "| none of 1,150 app events/s | (the rate to report) | — |" in rows
    within = {**stored, "latency": {**stored["latency"], "result": [
        {**RESULTS["latency"][0], "app_events_per_s": 600, "jobs": {
            j: {**v, "batch_ms_p95": 9000} for j, v in RESULTS["latency"][0]["jobs"].items()}},
        RESULTS["latency"][0]]}}
    assert "| 600 app events/s (tried 600 / 1,150) | (the rate to report) | — |" in "\n".join(report.md_goals(within))
    behind = {**stored, "latency": {**stored["latency"], "result": [{**RESULTS["latency"][0], "kept_up": False}]}}
    assert "| kept up at none of the rates (lowest 1,150 app events/s) | ≤ trigger (10 s) | not met |" in "\n".join(
        report.md_goals(behind))
    assert "| hourly backfill: one ranged run vs one application per hour (wall s) |  | faster (no threshold) | " \
           "not measured |" in rows


def test_summary_keeps_each_areas_newest_result_and_draws_the_plots(tmp_path, monkeypatch):
    for name in ("RESULTS", "PLOTS"):
        monkeypatch.setattr(report, name, tmp_path / name.lower())
    monkeypatch.setattr(report, "SUMMARY", tmp_path / "BENCHMARKS.md")
    monkeypatch.setattr(report, "HISTORY", tmp_path / "history.md")
    report.HISTORY.write_text("# History\n\n## Run of 2026-11-20T10:00:00+00:00\n\nMachine: vm · git abc1234\n\n"
                              "- **Hourly backfill** of 2 hours\n")
    report.store(RESULTS, "1234567")
    report.store({"when": "2026-11-27T00:00:00+00:00", "machine": "test", "command": "make bench --only parsing",
                  "parsing": {"records": 7, "steps": {"parse to VARIANT": {"seconds": 1.0, "rows_per_s": 7}}},
                  "cpu_probe": {"parsing": [0.35, 0.41]}}, "89abcde")
    text = report.write_summary()
    assert text.startswith("# Benchmarks")
    parsing = text.split("## The JSON path")[1].split("## ")[0]
    assert "2026-11-27 00:00 UTC, git 89abcde, `make bench --only parsing`; test; CPU probe 0.35 → 0.41 s" in parsing
    assert "| parse to VARIANT | 1.0 | 7 |" in parsing, "the newest run of an area wins"
    assert "git 1234567" in text.split("## Generator")[1].split("## ")[0]
    assert "newest figures are in the history, run of 2026-11-20T10:00:00+00:00 (git abc1234)" in text
    for area in ("sustained", "batch"):
        assert (tmp_path / "plots" / f"{area}.png").read_bytes()[:4] == b"\x89PNG"
        assert f"](benchmarks/plots/{area}.png)" in text


def test_helpers():
    assert _seconds("10 seconds") == 10 and _seconds("1 minute") == 60
    assert _percentile([5, 1, 3, 2, 4], 0.5) == 3 and _percentile([5, 1, 3, 2, 4], 0.95) == 5
    assert _percentile([], 0.5) is None
    from benchmarks.common import cpu_probe
    assert 0 <= cpu_probe(1000) < cpu_probe(2_000_000), "seconds of a loop, longer for more of it"


def _task_end(stage: int, run_ms: int, cpu_ns: int, read: int, written: int) -> dict:
    return {"Event": "SparkListenerTaskEnd", "Stage ID": stage, "Task Metrics": {
        "Executor Run Time": run_ms, "Executor CPU Time": cpu_ns,
        "Shuffle Read Metrics": {"Total Records Read": read},
        "Shuffle Write Metrics": {"Shuffle Records Written": written}}}


def test_stage_times_sums_tasks_per_query_and_place_in_the_job(tmp_path):
    batch = {"sql.streaming.queryId": "q-1", "spark.job.description": "windows\nid = q-1\nrunId = r\nbatch = 0"}
    events = [
        {"Event": "SparkListenerJobStart", "Job ID": 0, "Stage IDs": [1, 0], "Properties": batch},
        {"Event": "SparkListenerJobStart", "Job ID": 1, "Stage IDs": [2], "Properties": {}},
        {"Event": "SparkListenerJobStart", "Job ID": 2, "Stage IDs": [3, 4],
         "Properties": {**batch, "spark.job.description": "windows\nid = q-1\nrunId = r\nbatch = 1"}},
        _task_end(0, 3000, 2_000_000_000, 0, 10),
        _task_end(0, 1000, 1_000_000_000, 0, 5),
        _task_end(1, 2000, 500_000_000, 15, 0),
        _task_end(2, 1000, 0, 0, 0),
        _task_end(3, 2000, 0, 0, 4),
        {"Event": "SparkListenerTaskEnd", "Stage ID": 4, "Task Metrics": None},
        {"Event": "SparkListenerStageCompleted", "Stage Info": {"Stage ID": 4}},
    ]
    log = tmp_path / "app-1"
    log.write_text("".join(json.dumps(e) + "\n" for e in events))
    rows = {(r["query"], r["stage"]): r for r in stage_times(log)}
    assert set(rows) == {("windows", "1/2"), ("windows", "2/2"), (OTHER, "1/1")}
    assert rows[("windows", "1/2")] == {"query": "windows", "stage": "1/2", "tasks": 3, "run_s": 6.0, "cpu_s": 3.0,
                                    "shuffle_read_records": 0, "shuffle_write_records": 19, "share": 0.667}
    assert rows[("windows", "2/2")]["run_s"] == 2.0 and rows[("windows", "2/2")]["shuffle_read_records"] == 15
    assert rows[(OTHER, "1/1")]["run_s"] == 1.0
    assert executor_cpu_s(tmp_path) == 3.5  # the one log in the folder, every stage's CPU (the peer's figure)
    text = to_markdown({**RESULTS, "stages": {"events": 1000, "jobs": {"event_aggregation": {
        "exit_code": 0, "rows": 1000, "wall_s": 9.0, "stages": list(rows.values()),
        "components": {"JSON parse": 4, "state store": 3, "other": 1}, "gc_pause_s": 0.5,
        "running_methods": [["a.B.c", 5], ["d.E.f", 2]]}}}})
    assert "**Where the time goes**" in text
    assert "| event_aggregation | windows | 1/2 | 3 | 6.0 | 67% | 3.0 | 0 / 19 | 6000.0 |" in text
    assert ("event_aggregation (9.0 s wall, executor GC pauses 0.5 s), 8 samples of its task threads "
            "(benchmarks/jfr.py), by component: JSON parse 50.0%, "
            "state store 37.5%, other 12.5%; most often running: `a.B.c` 62.5%, `d.E.f` 25.0%") in text
    empty = to_markdown({**RESULTS, "stages": {"events": 1000, "jobs": {"event_aggregation": {
        "exit_code": 1, "rows": 0, "wall_s": 9.0, "stages": list(rows.values())}}}})
    assert "| event_aggregation (exit 1) | windows | 1/2 | 3 | 6.0 | 67% | 3.0 | 0 / 19 | (no rows read) |" in empty


# `jfr print` text as JDK 17 writes it: a Java sample and a native sample (truncated stack) of task
# threads, and a sample of a thread that is not a task's.
JFR_TEXT = """\
jdk.ExecutionSample {
  startTime = 22:38:00.020
  sampledThread = "Executor task launch worker-0" (javaThreadId = 45)
  state = "STATE_RUNNABLE"
  stackTrace = [
    java.lang.StringLatin1.hashCode(byte[]) line: 196
    scala.collection.mutable.HashMap.update(Object, Object) line: 85
    org.apache.spark.sql.internal.SQLConf$.get() line: 200
    org.apache.spark.sql.catalyst.expressions.variant.VariantGet$.cast(Variant, DataType, VariantCastArgs) line: 1
    org.apache.spark.sql.catalyst.expressions.GeneratedClass$GeneratedIteratorForCodegenStage1.processNext()
  ]
}

jdk.NativeMethodSample {
  startTime = 22:38:00.158
  sampledThread = "Executor task launch worker-1" (javaThreadId = 46)
  state = "STATE_RUNNABLE"
  stackTrace = [
    org.rocksdb.RocksDB.get(long, long, byte[], int, int)
    org.apache.spark.sql.execution.streaming.state.RocksDB.get(byte[], String) line: 3
    ...
  ]
}

jdk.ExecutionSample {
  startTime = 22:38:00.160
  sampledThread = "shuffle-client-4-1" (javaThreadId = 60)
  state = "STATE_RUNNABLE"
  stackTrace = [
    net.jpountz.lz4.LZ4JNI.LZ4_decompress_safe(byte[]) line: 1
  ]
}
"""


def test_jfr_task_samples_go_to_their_leaf_most_component():
    samples = list(jfr.task_samples(JFR_TEXT.splitlines(keepends=True)))
    assert [frames[0] for frames in samples] == ["java.lang.StringLatin1.hashCode", "org.rocksdb.RocksDB.get"]
    assert samples[1] == ["org.rocksdb.RocksDB.get", "org.apache.spark.sql.execution.streaming.state.RocksDB.get"]
    components, running = jfr.summarize(samples)
    # The cast is the leaf-most known frame: the sample is not the generated code's that called it.
    assert components == Counter({"VARIANT cast per value": 1, "state store": 1})
    assert running == Counter({"java.lang.StringLatin1.hashCode": 1, "org.rocksdb.RocksDB.get": 1})
    assert jfr.component(["java.lang.Object.wait", "java.lang.Thread.run"]) == jfr.OTHER
    assert jfr.component(["org.apache.spark.types.variant.VariantBuilder.parseJson"]) == "JSON parse"
    gc = ["jdk.GarbageCollection {", '  name = "G1New"', "  sumOfPauses = 9.21 ms", "}",
          "jdk.GarbageCollection {", "  sumOfPauses = 1.5 s", "}"]
    assert jfr.gc_pause_seconds(gc) == pytest.approx(1.50921)


def test_jfr_profile_reads_samples_and_gc_pauses_in_one_print_per_recording(monkeypatch, tmp_path):
    printed = []
    gc = "jdk.GarbageCollection {\n  sumOfPauses = 2.5 ms\n}\n"

    def fake_lines(recording):
        printed.append(recording)
        return iter((JFR_TEXT + gc).splitlines(keepends=True))

    monkeypatch.setattr(jfr, "jfr_lines", fake_lines)
    recordings = [tmp_path / "a.jfr", tmp_path / "b.jfr"]
    components, running, gc_s = jfr.profile(recordings)
    assert printed == recordings
    assert components == Counter({"VARIANT cast per value": 2, "state store": 2})
    assert running["org.rocksdb.RocksDB.get"] == 2 and gc_s == pytest.approx(0.005)


def test_commit_latency_counts_each_file_once_from_its_batchs_commit(tmp_path):
    import os
    from datetime import UTC, datetime

    import pyarrow as pa
    import pyarrow.parquet as pq

    from benchmarks.latency import commit_latencies

    log = tmp_path / "_spark_metadata"
    log.mkdir()
    base = datetime(2026, 11, 30, 1, 0, tzinfo=UTC).timestamp()
    for i, stamps in enumerate(([base, base + 5], [base + 20])):
        part = tmp_path / f"part-{i}.parquet"
        pq.write_table(pa.table({"kafka_timestamp": pa.array(
            [datetime.fromtimestamp(t, UTC) for t in stamps], pa.timestamp("us", tz="UTC"))}), part)
    (log / ".0.crc").write_bytes(b"checksum, not an entry")
    entries = {"0": ["part-0"], "1.compact": ["part-0", "part-1"]}  # a compaction repeats batch 0's file
    for n, (name, parts) in enumerate(entries.items()):
        (log / name).write_text("v1\n" + "".join(json.dumps({"path": f"file://{tmp_path}/{p}.parquet"}) + "\n"
                                                 for p in parts))
        os.utime(log / name, (base + 30 * (n + 1), base + 30 * (n + 1)))
    assert sorted(commit_latencies(tmp_path, since=base)) == [25.0, 30.0, 40.0]
    assert sorted(commit_latencies(tmp_path, since=base + 1)) == [25.0, 40.0], "rows before `since` left out"


def test_a_job_caught_up_at_the_end_of_its_first_batch_within_the_trigger():
    from datetime import UTC, datetime

    from benchmarks.latency import caught_up_at

    def batch(ended_s: int, ms: int) -> dict:
        return {"asctime": datetime.fromtimestamp(1_800_000_000 + ended_s, UTC).isoformat(), "batch_duration_ms": ms}

    cold = [batch(45, 45_000), batch(90, 41_000), batch(112, 21_000), batch(120, 8_000), batch(140, 19_000)]
    assert caught_up_at(cold, 10) == 1_800_000_120, "a later slow batch does not undo it"
    assert caught_up_at(cold[:3], 10) is None
    assert caught_up_at([batch(5, 10_000)], 10) == 1_800_000_005, "a batch of exactly the trigger fits"


def test_a_latency_run_that_never_caught_up_reads_never_and_a_dash_and_the_probe_goes_into_the_history():
    jobs = {"batches": 0, "batch_ms_p50": None, "batch_ms_p95": None, "warmup_batch_ms_max": 97065,
            "caught_up_s": None}
    run = {**RESULTS["latency"][0], "kept_up": False, "jobs": {"event_aggregation": jobs, "data_enrichment": jobs},
           "enriched_e2e_s": {"rows": 0, "p50": None, "p95": None, "max": None}}
    text = report.run_section({**RESULTS, "latency": [run], "cpu_probe": {"latency": [0.35, 0.52]}})
    assert "| 2,000 | 1,150 | no | 8.0 | – / – (0) | – / – (0) | 97065 / 97065 | never / never | – / – / – |" in text
    assert "None" not in text.split("**Latency")[1].split("\n- ")[0]
    assert "CPU probe before → after each area (benchmarks.common.cpu_probe; higher: a busier host): " \
           "latency 0.35 → 0.52 s" in text
