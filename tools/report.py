"""Usage: python -m tools.report [--output-root LOCATION]

A readable report of the output datasets: row counts and samples, the daily KPIs, segment
counts, quarantine counts by reason, and where to look next.
"""

from __future__ import annotations

import argparse
import sys

import pandas as pd
import pyarrow.fs as pafs

from configs import locations
from configs.spark_config import load_settings
from utils import files

DATASETS = ("events_aggregated_realtime", "clickstream_sessions", "cdc_transformed", "cdc_table_summary",
            "enriched_events", "external_data", "hourly_aggregates", "daily_summaries", "user_segments")
SAMPLE_COLUMNS = {
    "events_aggregated_realtime": ["window_start", "user_id", "event_type", "app_type", "event_count"],
    "clickstream_sessions": ["session_id", "user_id", "duration_seconds", "click_count", "entry_page", "exit_page"],
    "cdc_transformed": ["table_name", "operation", "primary_key", "changed_columns", "capture_lag_ms"],
    "cdc_table_summary": ["window_start", "table_name", "inserts", "updates", "deletes", "snapshots"],
    "enriched_events": ["event_id", "event_type", "user_id", "user_known", "plan", "country", "segment"],
    "external_data": ["record_id", "source", "fetched_at", "payload_json"],
    "hourly_aggregates": ["hour_start", "event_type", "app_type", "event_count", "unique_users", "unique_sessions"],
    "user_segments": ["user_id", "total_events", "engagement_score", "segment", "preferred_app_type"],
}


def read(root: str, name: str) -> pd.DataFrame | None:
    """A dataset as its readers see it (a streaming sink: only its committed files)."""
    return files.read_dataset(locations.join(root, name))


def quarantined_topics(root: str) -> list[str]:
    fs, path = files.filesystem(locations.join(root, "_quarantine"))
    if not files.exists(fs, path):
        return []
    return sorted(i.base_name for i in fs.get_file_info(pafs.FileSelector(path))
                  if i.type == pafs.FileType.Directory)


def section(title: str) -> str:
    return f"\n{title}\n{'-' * len(title)}"


def render(root: str) -> str:
    pd.set_option("display.width", 160)
    pd.set_option("display.max_colwidth", 40)
    out = [f"Output datasets under {root}"]
    frames = {name: read(root, name) for name in DATASETS}
    out.append(section("Row counts"))
    for name, df in frames.items():
        out.append(f"  {name:28} {'(not written yet)' if df is None else f'{len(df):>10,} rows'}")
    for name, cols in SAMPLE_COLUMNS.items():
        df = frames[name]
        if df is not None and len(df):
            out.append(section(f"{name}: 3 sample rows"))
            out.append(df[[c for c in cols if c in df.columns]].head(3).to_string(index=False))
    daily = frames["daily_summaries"]
    if daily is not None:
        out.append(section("Daily KPIs (daily_summaries)"))
        cols = ["summary_date", "app_type", "total_events", "active_users", "total_sessions",
                "avg_session_duration_s", "p50_session_duration_s", "p95_session_duration_s",
                "p50_events_per_user", "p95_events_per_user"]
        daily = daily.assign(summary_date=daily.summary_date.astype(str))
        out.append(daily.sort_values(["summary_date", "app_type"])[cols].round(1).to_string(index=False))
    segments = frames["user_segments"]
    if segments is not None:
        out.append(section("Segments (latest user_segments)"))
        as_of = segments.as_of_date.astype(str)  # partition columns come back as categoricals
        latest = segments[as_of == as_of.max()]
        counts = latest.segment.value_counts().reindex(["VIP", "Active", "Regular", "Inactive"]).fillna(0)
        out.extend(f"  {seg:9} {int(n):>7,}" for seg, n in counts.items())
    out.append(section("Quarantine (malformed records, by topic and reason)"))
    any_bad = False
    for topic in quarantined_topics(root):
        df = read(locations.join(root, "_quarantine"), topic)
        if df is None:
            continue
        any_bad = True
        out.append(f"  {topic}: {len(df):,} records")
        reasons = df.error.str.replace(r": .*$", "", regex=True).value_counts().head(8)
        out.extend(f"      {n:>6,}  {reason}" for reason, n in reasons.items())
    if not any_bad:
        out.append("  none")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.report", description=__doc__.split("\n\n")[1])
    parser.add_argument("--output-root", type=locations.normalize, default=None,
                        help="a path or s3a://bucket/prefix (default: OUTPUT_ROOT)")
    args = parser.parse_args(argv)
    print(render(args.output_root or load_settings().output_root))
    return 0


if __name__ == "__main__":
    sys.exit(main())
