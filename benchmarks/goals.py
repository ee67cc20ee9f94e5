"""The goals of the figures users feel (issue 25), as rows of BENCHMARKS.md's first table."""

from __future__ import annotations

from benchmarks import latency
from benchmarks.startup import DEFAULT_LAUNCH


def default_launch(medians: dict):
    """The default launch's figure: DEFAULT_LAUNCH since SPARK_DRIVER_C1_ONLY (2026-12-01),
    "class path + CDS" in the results of earlier runs."""
    return medians.get(DEFAULT_LAUNCH, medians.get("class path + CDS"))


# Each goal: label, area, figure from the area's result
# (None: not measured), goal, met. A figure is rendered as it comes.
GOALS = [
    ("spark-submit → first committed micro-batch, idle cluster, default launch (median, s)", "startup",
     lambda r: default_launch(r["launch"]["median_first_batch_s"]), "≤ 15 s", lambda v: v <= 15),
    ("driver SIGKILL → next committed batch under the orchestrator (median, s)", "startup",
     lambda r: r["recovery"]["median_s"]["after"], "≤ 20 s", lambda v: v <= 20),
    ("the same with a warm standby driver (`standby: true` in configs/jobs.yaml; median, s)", "startup",
     lambda r: r["recovery"]["median_s"].get("standby"), "≤ 20 s", lambda v: v <= 20),
    ("price of correctness: throughput of a job / its plain peer's, the lowest of the four streaming jobs", "peer",
     lambda r: min(v["ratio_wall"] for v in r.values() if isinstance(v, dict)), "≥ 1.0", lambda v: v >= 1.0),
    ("micro-batch p95 in the steady state at the highest rate both kept up, all four jobs running: "
     "event_aggregation, data_enrichment (s; app events/s)", "latency", latency.p95_at_highest_kept_up,
     "≤ trigger (10 s)", lambda v: isinstance(v, tuple) and max(v[0], v[1]) <= 10),
    ("the highest rate at which both kept up with their micro-batch p95 within the trigger, all four jobs running",
     "latency", latency.highest_rate_within_trigger, "(the rate to report)", lambda v: None),
    ("hourly backfill: one ranged run vs one application per hour (wall s)", "backfill",
     lambda r: f"{r['hours']} h: {r['range_s']} vs {r['singles_s']}"
               + (" (estimated)" if r.get("singles_estimated") else ""),
     "faster (no threshold)", lambda v: None),
]


def goal_rows(results: dict[str, dict]) -> list[list]:
    """[figure, measured, goal, verdict, run] per goal, from each area's stored record
    ({area: record with git and result})."""
    rows = []
    for label, area, figure, goal, met in GOALS:
        record = results.get(area)
        value = figure(record["result"]) if record else None
        verdict = "not measured" if value is None else {True: "met", False: "not met", None: "—"}[met(value)]
        shown = (f"{value[0]:.1f}, {value[1]:.1f} at {value[2]:,}" if isinstance(value, tuple) else value) \
            if value is not None else ""
        rows.append([label, shown, goal, verdict, f"git {record['git']}, {record['when'][:10]}" if record else ""])
    return rows
