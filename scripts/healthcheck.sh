#!/usr/bin/env bash
# Container health by role (PLATFORM_ROLE): a Spark master lists ALIVE in its /json; a worker's
# UI answers; the History Server's API answers; the orchestrator's /health returns 200 (no FATAL
# job, master reachable); a one-shot tool (topics, bucket, generator) is healthy while it runs.
# A container without a known role is unhealthy, with the reason: a missing PLATFORM_ROLE must
# not pass for an orchestrator.
set -euo pipefail
case "${PLATFORM_ROLE:-}" in
  spark-master)
    curl -fsS "http://127.0.0.1:${SPARK_MASTER_WEBUI_PORT:-8080}/json/" | grep -q '"status" : "ALIVE"' ;;
  spark-worker)
    curl -fsS "http://127.0.0.1:${SPARK_WORKER_WEBUI_PORT:-8081}/json/" >/dev/null ;;
  spark-history)
    curl -fsS "http://127.0.0.1:${SPARK_HISTORY_UI_PORT:-18080}/api/v1/applications" >/dev/null ;;
  orchestrator)
    curl -fsS "http://127.0.0.1:${ORCHESTRATOR_PORT:-8099}/health" >/dev/null ;;
  tool)
    exit 0 ;;
  *)
    echo "healthcheck: PLATFORM_ROLE is '${PLATFORM_ROLE:-}', not one of spark-master, spark-worker, spark-history, orchestrator, tool" >&2
    exit 1 ;;
esac
