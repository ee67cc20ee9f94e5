"""Health signals: the Spark master's JSON API and streaming progress staleness."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import requests

from utils.progress import last_progress


def master_ui_url(master_url: str) -> str | None:
    """spark://host:7077 -> http://host:8080 (SPARK_MASTER_WEBUI_PORT), None for local[*]."""
    m = re.match(r"^spark://([^:/]+)(?::\d+)?", master_url)
    if not m:
        return None
    return f"http://{m.group(1)}:{os.environ.get('SPARK_MASTER_WEBUI_PORT', '8080')}"


def spark_master(master_url: str, timeout: float = 3.0) -> dict:
    """Workers alive, cores and applications, from the master's /json endpoint."""
    ui = master_ui_url(master_url)
    if ui is None:
        return {"reachable": None, "alive_workers": None, "apps": []}
    try:
        state = requests.get(f"{ui}/json/", timeout=timeout).json()
    except (requests.RequestException, ValueError):
        return {"reachable": False, "alive_workers": 0, "apps": []}
    return {"reachable": True, **master_summary(state)}


def master_summary(state: dict) -> dict:
    """The master's /json in the orchestrator's terms. An application WAITING has no executor
    yet: the workers' free cores do not cover its spark.cores.max (a job that started and never
    makes progress; warm standbys and batch runs count too)."""
    apps = state.get("activeapps", [])
    return {
        "status": state.get("status"),
        "alive_workers": sum(1 for w in state.get("workers", []) if w.get("state") == "ALIVE"),
        "cores": state.get("cores"),
        "cores_used": state.get("coresused"),
        "apps": sorted(a["name"] for a in apps),
        "apps_waiting": sorted(a["name"] for a in apps if a.get("state") == "WAITING"),
    }


def cores_needed(cores_max: int, *, streaming: int, standbys: int, batch: bool) -> int:
    """The workers' cores the supervised applications hold at once: each streaming job, each warm
    standby, and one batch run (runs of different batch jobs seldom overlap; a second one waits)."""
    return cores_max * (streaming + standbys + (1 if batch else 0))


def core_shortfall(master: dict, needed: int) -> str | None:
    """Why some application will wait for cores, or None when the ALIVE workers cover `needed`
    (or the master does not say: local[*], unreachable)."""
    cores = master.get("cores")
    if cores is None or cores >= needed:
        return None
    return (f"the supervised applications need {needed} cores (SPARK_CORES_MAX each: streaming jobs, "
            f"standbys, one batch run) but the ALIVE workers offer {cores}: what does not fit waits "
            "without executors (README, Warm standby)")


def is_stale(progress_file: Path, *, started_at: float, stale_after: float, now: float | None = None) -> bool:
    """No progress for `stale_after` seconds since the later of start and last progress."""
    now = time.time() if now is None else now
    last = last_progress(progress_file)
    reference = max(started_at, last or 0.0)
    return now - reference > stale_after
