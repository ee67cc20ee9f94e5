#!/usr/bin/env bash
# Resolve the JVM artifacts declared in pom.xml into .jars/ (git-ignored):
#   .jars/spark/  the Spark-Kafka connector and its runtime dependencies (loaded via spark.jars)
#   .jars/kafka/  an Apache Kafka broker for KRaft mode (the native local stack)
#   .jars/s3/     S3A (hadoop-aws and the AWS SDK modules it uses; loaded when a location is s3a://)
# Idempotent: a profile whose folder holds its marker file is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
JARS_DIR=${JARS_DIR:-.jars}

fetch() {
  local profile=$1 dest=$2
  local marker="$dest/.complete-$(sha256sum pom.xml | cut -c1-16)"
  if [[ -f "$marker" ]]; then
    return 0
  fi
  echo "fetch_jars: resolving profile $profile into $dest"
  rm -rf "$dest"
  mvn -q -B -P"$profile" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$dest"
  touch "$marker"
}

fetch spark-connector "$JARS_DIR/spark"
fetch kafka-broker "$JARS_DIR/kafka"
fetch s3 "$JARS_DIR/s3"
