#!/usr/bin/env bash
# Run one Spark standalone daemon in the foreground, with the spark-class shipped in the pyspark
# package. Used by the native local stack (tools/stack.py) and by the containers alike.
#   scripts/spark-node.sh master
#   scripts/spark-node.sh worker <N>    (N picks the default UI port: 8080 + N)
#   scripts/spark-node.sh history       (the History Server over SPARK_HISTORY_LOG_DIR)
set -euo pipefail
role=${1:?usage: spark-node.sh master|worker N|history}
PYTHON=${PYTHON:-python3}
pinned=$("$PYTHON" -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))')
# A SPARK_HOME set elsewhere would win over the pinned pyspark's Spark: accept it only when it is
# the same version (utils/launch.py does the same for spark-submit).
if [[ -n "${SPARK_HOME:-}" && "$(cd "$SPARK_HOME" && pwd -P)" != "$(cd "$pinned" && pwd -P)" ]]; then
  want=$("$PYTHON" -c 'import importlib.metadata as m; print(m.version("pyspark"))')
  core=$(ls "$SPARK_HOME"/jars/spark-core_*-*.jar 2>/dev/null | head -n 1 || true)
  got=${core##*-}; got=${got%.jar}
  if [[ "$got" != "$want" ]]; then
    echo "spark-node.sh: SPARK_HOME=$SPARK_HOME is Spark ${got:-unknown}, but the project pins pyspark $want:" \
         "unset SPARK_HOME (the pinned one is used) or point it at a Spark $want" >&2
    exit 2
  fi
fi
SPARK_HOME=${SPARK_HOME:-$pinned}
export SPARK_HOME
export SPARK_DAEMON_MEMORY=${SPARK_DAEMON_MEMORY:-512m}
# Daemons log to stdout; the caller redirects it to a file (native) or the container log.
export SPARK_NO_DAEMONIZE=1

SPARK_MASTER_HOST=${SPARK_MASTER_HOST:-127.0.0.1}
SPARK_MASTER_PORT=${SPARK_MASTER_PORT:-7077}
SPARK_MASTER_WEBUI_PORT=${SPARK_MASTER_WEBUI_PORT:-8080}
SPARK_MASTER_URL=${SPARK_MASTER_URL:-spark://$SPARK_MASTER_HOST:$SPARK_MASTER_PORT}

case "$role" in
  master)
    if [[ "${SPARK_LOCAL_IP:-}" == "auto" ]]; then
      SPARK_LOCAL_IP=$(hostname -i | awk '{print $1}')
    fi
    export SPARK_LOCAL_IP=${SPARK_LOCAL_IP:-$SPARK_MASTER_HOST}
    exec "$SPARK_HOME/bin/spark-class" org.apache.spark.deploy.master.Master \
      --host "$SPARK_MASTER_HOST" --port "$SPARK_MASTER_PORT" \
      --webui-port "$SPARK_MASTER_WEBUI_PORT"
    ;;
  worker)
    n=${2:-1}
    host=${SPARK_WORKER_HOST:-127.0.0.1}
    if [[ "$host" == "auto" ]]; then
      # Containers: advertise this container's address so the master and drivers can reach it.
      host=$(hostname -i | awk '{print $1}')
    fi
    export SPARK_LOCAL_IP=${SPARK_LOCAL_IP:-$host}
    webui_port=${SPARK_WORKER_WEBUI_PORT:-$((8080 + n))}
    work_dir=${SPARK_WORKER_DIR:-.stack/spark/worker-$n}
    mkdir -p "$work_dir"
    # Finished applications' work folders (jars, executor logs) are removed after a day.
    export SPARK_WORKER_OPTS="-Dspark.worker.cleanup.enabled=true -Dspark.worker.cleanup.interval=1800 \
      -Dspark.worker.cleanup.appDataTtl=${SPARK_WORKER_CLEANUP_TTL:-86400} ${SPARK_WORKER_OPTS:-}"
    exec "$SPARK_HOME/bin/spark-class" org.apache.spark.deploy.worker.Worker \
      --host "$host" \
      --cores "${SPARK_WORKER_CORES:-6}" --memory "${SPARK_WORKER_MEMORY:-6g}" \
      --webui-port "$webui_port" --work-dir "$work_dir" \
      "$SPARK_MASTER_URL"
    ;;
  history)
    export SPARK_LOCAL_IP=${SPARK_LOCAL_IP:-127.0.0.1}
    log_dir=${SPARK_HISTORY_LOG_DIR:?set SPARK_HISTORY_LOG_DIR to the jobs\' event log folder}
    mkdir -p "$log_dir"
    # Event logs older than a week are deleted; the jobs roll theirs at 16 MB.
    export SPARK_HISTORY_OPTS="-Dspark.history.fs.logDirectory=file://$(cd "$log_dir" && pwd) \
      -Dspark.history.ui.port=${SPARK_HISTORY_UI_PORT:-18080} -Dspark.history.fs.update.interval=5s \
      -Dspark.history.fs.cleaner.enabled=true -Dspark.history.fs.cleaner.maxAge=${SPARK_HISTORY_MAX_AGE:-7d} \
      ${SPARK_HISTORY_OPTS:-}"
    exec "$SPARK_HOME/bin/spark-class" org.apache.spark.deploy.history.HistoryServer
    ;;
  *)
    echo "spark-node.sh: unknown role '$role' (expected master, worker or history)" >&2
    exit 2
    ;;
esac
