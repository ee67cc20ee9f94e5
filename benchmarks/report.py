"""BENCHMARKS.md and benchmarks/history.md from the benchmarks' results.

Each area's newest result is kept in benchmarks/results/<area>.json with its date, machine, git
revision and command. BENCHMARKS.md is rewritten from those on every `make bench`: one section per
area, newest figures only, and the plots; each run is also appended to benchmarks/history.md, the
log of every run (and of measurements by hand) since the start.
"""

from __future__ import annotations

import json
import re

from benchmarks.charts import PLOTTERS
from benchmarks.goals import goal_rows
from configs.spark_config import PROJECT_ROOT

RESULTS = PROJECT_ROOT / "benchmarks" / "results"
PLOTS = PROJECT_ROOT / "benchmarks" / "plots"
HISTORY = PROJECT_ROOT / "benchmarks" / "history.md"
SUMMARY = PROJECT_ROOT / "BENCHMARKS.md"


def table(header: list[str], rows: list[list]) -> list[str]:
    """A markdown table; numbers with thousands separators."""
    def cell(v) -> str:
        return f"{v:,}" if isinstance(v, int) and not isinstance(v, bool) else str(v)
    return ["", "| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *("| " + " | ".join(cell(v) for v in row) + " |" for row in rows)]


def _rss(run: dict) -> str:
    return f"{run['peak_rss_mib']['driver']} / {run['peak_rss_mib']['executor']}"


def _failed(run: dict) -> str:
    return f" (exit {run['exit_code']})" if run.get("exit_code") else ""


def md_generator(g: dict) -> list[str]:
    return [f"**Generator** ({g['records']:,} records, acks=all, idempotent, snappy), records/s into the local "
            f"broker: librdkafka {g['librdkafka_records_per_s']:,.0f} (1 process), "
            f"{g['librdkafka_2_processes_records_per_s']:,.0f} (2 processes); kafka-python "
            f"{g['kafka-python_records_per_s']:,.0f}; generation alone (no Kafka) {g['no_kafka_records_per_s']:,.0f} "
            f"(1 process), {g['no_kafka_2_processes_records_per_s']:,.0f} (2 processes)."]


def md_streaming(s: dict) -> list[str]:
    rows = []
    for topic, res in s["topics"].items():
        c = res["ceiling"]
        rows.append([topic, "ceiling: read + same parsing and validation + count", c["rows"], c["seconds"],
                     c["rows_per_s"], "", "1.00", "", "", "", ""])
        rows += [[topic, job + _failed(r), r["rows"], r["wall_s"], r["rows_per_s_wall"], r["rows_per_s_in_batches"],
                  r["ratio_to_ceiling"], r["batches"], f"{r['batch_ms_p50']} / {r['batch_ms_max']}",
                  r["driver_start_to_first_batch_s"], _rss(r)]
                 for job, r in res.items() if isinstance(r, dict) and "rows_per_s_wall" in r]
    return [f"**Streaming**, {s['events']:,} synthetic records per topic on {s['topic_partitions']}-partition "
            "topics, 2-worker cluster, `--available-now`; each job against the ceiling of its topic:",
            *table(["topic", "query", "rows", "wall s", "rows/s (wall)", "rows/s (in batches)",
                    "ratio to ceiling (in batches)", "batches", "batch p50 / max ms", "start→first batch s",
                    "peak RSS driver / executor MiB"], rows)]


def md_sustained(runs: list) -> list[str]:
    rows = [[f"{r['target_records_per_s']:,.0f}", f"{r['generator_records_per_s']:,.0f}", r["app_events_per_s"],
             r["processed_app_events_per_s"], r["drained_s_after_generator"], "yes" if r["kept_up"] else "no",
             r["batches"], f"{r['batch_ms_p50']} / {r['batch_ms_p95']} ({r['trigger_s']:.0f})", _rss(r),
             r.get("files_per_date_partition_per_hour", "")] for r in runs]
    return ["**Sustained rate**, event_aggregation in continuous mode on the cluster while the generator "
            "produces at a fixed rate (all four topics; the job reads app_events); a throughput check: its "
            "batch percentiles include the catch-up after the job's cold start (the latency area has the "
            "steady state):",
            *table(["target records/s", "generator records/s", "app events/s in", "processed app events/s",
                    "drained after generator stop s", "kept up", "batches", "batch p50 / p95 ms (trigger s)",
                    "peak RSS driver / executor MiB", "Parquet files per date partition per hour"], rows)]


def md_stages(st: dict) -> list[str]:
    rows, profiles = [], []
    for job, r in st["jobs"].items():
        for s in r["stages"]:
            per_record = f"{s['run_s'] * 1e6 / r['rows']:.1f}" if r["rows"] else "(no rows read)"
            rows.append([job + _failed(r), s["query"], s["stage"], s["tasks"], s["run_s"], f"{s['share']:.0%}",
                         s["cpu_s"], f"{s['shuffle_read_records']:,} / {s['shuffle_write_records']:,}", per_record])
        total = sum(r.get("components", {}).values())
        if total:
            profiles.append(
                f"\n{job} ({r['wall_s']} s wall, executor GC pauses {r.get('gc_pause_s')} s), {total:,} samples "
                "of its task threads (benchmarks/jfr.py), by component: "
                + ", ".join(f"{name} {n / total:.1%}" for name, n in r["components"].items())
                + "; most often running: " + ", ".join(f"`{m}` {n / total:.1%}" for m, n in r["running_methods"][:8]))
    return [f"**Where the time goes**, each job once more over {st['events']:,} records with Spark's event log on "
            "and the executors under Java Flight Recorder; task times summed per query and per stage of its "
            "micro-batches (1/3: the first of three stages, which reads the topic):",
            *table(["job", "query", "stage", "tasks", "executor run s", "share of the job", "CPU s",
                    "shuffle records read / written", "executor µs per record"], rows), *profiles]


def md_parsing(p: dict) -> list[str]:
    return [f"**JSON path**, {p['records']:,} cached app-event records, local[2], noop sink, best of two:",
            *table(["step", "s", "records/s"],
                   [[name, r["seconds"], r["rows_per_s"]] for name, r in p["steps"].items()])]


def md_sweep(w: dict) -> list[str]:
    rows = [[r["setting"] + _failed(r), r["round"], r["rows_per_s_in_batches"], r["vs_defaults"], r["wall_s"],
             r["batches"], f"{r['batch_ms_p50']} / {r['batch_ms_max']}", _rss(r)] for r in w["runs"]]
    return [f"**Tuning sweep**, event_aggregation `--available-now` over {w['events']:,} app events, one setting "
            "changed per run (vs defaults: against the mean of the defaults' runs):",
            *table(["setting", "round", "rows/s (in batches)", "vs defaults", "wall s", "batches",
                    "batch p50 / max ms", "peak RSS driver / executor MiB"], rows)]


def md_startup(st: dict) -> list[str]:
    launch, recovery = st["launch"], st["recovery"]
    marks = ["python_started", "session_ready", "queries_started", "first_batch", "first_batch_main_query"]
    rows = [[name, i + 1, *(r[m] for m in marks)] for name, runs in launch["runs"].items() for i, r in enumerate(runs)]
    kills = [[name, ", ".join(str(s) for s in secs), recovery["median_s"][name]]
             for name, secs in recovery["kill_to_next_batch_s"].items()]
    return [f"**Start-up**: event_aggregation on the idle 2-worker cluster over {launch['events']:,} app events, "
            "seconds from spark-submit to each mark in the job's log; \"before\" = connector jars by --jars and no "
            "CDS archive, \"class path\" = the jars on the class path, \"class path + CDS\" = and the "
            "class-data-sharing archives of tools/cds.py, \"class path + CDS + C1 driver\" = as jobs start by "
            "default (the driver JVM compiles with C1 only; before it, the default was class path + CDS):",
            *table(["launch", "round", "Python started", "session ready", "queries started", "first committed batch",
                    "first batch of the windows query"], rows),
            "", "**Recovery**: the driver (spark-submit JVM + Python) SIGKILLed under the orchestrator while 100 "
            "records/s arrive; \"before\" = jars by --jars, no CDS, 5 s backoff after every crash; \"after\" = "
            "class path, CDS, restart at once after a stable run (the default); \"standby\" = as after, with a warm "
            "standby driver that takes over (`standby: true` in configs/jobs.yaml):",
            *table(["launch and restart", "kill → next committed batch s", "median s"], kills)]


def md_latency(runs: list) -> list[str]:
    jobs = ("event_aggregation", "data_enrichment")

    def v(value, none: str = "–") -> str:
        return none if value is None else str(value)

    rows = [[f"{r['target_records_per_s']:,.0f}", r["app_events_per_s"], "yes" if r["kept_up"] else "no",
             r["drained_s_after_generator"],
             *(f"{v(r['jobs'][j]['batch_ms_p50'])} / {v(r['jobs'][j]['batch_ms_p95'])} ({r['jobs'][j]['batches']})"
               for j in jobs),
             " / ".join(v(r["jobs"][j].get("warmup_batch_ms_max")) for j in jobs),
             " / ".join(v(r["jobs"][j].get("caught_up_s", "–"), "never") for j in jobs),  # "–": not measured
             " / ".join(v(r["enriched_e2e_s"][k]) for k in ("p50", "p95", "max"))]
            for r in runs]
    warmup = runs[0].get("warmup_s", 0)
    return ["**Latency with all four jobs**, each in continuous mode on the cluster (trigger "
            f"{runs[0]['trigger_s']:.0f} s) while the generator produces at a fixed rate over the four topics "
            f"for {runs[0]['seconds']:.0f} s. The percentiles are of the steady state: the first {warmup} s, "
            "and each job's batches until it caught up after its cold start (cold executors' first loaded "
            "batches, then longer ones with the rows that arrived meanwhile, until one fits in the trigger), "
            "are left out and shown apart: the slowest of them, and when the job caught up (seconds from the "
            "generator's start). Kept up = each job caught up and drained within two triggers of the generator "
            "stopping. End to end = from a row's Kafka timestamp to the commit of the micro-batch that made "
            "it readable:",
            *table(["target records/s", "app events/s in", "both kept up", "drained after generator stop s",
                    "event_aggregation batch p50 / p95 ms (batches)", "data_enrichment batch p50 / p95 ms (batches)",
                    "slowest batch before the steady state ms (EA / DE)", "caught up after s (EA / DE)",
                    "enriched_events end to end p50 / p95 / max s"], rows)]


def md_peer(p: dict) -> list[str]:
    rows = []
    for job, r in p.items():
        if not isinstance(r, dict):
            continue
        pr, peer = r["project"], r["peer"]
        rows.append([job, r["topic"], pr["wall_s"], peer["wall_s"], r["ratio_wall"],
                     f"{pr.get('executor_cpu_s', '–')} / {peer.get('executor_cpu_s', '–')}", r.get("ratio_cpu", "–"),
                     pr["rows"], peer["rows"],
                     ", ".join(f"{q} {s}" for q, s in pr["batch_s_by_query"].items()), peer["batch_s"],
                     "yes" if r["same_output"] else "NO"])
    return [f"**Price of correctness**: each job `--available-now` against its plain peer (benchmarks/peer.py: "
            f"from_json with the topic schema, no reasons, no quarantine; same windows, de-duplication and output) "
            f"over the same {p['events']:,} synthetic records of the job's topic"
            + (f" (about one in {p['malformed_every']:,} not JSON: quarantined by the job, dropped by the peer)"
               if p.get("malformed_every") else "")
            + ", one after the other on the idle "
            "cluster; where a job's aggregation is a pure function of typed rows (sessions, CDC summary), the peer "
            "calls the same function; "
            "ratio = peer wall / project wall (above 1: the project is faster); CPU ratio = the same of the "
            "executors' CPU time (Spark's event log, on for both; steadier than wall time on a shared machine):",
            *table(["job", "topic", "project wall s", "peer wall s", "ratio", "executor CPU s (project / peer)",
                    "CPU ratio", "project rows read", "peer rows read",
                    "project batch s per query", "peer batch s", "same output"], rows)]


def md_batch(b: dict) -> list[str]:
    jobs = [k for k, v in b.items() if isinstance(v, dict) and "spark_s" in v]
    rows = [[name, b[name]["spark_s"], b[name]["duckdb_s"], b[name]["ratio"],
             f"{b[name]['rows']:,} ({'yes' if b[name]['rows_match'] else 'NO'})"] for name in jobs]
    return [f"**Batch**, {b['events']:,} events (3 days) as Parquet; Spark on the 2-worker cluster (session start "
            f"{b['session_start_s']} s, not included) vs DuckDB on the same files, both de-duplicating on event_id:",
            *table(["job", "Spark s", "DuckDB s", "ratio", "output rows (same in both)"], rows),
            f"\nSpark reading the columns the jobs use from all {b['events']:,} rows, and nothing else, "
            f"takes {b['spark_scan_s']} s."]


def md_backfill(b: dict) -> list[str]:
    per_hour = f"one run per hour ({b['hours']} applications)"
    if b.get("singles_estimated"):
        per_hour += f", estimated: {b['singles_run']} of them timed, their mean × {b['hours']}"
    return [f"**Hourly backfill** of {b['hours']} hours ({b['events']:,} events as enriched_events Parquet), "
            "spark-submit on the 2-worker cluster, `--force` (no streaming watermarks here):",
            *table(["how", "wall s"], [["one ranged run (`--from-hour … --to-hour …`, one application)", b["range_s"]],
                                       [per_hour, b["singles_s"]]]),
            f"\nThe range took 1/{b['speedup']} of the time; outputs identical: "
            f"{'yes' if b['outputs_identical'] else 'NO'}."]


def md_small_files(sf: dict) -> list[str]:
    rows = [[n, r["files"], r["write_s"], r["hourly_range_s"], r["daily_s"]] for n, r in sf["layouts"].items()]
    return [f"**Small files**: {sf['days']} days of enriched_events ({sf['events']:,} events) written with a given "
            "number of files per hour (147: what the 10 s trigger left per hour in the sustained runs; 25: a 1-minute "
            "trigger; 1: compacted), then on each, spark-submit on the 2-worker cluster: an hourly backfill of "
            f"{sf['hours']} hours of the last day as one ranged run, and the last day's daily summary:",
            *table(["files per hour", "files in all", "write s", f"hourly backfill of {sf['hours']} h, s",
                    "daily summary of one day, s"], rows)]


def md_storage(st: dict) -> list[str]:
    s, b = st["streaming"], st["backfill"]
    rows = [["event_aggregation `--available-now`, rows/s in batches", f"{s['local']['rows_per_s_in_batches']:,}",
             f"{s['s3']['rows_per_s_in_batches']:,}", s["s3_vs_local"]],
            ["event_aggregation, wall s", s["local"]["wall_s"], s["s3"]["wall_s"], ""],
            [f"hourly backfill of {st['hours']} hours, wall s", b["local"]["wall_s"], b["s3"]["wall_s"],
             b["s3_vs_local"]]]
    return [f"**Storage**, local disk against S3A on the stack's S3-compatible server (moto, in memory, on the "
            f"same machine): {st['events']:,} app events streamed, {st['batch_events']:,} events backfilled; "
            "S3/local is the ratio of the figures (throughput: below 1 is slower; wall time: above 1 is slower):",
            *table(["what", "local disk", "S3", "S3 / local"], rows)]


# Area -> (title, renderer, the label its section starts with in the history).
AREAS = {
    "generator": ("Generator", md_generator, "**Generator**"),
    "streaming": ("Streaming throughput", md_streaming, "**Streaming**"),
    "sustained": ("Sustained rate and latency", md_sustained, "**Sustained rate**"),
    "latency": ("Latency with all four jobs", md_latency, "**Latency with all four jobs**"),
    "parsing": ("The JSON path", md_parsing, "**JSON path**"),
    "stages": ("Where the time goes", md_stages, "**Where the time goes**"),
    "sweep": ("Tuning sweep", md_sweep, "**Tuning sweep**"),
    "startup": ("Start-up and recovery", md_startup, "**Start-up**"),
    "peer": ("Price of correctness", md_peer, "**Price of correctness**"),
    "peer_malformed": ("Price of correctness with malformed records", md_peer, "not JSON: quarantined by the job"),
    "batch": ("Batch jobs against DuckDB", md_batch, "**Batch**"),
    "backfill": ("Backfill", md_backfill, "**Hourly backfill**"),
    "small_files": ("Small files", md_small_files, "**Small files**"),
    "storage": ("Local disk against object storage", md_storage, "**Storage**"),
}


def md_goals(results: dict[str, dict]) -> list[str]:
    """The goals table from each area's stored record ({area: record with git and result})."""
    return table(["figure", "measured", "goal", "", "run"], goal_rows(results))


def run_section(results: dict) -> str:
    """One run, for the history."""
    lines = [f"\n## Run of {results['when']}\n", f"Machine: {results['machine']}\n",
             f"Command: `{results['command']}`\n"]
    if results.get("cpu_probe"):
        lines.append("CPU probe before → after each area (benchmarks.common.cpu_probe; higher: a busier host): "
                     + ", ".join(f"{a} {b} → {c} s" for a, (b, c) in results["cpu_probe"].items()) + "\n")
    for area, (_title, render, _label) in AREAS.items():
        if area in results:
            lines += ["", "- " + "\n".join(render(results[area]))]
    return "\n".join(lines) + "\n"


def store(results: dict, git: str, only: str | None = None) -> None:
    """Each area of a run (or only the one named) as that area's newest result."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    for area in AREAS:
        if area in results and only in (None, area):
            record = {k: results[k] for k in ("when", "machine", "command")} | {"git": git, "result": results[area]}
            if area in results.get("cpu_probe", {}):
                record["cpu_probe"] = results["cpu_probe"][area]
            (RESULTS / f"{area}.json").write_text(json.dumps(record, indent=1) + "\n")


def _last_in_history(label: str) -> str | None:
    """'<date> (git <rev>)' of the newest run in the history with a section starting with `label`."""
    text = HISTORY.read_text() if HISTORY.exists() else ""
    found = None
    for block in re.split(r"\n(?=## )", text):
        if label in block:
            head = re.match(r"## (?:Run of )?(\S+)", block)
            rev = re.search(r"git (\w+)", block)
            found = f"{head.group(1) if head else '?'}" + (f" (git {rev.group(1)})" if rev else "")
    return found


def write_summary() -> str:
    """BENCHMARKS.md from the stored results (and the plots of the areas that have one)."""
    lines = ["# Benchmarks", "",
             "The newest figures of each area, each with its date, git revision, machine and command. "
             "`make bench` (benchmarks/run.py) rewrites this file and the plots from "
             "benchmarks/results/<area>.json; every run, and the measurements by hand, are in "
             "[benchmarks/history.md](benchmarks/history.md), oldest first. The machines are shared and "
             "noisy: compare figures from one run (one area's table), not across areas. Runs since 2026-12-01 "
             "carry a CPU probe taken before and after the area (a fixed Python loop on every core at once, "
             "benchmarks.common.cpu_probe: 0.35 s on the idle vm): a higher probe means a busier host."]
    PLOTS.mkdir(parents=True, exist_ok=True)
    stored = {area: json.loads((RESULTS / f"{area}.json").read_text()) for area in AREAS
              if (RESULTS / f"{area}.json").exists()}
    lines += ["", "## What users feel: the goals", "",
              "From the newest result of each area "
              "(`make bench BENCH_ARGS=\"--only startup,peer,latency,backfill\"`):",
              *md_goals(stored)]
    for area, (title, render, label) in AREAS.items():
        lines += ["", f"## {title}", ""]
        path = RESULTS / f"{area}.json"
        if not path.exists():
            last = _last_in_history(label)
            lines.append("Not run since results are stored per area"
                         + (f"; the newest figures are in the history, run of {last}." if last else "."))
            continue
        record = json.loads(path.read_text())
        probe = record.get("cpu_probe")
        lines += [f"{record['when'][:16].replace('T', ' ')} UTC, git {record['git']}, `{record['command']}`; "
                  f"{record['machine']}" + (f"; CPU probe {probe[0]} → {probe[1]} s" if probe else ""),
                  "", *render(record["result"])]
        if area in PLOTTERS:
            PLOTTERS[area](record["result"], PLOTS / f"{area}.png")
            lines += ["", f"![{title}](benchmarks/plots/{area}.png)"]
    text = "\n".join(lines) + "\n"
    SUMMARY.write_text(text)
    return text
