"""The orchestrator's local endpoint on 127.0.0.1: GET / (the status page), /health (200/503),
/status (JSON), /metrics (Prometheus); POST /jobs/<name>/start|stop|restart and POST /shutdown
(state changes by POST only)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client.exposition import CONTENT_TYPE_LATEST

# control(action, job or None) -> (HTTP code, message)
Control = Callable[[str, str | None], tuple[int, str]]


def serve(status: Callable[[], dict], host: str, port: int, control: Control | None = None,
          metrics: Callable[[dict], bytes] | None = None, page: Callable[[dict], str] | None = None,
          ) -> ThreadingHTTPServer:
    from supervisor.metrics import render_metrics

    metrics = metrics or render_metrics

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
                body, ctype, code = metrics(snapshot), CONTENT_TYPE_LATEST, 200
            elif self.path == "/" and page is not None:
                body, ctype, code = page(snapshot).encode(), "text/html; charset=utf-8", 200
            else:
                body, ctype, code = b'{"error": "not found"}', "application/json", 404
            self._send(code, body, ctype)

        def log_message(self, *_args) -> None:
            pass

    server = ThreadingHTTPServer((host, port), Handler)
    threading.Thread(target=server.serve_forever, name="status-http", daemon=True).start()
    return server
