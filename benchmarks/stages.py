"""Where a Spark application's executor time went, from its event log (spark.eventLog.enabled).

The driver's UI and REST API disappear with the application; the event log stays, so a job run in
`--available-now` mode can be broken down after it exits. Each task's run time and CPU time is
summed per stage; stages are named by the streaming query whose micro-batch ran them (the first
line of the job description Spark sets) and by their place in that job: "1/3" is the first of
three stages (it reads the source; later stages read the shuffle of the one before), "1/1" a
job of one stage (a stateless query, or a broadcast of static data inside a micro-batch).
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

OTHER = "(not a micro-batch)"


def _query_name(properties: dict) -> str:
    """A micro-batch job's description is "<query name>\\nid = ...\\nrunId = ...\\nbatch = N"."""
    if "sql.streaming.queryId" not in properties:
        return OTHER
    return (properties.get("spark.job.description") or "").split("\n", 1)[0] or properties["sql.streaming.queryId"]


def stage_times(event_log: Path) -> list[dict]:
    """One row per (query, place of the stage in its job): tasks, executor run/CPU seconds and
    the records the stage read from and wrote to shuffles, summed over every micro-batch."""
    place: dict[int, tuple[str, str]] = {}
    rows: dict[tuple[str, str], dict] = defaultdict(lambda: {
        "tasks": 0, "run_s": 0.0, "cpu_s": 0.0, "shuffle_read_records": 0, "shuffle_write_records": 0})
    with event_log.open(encoding="utf-8") as f:
        for line in f:
            event = json.loads(line)
            kind = event["Event"]
            if kind == "SparkListenerJobStart":
                query = _query_name(event.get("Properties") or {})
                stages = sorted(event["Stage IDs"])
                for i, stage in enumerate(stages, start=1):
                    place[stage] = (query, f"{i}/{len(stages)}")
            elif kind == "SparkListenerTaskEnd" and event.get("Task Metrics"):
                m = event["Task Metrics"]
                row = rows[place.get(event["Stage ID"], (OTHER, "?"))]
                row["tasks"] += 1
                row["run_s"] += m["Executor Run Time"] / 1e3
                row["cpu_s"] += m["Executor CPU Time"] / 1e9
                row["shuffle_read_records"] += m["Shuffle Read Metrics"]["Total Records Read"]
                row["shuffle_write_records"] += m["Shuffle Write Metrics"]["Shuffle Records Written"]
    total = sum(r["run_s"] for r in rows.values()) or 1.0
    return [{"query": query, "stage": stage, **{k: round(v, 1) if isinstance(v, float) else v for k, v in r.items()},
             "share": round(r["run_s"] / total, 3)}
            for (query, stage), r in sorted(rows.items())]


def executor_cpu_s(folder: Path) -> float:
    """The executors' CPU seconds of the one application whose event log is in `folder`."""
    (log,) = folder.iterdir()
    return round(sum(r["cpu_s"] for r in stage_times(log)), 1)
