"""Usage: python -m benchmarks.run [--events N] [--batch-events M] [--only a,b]

Benchmarks on the local stack (started if needed). Each area's figures are printed, stored with the
machine and the git revision in benchmarks/results/<area>.json, and appended to
benchmarks/history.md; BENCHMARKS.md (the newest figures of every area, and the plots) is then
rewritten from the stored results (benchmarks/report.py).

  generator   events/s produced by tools.generate_events into the local broker
  streaming   N synthetic records preloaded to each of app_events, clickstream and cdc_changes;
              per topic the ceiling (read + the same parsing and validation + count) next to
              the jobs reading it (event_aggregation, data_enrichment, clickstream_analysis,
              cdc_transformation) in --available-now mode on the 2-worker cluster; start-up to
              the first micro-batch; peak RSS
  parsing     each step of the JSON path (parse, validation, extraction) over cached records
  stages      each streaming job again with Spark's event log and the executors under Java Flight
              Recorder: executor time per query and stage, and per component of the code
  sustained   event_aggregation alone in continuous mode at fixed generator rates
  latency     all four streaming jobs at fixed generator rates: event_aggregation's and
              data_enrichment's micro-batch p95, enriched rows' end-to-end latency
  startup     spark-submit -> first committed batch phase by phase, and driver SIGKILL -> next
              committed batch under the orchestrator; each start-up lever against its absence
  peer        each job with a plain peer (benchmarks/peer.py) against it on the same topic
  peer_malformed  the same on topics where about one record in --peer-malformed-every is not JSON
              (each micro-batch has some: the quarantine's reread runs for every one)
  sweep       event_aggregation once per tuning setting (not in the default --only: ~15 min)
  batch       M events as enriched_events Parquet; each batch job's computation vs DuckDB doing
              the same on the same files; session start-up separately
  backfill    an hourly backfill (--backfill-hours, default 24) as one ranged run against one
              run per hour (--backfill-single-hours: time only that many, estimate the rest)
  small_files a week of enriched_events with 147, 25 and 1 files per hour: the week's hourly
              backfill and one day's daily summary on each
  storage     event_aggregation and an hourly backfill with the data on local disk and on S3
              (the stack's S3-compatible server), in one run
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import UTC, datetime

from benchmarks import report
from benchmarks.batch import bench_backfill, bench_batch, bench_small_files
from benchmarks.common import cpu_probe, git_revision, machine
from benchmarks.latency import bench_latency
from benchmarks.peer import PEERS, bench_peer
from benchmarks.startup import bench_recovery, bench_startup
from benchmarks.storage import bench_storage
from benchmarks.streaming import (
    STREAMING,
    SWEEP,
    bench_generator,
    bench_parsing,
    bench_stages,
    bench_streaming,
    bench_sustained,
    bench_sweep,
)
from tools import stack


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n\n")[1])
    parser.add_argument("--events", type=int, default=int(os.environ.get("BENCH_EVENTS", "5000000")))
    parser.add_argument("--batch-events", type=int, default=int(os.environ.get("BENCH_BATCH_EVENTS", "10000000")))
    parser.add_argument("--generator-events", type=int, default=100_000)
    parser.add_argument("--sustained-rates", default="5000,15000",
                        help="generator records/s for the sustained-rate runs (comma-separated)")
    parser.add_argument("--sustained-seconds", type=int, default=300)
    parser.add_argument("--streaming-topics", default=",".join(STREAMING),
                        help="topics (and so jobs) of the streaming part (comma-separated)")
    parser.add_argument("--parsing-events", type=int, default=1_000_000)
    parser.add_argument("--stages-events", type=int, default=1_000_000)
    parser.add_argument("--sweep-events", type=int, default=1_000_000)
    parser.add_argument("--sweep-settings", default=",".join(SWEEP), help=f"among {', '.join(SWEEP)}")
    parser.add_argument("--sweep-rounds", type=int, default=1)
    parser.add_argument("--backfill-hours", type=int, default=24)
    parser.add_argument("--backfill-events", type=int, default=1_000_000)
    parser.add_argument("--storage-events", type=int, default=500_000)
    parser.add_argument("--storage-batch-events", type=int, default=1_000_000)
    parser.add_argument("--backfill-single-hours", type=int, default=None,
                        help="time only this many one-hour applications and estimate the rest from their mean")
    parser.add_argument("--startup-rounds", type=int, default=2)
    parser.add_argument("--recovery-kills", type=int, default=2)
    parser.add_argument("--peer-events", type=int, default=1_000_000, help="records of each peer job's topic")
    parser.add_argument("--peer-jobs", default=",".join(PEERS), help=f"among {', '.join(PEERS)}")
    parser.add_argument("--peer-malformed-every", type=int, default=10_000,
                        help="peer_malformed: about one record in this many is not JSON")
    parser.add_argument("--only", default="generator,parsing,streaming,stages,sustained,latency,startup,peer,"
                                          "batch,backfill,small_files,storage",
                        help="areas, comma-separated")
    parser.add_argument("--latency-rates", default="1600,2000,2400",
                        help="generator records/s for the latency runs (all four jobs; comma-separated)")
    parser.add_argument("--latency-seconds", type=int, default=480)
    parser.add_argument("--latency-warmup", type=int, default=180,
                        help="seconds at the start of each latency run left out of its percentiles (the jobs "
                             "catching up after their cold start: reported apart)")
    parser.add_argument("--small-files-events", type=int, default=1_000_000)
    args = parser.parse_args(argv)
    steps = {"generator": lambda: bench_generator(args.generator_events),
             "streaming": lambda: bench_streaming(args.events, args.streaming_topics.split(",")),
             "stages": lambda: bench_stages(args.stages_events, args.streaming_topics.split(",")),
             "sustained": lambda: [bench_sustained(float(r), args.sustained_seconds)
                                   for r in args.sustained_rates.split(",")],
             "parsing": lambda: bench_parsing(args.parsing_events),
             "sweep": lambda: bench_sweep(args.sweep_events, args.sweep_settings.split(","), args.sweep_rounds),
             "startup": lambda: {"launch": bench_startup(args.startup_rounds),
                                 "recovery": bench_recovery(args.recovery_kills)},
             "peer": lambda: bench_peer(args.peer_events, args.peer_jobs.split(",")),
             "peer_malformed": lambda: bench_peer(args.peer_events, args.peer_jobs.split(","),
                                                  malformed_every=args.peer_malformed_every),
             "latency": lambda: [bench_latency(float(r), args.latency_seconds, args.latency_warmup)
                                 for r in args.latency_rates.split(",")],
             "batch": lambda: bench_batch(args.batch_events),
             "backfill": lambda: bench_backfill(args.backfill_hours, args.backfill_events, args.backfill_single_hours),
             "small_files": lambda: bench_small_files(args.small_files_events),
             "storage": lambda: bench_storage(args.storage_events, 6, args.storage_batch_events)}
    # Names checked before the stack starts: a typo fails here, not after an hour of other areas.
    for option, value, known in (("--only", args.only, steps),
                                 ("--peer-jobs", args.peer_jobs, PEERS),
                                 ("--sweep-settings", args.sweep_settings, SWEEP),
                                 ("--streaming-topics", args.streaming_topics, STREAMING)):
        unknown = [name for name in value.split(",") if name not in known]
        if unknown:
            parser.error(f"{option}: unknown {', '.join(unknown)} (known: {', '.join(known)})")
    stack.up()
    git = git_revision()  # the code measured: commits made while a long run goes on are not part of it
    results: dict = {"when": datetime.now(UTC).isoformat(timespec="seconds"), "machine": machine(),
                     "command": "make bench " + " ".join(argv or sys.argv[1:])}
    wanted = args.only.split(",")
    for name, step in steps.items():
        if name in wanted:
            print(f"bench: {name} ...", flush=True)
            probe = cpu_probe()
            results[name] = step()
            results.setdefault("cpu_probe", {})[name] = [probe, cpu_probe()]
            print(json.dumps(results[name], indent=1), flush=True)
            # Kept at once: a later area that fails loses nothing measured before it.
            report.store({**results, name: results[name]}, git, only=name)
    report.store(results, git)
    with report.HISTORY.open("a") as f:
        f.write(report.run_section(results))
    report.write_summary()
    print(report.run_section(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
