"""The status page at http://127.0.0.1:8099/: server-rendered HTML, no JavaScript, refreshed by
the browser every few seconds. Jobs with their state, lag, rates and Spark links; the batch
intervals; a small chart per streaming job of input vs processed rows/s over the last hour."""

from __future__ import annotations

import time
from collections.abc import Iterable
from html import escape

REFRESH_SECONDS = 10
STATE_COLOURS = {"RUNNING": "#1a7f37", "IDLE": "#57606a", "WAITING": "#9a6700", "STARTING": "#0969da",
                 "BACKOFF": "#bc4c00", "STOPPING": "#57606a", "STOPPED": "#57606a", "EXITED": "#57606a",
                 "FATAL": "#cf222e"}

STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #1f2328; }
h1 { font-size: 1.4em; } h2 { font-size: 1.1em; margin-top: 1.6em; }
table { border-collapse: collapse; }
td, th { padding: .3em .7em; border-bottom: 1px solid #d0d7de; text-align: left; }
th { background: #f6f8fa; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
.state { font-weight: 600; } .muted { color: #57606a; } .charts { display: flex; flex-wrap: wrap; gap: 1em; }
figure { margin: 0; } figcaption { font-size: .9em; }
"""


def _fmt(value, digits: int = 0) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else escape(str(value))


def _state(state: str) -> str:
    return f'<span class="state" style="color:{STATE_COLOURS.get(state, "#1f2328")}">{escape(state)}</span>'


def _link(url: str | None, text: str) -> str:
    return f'<a href="{escape(url)}">{escape(text)}</a>' if url else escape(text)


def _main_query(queries: dict) -> dict:
    """The query that stands for the job: the busiest of those with an event-time watermark (the
    stateful ones), else the busiest."""
    stateful = [q for q in queries.values() if q.get("watermark")] or list(queries.values())
    return max(stateful, key=lambda q: q.get("input_rows_per_second") or 0.0, default={})


def chart(points: Iterable[tuple[float, float, float]], now: float, width: int = 320, height: int = 90) -> str:
    """An SVG line chart of input (blue) and processed (green) rows/s over the last hour."""
    pts = [p for p in points if p[0] >= now - 3600]
    top = max([max(i, o) for _, i, o in pts] + [1.0])

    def line(index: int, colour: str) -> str:
        coords = " ".join(f"{(t - (now - 3600)) / 3600 * width:.1f},{height - v[index - 1] / top * (height - 4):.1f}"
                          for t, *v in pts)
        return f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{coords}"/>' if pts else ""

    return (f'<svg width="{width}" height="{height}" role="img" aria-label="rows per second, last hour" '
            f'style="background:#f6f8fa"><title>max {top:,.0f} rows/s</title>'
            f'{line(1, "#0969da")}{line(2, "#1a7f37")}</svg>')


def _master_line(master: dict) -> str:
    """Workers, cores, and the applications waiting for cores (in red: they make no progress),
    or that would wait (in red: fewer cores than the supervised applications need)."""
    line = f"{master.get('alive_workers')} workers alive"
    if master.get("cores") is not None:
        line += f", {master.get('cores_used')} of {master['cores']} cores used"
        needed = master.get("cores_needed")
        if needed is not None:
            need = f"the supervised applications need {needed}"
            line += (f' (<span style="color:#cf222e">{need}</span>)' if needed > master["cores"] else f" ({need})")
    waiting = master.get("apps_waiting") or []
    if waiting:
        line += (f', <span style="color:#cf222e">{len(waiting)} application(s) waiting for cores: '
                 f"{escape(', '.join(waiting))}</span>")
    return line


def render_page(status: dict, rates: dict[str, Iterable], *, master_ui: str | None = None,
                history_ui: str | None = None, now: float | None = None) -> str:
    now = now or time.time()
    streaming = {n: j for n, j in status["jobs"].items() if j["kind"] == "streaming"}
    batch = {n: j for n, j in status["jobs"].items() if j["kind"] == "batch"}
    rows = []
    for name, job in streaming.items():
        q = _main_query(job.get("queries") or {})
        lag = sum((job.get("lag") or {}).values()) if job.get("lag") is not None else None
        last = q.get("logged_at")
        spark = _link(job.get("ui_url"), "Spark UI") if job.get("ui_url") else (
            _link(f"{history_ui}/history/{job['app_id']}/" if history_ui and job.get("app_id") else None,
                  job.get("app_id") or "–"))
        rows.append(
            f"<tr><td>{escape(name)}</td><td>{_state(job['state'])}</td>"
            f"<td class=n>{_fmt(job.get('uptime_seconds'))} s</td>"
            f"<td class=n>{_fmt(job.get('restarts'))}</td><td class=n>{_fmt(lag)}</td>"
            f"<td class=n>{_fmt(q.get('input_rows_per_second'), 1)}</td>"
            f"<td class=n>{_fmt(q.get('processed_rows_per_second'), 1)}</td>"
            f"<td class=n>{_fmt(q.get('batch_id'))}"
            f"{'' if last is None else f' <span class=muted>({now - last:,.0f} s ago)</span>'}</td>"
            f"<td class=n>{_fmt(q.get('batch_duration_s'), 1)} s</td><td>{_fmt(q.get('watermark'))}</td>"
            f"<td>{spark}</td></tr>")
    batch_rows = []
    for name, job in batch.items():
        counts = job["intervals"]
        waiting = job["waiting"][0] if job.get("waiting") else None
        last = job.get("last_run") or {}
        app = last.get("app_id")
        batch_rows.append(
            f"<tr><td>{escape(name)}</td><td>{_state(job['state'])}</td>"
            f"<td class=n>{counts['succeeded']}</td><td class=n>{counts['failed']}</td>"
            f"<td class=n>{counts['waiting']}</td><td class=n>{counts['running']}</td>"
            f"<td>{escape(last.get('interval_start') or '–')} {escape(last.get('status') or '')} "
            f"{_link(f'{history_ui}/history/{app}/' if history_ui and app else None, app or '')}</td>"
            f"<td>{escape(waiting['interval'] + ': ' + waiting['reason']) if waiting else '–'}</td></tr>")
    charts = "".join(
        f"<figure>{chart(rates.get(name, ()), now)}<figcaption>{escape(name)}: "
        f'<span style="color:#0969da">input</span> vs <span style="color:#1a7f37">processed</span> rows/s'
        f"</figcaption></figure>" for name in streaming)
    health = "healthy" if status["healthy"] else "UNHEALTHY"
    links = " · ".join(x for x in (_link(master_ui, "Spark master") if master_ui else "",
                                   _link(history_ui, "History Server") if history_ui else "",
                                   '<a href="/status">/status</a>', '<a href="/metrics">/metrics</a>') if x)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="{REFRESH_SECONDS}">
<title>Data platform: {health}</title><style>{STYLE}</style></head><body>
<h1>Data platform orchestrator: <span style="color:{'#1a7f37' if status['healthy'] else '#cf222e'}">{health}</span></h1>
<p class=muted>pid {status['pid']}, up {status['uptime_seconds']:,.0f} s, {escape(status['time'])};
Spark master: {_master_line(status['spark_master'])}. {links}</p>
<h2>Streaming jobs</h2>
<table><tr><th>job</th><th>state</th><th>uptime</th><th>restarts</th><th>Kafka lag (records)</th><th>input rows/s</th>
<th>processed rows/s</th><th>last micro-batch</th><th>duration</th><th>watermark</th><th>Spark</th></tr>
{''.join(rows) or '<tr><td colspan=11 class=muted>none selected</td></tr>'}</table>
<div class=charts>{charts}</div>
<h2>Batch intervals</h2>
<table><tr><th>job</th><th>state</th><th>succeeded</th><th>failed</th><th>waiting</th><th>running</th><th>last run</th>
<th>first waiting interval: why</th></tr>
{''.join(batch_rows) or '<tr><td colspan=8 class=muted>none selected</td></tr>'}</table>
</body></html>
"""
