"""Independent expectations computed from the generator's ground truth, in plain Python.

Nothing here imports the code under test: it reads the JSON Lines the generator wrote and
applies the contract's definitions directly (CONTRACT §3).
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

from dateutil import parser as dtparser


def load(truth_dir: Path, topic: str) -> list[dict]:
    with (truth_dir / f"{topic}.jsonl").open(encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def ts(text: str) -> datetime:
    return dtparser.isoparse(text).astimezone(UTC)


def accepted(truth_dir: Path, topic: str, id_field: str) -> list[dict]:
    """Records a job should keep: well-formed, first delivery, not late (the tests make late
    records arrive far behind the watermark, so they are all dropped)."""
    seen, out = set(), []
    for rec in load(truth_dir, topic):
        if rec["kind"] != "valid":
            continue
        obj = json.loads(rec["value"])
        if obj[id_field] not in seen:
            seen.add(obj[id_field])
            out.append(obj)
    return out


def max_event_time(truth_dir: Path, topic: str, field: str) -> datetime:
    """The largest event time a job sees (any well-formed delivery, late ones included)."""
    return max(ts(json.loads(r["value"])[field]) for r in load(truth_dir, topic)
               if r["kind"] in ("valid", "late", "duplicate"))


def event_windows(truth_dir: Path, *, watermark: timedelta) -> dict[tuple, tuple[int, list[str]]]:
    """(window_start, user, type, app) -> (distinct events, sorted session ids), closed windows."""
    closed_before = max_event_time(truth_dir, "app_events", "event_timestamp") - watermark
    counts: dict[tuple, int] = Counter()
    sessions: dict[tuple, set] = defaultdict(set)
    for e in accepted(truth_dir, "app_events", "event_id"):
        t = ts(e["event_timestamp"])
        start = t.replace(second=0, microsecond=0)
        if start + timedelta(minutes=1) > closed_before:
            continue
        key = (start, e["user_id"], e["event_type"], e["app_type"])
        counts[key] += 1
        sessions[key].add(e["session_id"])
    return {k: (n, sorted(sessions[k])) for k, n in counts.items()}


def sessions(truth_dir: Path, *, gap: timedelta, watermark: timedelta) -> dict[tuple, dict]:
    """(session_id, session_start) -> expected session row, for sessions the watermark closed."""
    closed_before = max_event_time(truth_dir, "clickstream", "event_timestamp") - watermark
    by_session: dict[str, list] = defaultdict(list)
    for c in accepted(truth_dir, "clickstream", "click_id"):
        by_session[c["session_id"]].append((ts(c["event_timestamp"]), c["click_id"], c))
    out = {}
    for sid, clicks in by_session.items():
        clicks.sort(key=lambda x: (x[0], x[1]))
        groups, current = [], [clicks[0]]
        for click in clicks[1:]:
            if click[0] - current[-1][0] >= gap:
                groups.append(current)
                current = []
            current.append(click)
        groups.append(current)
        for g in groups:
            if g[-1][0] + gap > closed_before:
                continue
            pages = [c[2]["page_url"] for c in g]
            out[(sid, g[0][0])] = {
                "user_id": g[0][2]["user_id"], "app_type": g[0][2]["app_type"],
                "session_end": g[-1][0], "duration_seconds": (g[-1][0] - g[0][0]).total_seconds(),
                "click_count": len(g), "unique_pages": len(set(pages)),
                "entry_page": pages[0], "exit_page": pages[-1], "click_path": pages,
            }
    return out


CDC_OPS = {"c": "INSERT", "u": "UPDATE", "d": "DELETE", "r": "SNAPSHOT", "t": "TRUNCATE"}


def cdc_changes(truth_dir: Path) -> list[dict]:
    """The envelopes of valid change events (tombstones and op m messages left out)."""
    out = []
    for rec in load(truth_dir, "cdc_changes"):
        if rec["kind"] != "valid":
            continue
        env = json.loads(rec["value"])
        env = env.get("payload", env) if "op" not in env else env
        if env["op"] != "m":
            out.append(env)
    return out


def _table(env: dict) -> str:
    return f"{env['source']['schema']}.{env['source']['table']}"


def _source_time(env: dict) -> datetime:
    return datetime.fromtimestamp(env["source"]["ts_ms"] / 1000, UTC)


def cdc_operation_counts(truth_dir: Path) -> Counter:
    """(table_name, operation) -> count, over valid non-tombstone change events."""
    return Counter((_table(e), CDC_OPS[e["op"]]) for e in cdc_changes(truth_dir))


def cdc_summary(truth_dir: Path, *, watermark: timedelta) -> dict[tuple, Counter]:
    """(minute window start, table_name) -> operation counts, for the windows the watermark
    (the largest source time minus `watermark`) closed. The generator sends no late change."""
    changes = cdc_changes(truth_dir)
    closed_before = max(_source_time(e) for e in changes) - watermark
    out: dict[tuple, Counter] = defaultdict(Counter)
    for e in changes:
        start = _source_time(e).replace(second=0, microsecond=0)
        if start + timedelta(minutes=1) <= closed_before:
            out[(start, _table(e))][CDC_OPS[e["op"]]] += 1
    return dict(out)


def malformed(truth_dir: Path, topic: str) -> list[dict]:
    return [r for r in load(truth_dir, topic) if r["kind"] == "malformed"]


def malformed_values(truth_dir: Path, topic: str) -> Counter:
    """The raw bytes of each malformed record as produced (quarantine keeps them in base64)."""
    return Counter(r["value"].encode("latin-1" if r["binary"] else "utf-8") for r in malformed(truth_dir, topic))


def tombstones(truth_dir: Path) -> int:
    return sum(1 for r in load(truth_dir, "cdc_changes") if r["kind"] == "tombstone")


# --- batch KPIs ------------------------------------------------------------------------------------


def hourly(truth_dir: Path) -> dict[tuple, tuple[int, int, int]]:
    """(hour_start, event_type, app_type) -> (events, unique users, unique sessions)."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for e in accepted(truth_dir, "app_events", "event_id"):
        hour = ts(e["event_timestamp"]).replace(minute=0, second=0, microsecond=0)
        groups[(hour, e["event_type"], e["app_type"])].append(e)
    return {k: (len(v), len({e["user_id"] for e in v}), len({e["session_id"] for e in v}))
            for k, v in groups.items()}


