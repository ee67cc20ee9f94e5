"""Usage: python -m tools.new_job NAME --kind streaming|batch [--topic app_events|clickstream]
                                  [--interval hour|day]
       python -m tools.new_job NAME --remove

Adds a job in the house style: a thin script (jobs/streaming/NAME.py or jobs/batch/NAME.py) over
a pure function, a disabled entry in configs/jobs.yaml (streaming: the topic it reads; batch: its
schedule, interval and upstream query), and a unit test on five rows (tests/unit/test_NAME.py).
Then: write the computation, run `python -m pytest tests/unit/test_NAME.py`, and set
`enabled: true` in the registry. --remove deletes exactly what it created.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from string import Template

from configs.spark_config import JOB_REGISTRY_PATH, PROJECT_ROOT, load_job_registry

TEMPLATES = Path(__file__).resolve().parent / "templates"
TOPICS = {  # contract topic -> (validation spec, extraction, id column, a valid record)
    "app_events": ("APP_EVENTS_SPEC", "extract_app_events", "event_id",
                   '{"event_id": f"id-{i}", "event_type": "click", "user_id": "u1", "session_id": "s1",\n'
                   '             "app_type": "web", "event_timestamp": f"2026-11-25T20:00:0{i}Z"}'),
    "clickstream": ("CLICKSTREAM_SPEC", "extract_clicks", "click_id",
                    '{"click_id": f"id-{i}", "session_id": "s1", "user_id": "u1", "page_url": "/home",\n'
                    '             "app_type": "web", "event_timestamp": f"2026-11-25T20:00:0{i}Z"}'),
}


def paths(name: str, kind: str) -> tuple[Path, Path]:
    return PROJECT_ROOT / "jobs" / kind / f"{name}.py", PROJECT_ROOT / "tests" / "unit" / f"test_{name}.py"


def registry_entry(name: str, kind: str, topic: str, interval: str) -> str:
    head = (f"\n  {name}:\n    kind: {kind}\n    script: jobs/{kind}/{name}.py\n"
            f"    description: TODO (created by tools.new_job)\n"
            f"    enabled: false          # true once the job is written and tested\n")
    if kind == "streaming":
        return head + f"    topics: [{topic}]\n"
    schedule, max_range = ('"15 * * * *"', 168) if interval == "hour" else ('"50 0 * * *"', 31)
    return head + (f"    schedule: {schedule}\n    interval: {interval}\n"
                   f"    upstream:\n      - {{job: data_enrichment, query: enriched_events}}\n"
                   f"    max_range: {max_range}\n")


def create(name: str, kind: str, topic: str, interval: str, registry: Path) -> list[Path]:
    script, test = paths(name, kind)
    spec, extract, id_col, sample = TOPICS[topic]
    hourly = interval == "hour"
    fields = {
        "name": name, "title": name.replace("_", " ").capitalize(), "topic": topic, "spec": spec,
        "extract": extract, "id_col": id_col, "sample": sample, "interval": interval,
        "unit": "hour" if hourly else "date", "example": '"YYYY-MM-DD HH:00:00"' if hourly else "YYYY-MM-DD",
        "partition_doc": "event_date, hour" if hourly else "event_date",
        "partition": ('{"event_date": interval.day, "hour": interval.start.hour}' if hourly
                      else '{"event_date": interval.day}'),
        "select_events": "events_in_hour(events, interval.start)" if hourly else "events",
        "add_hour": '.withColumn("hour", F.lit(interval.start.hour))' if hourly else "",
        "kpis_import": "from utils.kpis import events_in_hour\n" if hourly else "",
    }
    script.write_text(Template((TEMPLATES / f"{kind}_job.py.tmpl").read_text()).substitute(fields))
    test.write_text(Template((TEMPLATES / f"test_{kind}_job.py.tmpl").read_text()).substitute(fields))
    with registry.open("a", encoding="utf-8") as f:
        f.write(registry_entry(name, kind, topic, interval))
    load_job_registry(registry)  # the entry is valid
    return [script, test, registry]


def remove(name: str, registry: Path) -> list[Path]:
    """Delete the job's script, test and registry entry (as created by this tool)."""
    removed = []
    for kind in ("streaming", "batch"):
        for path in paths(name, kind):
            if path.exists():
                path.unlink()
                removed.append(path)
    text = registry.read_text(encoding="utf-8")
    # The entry: its "  name:" line and every more-indented line after it.
    pruned = re.sub(rf"\n  {re.escape(name)}:\n(?:    .*\n)+", "\n", text)
    if pruned != text:
        registry.write_text(pruned.rstrip("\n") + "\n", encoding="utf-8")
        removed.append(registry)
    return removed


def _shown(path: Path) -> str:
    return str(path.relative_to(PROJECT_ROOT)) if path.is_relative_to(PROJECT_ROOT) else str(path)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.new_job", description=__doc__.split("\n\n")[1])
    p.add_argument("name", help="the job's name: lower case, digits and underscores, e.g. page_funnel")
    p.add_argument("--kind", choices=["streaming", "batch"])
    p.add_argument("--topic", choices=sorted(TOPICS), default="app_events", help="streaming: the topic it reads")
    p.add_argument("--interval", choices=["hour", "day"], default="hour", help="batch: what one run covers")
    p.add_argument("--registry", type=Path, default=JOB_REGISTRY_PATH, help=argparse.SUPPRESS)
    p.add_argument("--remove", action="store_true", help="delete the job's script, test and registry entry")
    args = p.parse_args(argv)
    if not re.fullmatch(r"[a-z][a-z0-9_]*", args.name):
        p.error(f"NAME must be lower case letters, digits and underscores, got {args.name!r}")
    if args.remove:
        for path in remove(args.name, args.registry):
            print(f"new_job: removed {args.name} from {_shown(path)}")
        return 0
    if not args.kind:
        p.error("--kind is required (streaming or batch)")
    if args.name in load_job_registry(args.registry) or any(x.exists() for x in paths(args.name, args.kind)):
        p.error(f"NAME: a job {args.name!r} exists already")
    for path in create(args.name, args.kind, args.topic, args.interval, args.registry):
        print(f"new_job: wrote {_shown(path)}")
    print(f"next: write {args.name}_rows, run python -m pytest tests/unit/test_{args.name}.py, "
          f"then set enabled: true in {_shown(args.registry)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
