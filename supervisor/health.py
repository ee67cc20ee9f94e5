"""Health signals: the Spark master's JSON API and streaming progress staleness."""

from __future__ import annotations

import re
import time
from pathlib import Path

import requests

from utils.spark_utils import read_progress_file

_SECONDS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}


def interval_seconds(text: str) -> float:
    """'10 seconds' -> 10.0"""
    m = re.match(r"^\s*(\d+)\s+(second|minute|hour|day)s?\s*$", text)
    if not m:
        raise ValueError(f"not an interval: {text!r}")
    return int(m.group(1)) * _SECONDS[m.group(2)]


def master_ui_url(master_url: str) -> str | None:
    """spark://host:7077 -> http://host:8080 (SPARK_MASTER_WEBUI_PORT), None for local[*]."""
    m = re.match(r"^spark://([^:/]+)(?::\d+)?", master_url)
    if not m:
        return None
    import os

    return f"http://{m.group(1)}:{os.environ.get('SPARK_MASTER_WEBUI_PORT', '8080')}"


def spark_master(master_url: str, timeout: float = 3.0) -> dict:
    """Workers alive and applications running, from the master's /json endpoint."""
    ui = master_ui_url(master_url)
    if ui is None:
        return {"reachable": None, "alive_workers": None, "apps": []}
    try:
        state = requests.get(f"{ui}/json/", timeout=timeout).json()
    except (requests.RequestException, ValueError):
        return {"reachable": False, "alive_workers": 0, "apps": []}
    return {
        "reachable": True,
        "status": state.get("status"),
        "alive_workers": sum(1 for w in state.get("workers", []) if w.get("state") == "ALIVE"),
        "apps": sorted(a["name"] for a in state.get("activeapps", [])),
    }


def last_progress(progress_file: Path) -> float | None:
    """When the job last reported progress (or idleness) for any query, epoch seconds."""
    times = [q["logged_at"] for q in read_progress_file(progress_file).values() if q.get("logged_at")]
    return max(times) if times else None


def is_stale(progress_file: Path, *, started_at: float, stale_after: float, now: float | None = None) -> bool:
    """No progress for `stale_after` seconds since the later of start and last progress."""
    now = time.time() if now is None else now
    last = last_progress(progress_file)
    reference = max(started_at, last or 0.0)
    return now - reference > stale_after
