# One image for every role of the platform: Spark master, Spark worker, orchestrator (which
# spark-submits the jobs) and the demo event generator. The containers run the same scripts as
# the native local stack (scripts/spark-node.sh, orchestrator.py, tools/generate_events.py).

# --- Stage 1: resolve the Spark-Kafka connector jars with Maven (same pom as `make setup`) ----
FROM maven:3.9.11-eclipse-temurin-17 AS jars
WORKDIR /build
COPY pom.xml ./
COPY scripts/fetch_jars.sh scripts/
RUN bash scripts/fetch_jars.sh && rm -rf .jars/kafka

# --- Stage 2: runtime ------------------------------------------------------------------------
FROM python:3.11.14-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    JAVA_HOME=/usr/lib/jvm/java-17 \
    PYTHONPATH=/processing \
    PYSPARK_PYTHON=python3 \
    OUTPUT_ROOT=/processing/outputs \
    CHECKPOINT_ROOT=/processing/checkpoints \
    STATE_ROOT=/processing/state \
    LOG_DIR=/processing/logs \
    USER_MASTER_PATH=/processing/data/user_master

# JAVA_HOME is a link to the JRE of this image's architecture (java-17-openjdk-amd64 or -arm64).
# The Java 17 runtime Spark needs; procps gives the `ps` that Spark's scripts call.
# Debian security updates replace exact versions, so they are not pinned: the base image tag pins the release.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends openjdk-17-jre-headless procps curl \
    && rm -rf /var/lib/apt/lists/* \
    && ln -s "$(dirname "$(dirname "$(readlink -f /usr/bin/java)")")" /usr/lib/jvm/java-17 \
    && /usr/lib/jvm/java-17/bin/java -version

RUN useradd --create-home --uid 1000 --shell /bin/bash platform
WORKDIR /processing

# Requirements before code: the heavy layer is rebuilt only when the pins change.
COPY requirements.txt ./
RUN pip install --no-cache-dir -r requirements.txt

COPY --from=jars /build/.jars /processing/.jars
COPY --chown=platform:platform . /processing
RUN mkdir -p outputs checkpoints state logs data \
    && chown -R platform:platform outputs checkpoints state logs data

USER 1000:1000
EXPOSE 7077 8080 8081 8082 8099
# Role-aware: the master's and workers' web UIs, or the orchestrator's /health.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=5 CMD ["bash", "scripts/healthcheck.sh"]
# No default PLATFORM_ROLE: each compose service names its role, and a container without one is
# reported unhealthy rather than checked as something it is not.
CMD ["python", "orchestrator.py"]
