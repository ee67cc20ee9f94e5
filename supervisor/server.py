"""The orchestrator's local endpoint on 127.0.0.1: GET /health (200/503), /status (JSON), /metrics
(Prometheus); POST /jobs/<name>/start|stop|restart and POST /shutdown (state changes by POST only)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CollectorRegistry, Gauge, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

STATES = ("STOPPED", "STARTING", "RUNNING", "BACKOFF", "STOPPING", "EXITED", "FATAL", "IDLE", "WAITING")


def render_metrics(status: dict) -> bytes:
    """Prometheus text from one status snapshot (a fresh registry each scrape: no stale series)."""
    registry = CollectorRegistry()
    up = Gauge("orchestrator_healthy", "1 when no job is FATAL and the Spark master answers", registry=registry)
    state = Gauge("orchestrator_job_state", "1 for the job's current state", ["job", "state"], registry=registry)
    starts = Gauge("orchestrator_job_starts", "process starts since the orchestrator started", ["job"],
                   registry=registry)
    failures = Gauge("orchestrator_job_failures", "failed runs or unexpected exits", ["job"], registry=registry)
    uptime = Gauge("orchestrator_job_uptime_seconds", "seconds since the current process started", ["job"],
                   registry=registry)
    progress = Gauge("orchestrator_job_last_progress_timestamp_seconds", "last streaming progress", ["job"],
                     registry=registry)
    intervals = Gauge("orchestrator_batch_intervals", "batch intervals in the ledger by status "
                      "(succeeded, failed, waiting, running)", ["job", "status"], registry=registry)
    workers = Gauge("orchestrator_spark_alive_workers", "ALIVE workers reported by the Spark master",
                    registry=registry)
    up.set(1 if status["healthy"] else 0)
    workers.set(status["spark_master"].get("alive_workers") or 0)
    for name, job in status["jobs"].items():
        for s in STATES:
            state.labels(name, s).set(1 if job["state"] == s else 0)
        if job["kind"] == "batch":
            for s, n in job["intervals"].items():
                intervals.labels(name, s).set(n)
            continue
        starts.labels(name).set(job["starts"])
        failures.labels(name).set(job["failures"])
        uptime.labels(name).set(job.get("uptime_seconds") or 0)
        if job.get("last_progress"):
            progress.labels(name).set(job["last_progress"])
    return generate_latest(registry)


# control(action, job or None) -> (HTTP code, message)
Control = Callable[[str, str | None], tuple[int, str]]


def serve(status: Callable[[], dict], host: str, port: int, control: Control | None = None) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def _send(self, code: int, body: bytes, ctype: str = "application/json") -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            parts = self.path.strip("/").split("/")
            if control is None:
                code, message = 404, "control is not enabled"
            elif parts == ["shutdown"]:
                code, message = control("shutdown", None)
            elif len(parts) == 3 and parts[0] == "jobs" and parts[2] in ("start", "stop", "restart"):
                code, message = control(parts[2], parts[1])
            else:
                code, message = 404, f"unknown request POST {self.path}"
            self._send(code, json.dumps({"ok": code < 300, "message": message}).encode())

        def do_GET(self) -> None:
            snapshot = status()
            if self.path == "/health":
                body, ctype = json.dumps({"healthy": snapshot["healthy"]}).encode(), "application/json"
                code = 200 if snapshot["healthy"] else 503
            elif self.path == "/status":
                body, ctype, code = json.dumps(snapshot, default=str).encode(), "application/json", 200
            elif self.path == "/metrics":
                body, ctype, code = render_metrics(snapshot), CONTENT_TYPE_LATEST, 200
            else:
                body, ctype, code = b'{"error": "not found"}', "application/json", 404
            self._send(code, body, ctype)

        def log_message(self, *_args) -> None:
            pass

    server = ThreadingHTTPServer((host, port), Handler)
    threading.Thread(target=server.serve_forever, name="status-http", daemon=True).start()
    return server
