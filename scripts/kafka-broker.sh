#!/usr/bin/env bash
# Run a single-node Apache Kafka broker in KRaft mode (broker + controller) in the foreground.
# Storage is formatted on first start only; later starts reuse it.
set -euo pipefail
cd "$(dirname "$0")/.."
JARS_DIR=${JARS_DIR:-.jars}
KAFKA_HOST=${KAFKA_HOST:-127.0.0.1}
KAFKA_PORT=${KAFKA_PORT:-9092}
KAFKA_CONTROLLER_PORT=${KAFKA_CONTROLLER_PORT:-9093}
KAFKA_DATA_DIR=${KAFKA_DATA_DIR:-.stack/kafka/data}
KAFKA_CONFIG=${KAFKA_CONFIG:-.stack/kafka/server.properties}
KAFKA_HEAP_OPTS=${KAFKA_HEAP_OPTS:--Xms256m -Xmx768m}
KAFKA_NUM_PARTITIONS=${KAFKA_NUM_PARTITIONS:-2}

if ! compgen -G "$JARS_DIR/kafka/kafka_2.13-*.jar" >/dev/null; then
  echo "kafka-broker.sh: no broker jars in $JARS_DIR/kafka; run 'make setup' first" >&2
  exit 1
fi
mkdir -p "$KAFKA_DATA_DIR" "$(dirname "$KAFKA_CONFIG")"
cat > "$KAFKA_CONFIG" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@$KAFKA_HOST:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://$KAFKA_HOST:$KAFKA_PORT,CONTROLLER://$KAFKA_HOST:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://$KAFKA_HOST:$KAFKA_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$KAFKA_DATA_DIR
num.partitions=$KAFKA_NUM_PARTITIONS
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
log.retention.check.interval.ms=${KAFKA_RETENTION_CHECK_MS:-30000}
message.max.bytes=${KAFKA_MESSAGE_MAX_BYTES:-4194304}
PROPS

CP="$JARS_DIR/kafka/*"
JAVA=${JAVA_HOME:+$JAVA_HOME/bin/}java
LOG4J="-Dlog4j2.configurationFile=configs/kafka/log4j2.properties"
if [[ ! -f "$KAFKA_DATA_DIR/meta.properties" ]]; then
  cluster_id=$("$JAVA" -cp "$CP" $LOG4J kafka.tools.StorageTool random-uuid)
  echo "kafka-broker.sh: formatting KRaft storage in $KAFKA_DATA_DIR (cluster $cluster_id)"
  "$JAVA" -cp "$CP" $LOG4J kafka.tools.StorageTool format -t "$cluster_id" -c "$KAFKA_CONFIG"
fi
# shellcheck disable=SC2086  # heap options are a list of flags
exec "$JAVA" $KAFKA_HEAP_OPTS -XX:+UseG1GC -Djava.awt.headless=true $LOG4J \
  -cp "$CP" kafka.Kafka "$KAFKA_CONFIG"
