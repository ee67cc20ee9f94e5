"""The orchestrator's parts: a supervisord-style process state machine, a cron scheduler with
a run ledger, health checks, and the status endpoint. `orchestrator.py` wires them together."""