def within_rank_error(values: list[float], reported: float, q: float, tolerance: float = 0.01) -> bool:
    """True when `reported` sits within `tolerance` rank error of the exact q-quantile."""
    ordered = sorted(values)
    n = len(ordered)
    below = sum(1 for v in ordered if v < reported - 1e-9)
    at_or_below = sum(1 for v in ordered if v <= reported + 1e-9)
    return below / n <= q + tolerance and at_or_below / n >= q - tolerance


def daily_inputs(truth_dir: Path, day, *, gap: timedelta, watermark: timedelta) -> dict[str, dict]:
    """Per app_type and 'all': events per user and the day's closed sessions."""
    out: dict[str, dict] = defaultdict(lambda: {"events_per_user": Counter(), "sessions": []})
    for e in accepted(truth_dir, "app_events", "event_id"):
        if ts(e["event_timestamp"]).date() == day:
            for key in (e["app_type"], "all"):
                out[key]["events_per_user"][e["user_id"]] += 1
    for (_, start), s in sessions(truth_dir, gap=gap, watermark=watermark).items():
        if start.date() == day:
            for key in (s["app_type"], "all"):
                out[key]["sessions"].append(s)
    return dict(out)


def user_activity(truth_dir: Path, first, last) -> dict[str, dict]:
    """Per user over [first, last]: events, active days, sessions, purchases, revenue."""
    users: dict[str, dict] = defaultdict(lambda: {"events": 0, "days": set(), "sessions": set(),
                                                  "purchases": 0, "revenue": 0.0})
    for e in accepted(truth_dir, "app_events", "event_id"):
        t = ts(e["event_timestamp"])
        if first <= t.date() <= last:
            u = users[e["user_id"]]
            u["events"] += 1
            u["days"].add(t.date())
            u["sessions"].add(e["session_id"])
            if e["event_type"] == "purchase":
                u["purchases"] += 1
                u["revenue"] += e.get("revenue") or 0.0
    return dict(users)
