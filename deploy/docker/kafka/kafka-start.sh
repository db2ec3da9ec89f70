#!/bin/sh
# Starts the broker the way the official apache/kafka image does: KAFKA_FOO_BAR=value becomes the
# server property foo.bar=value (KAFKA_HEAP_OPTS and KAFKA_OPTS are JVM options, not properties);
# the storage is formatted with CLUSTER_ID on first start. The log directory is inside the volume.
set -eu
CONFIG=/opt/kafka/config/server.properties
: "${KAFKA_LOG_DIRS:=/var/lib/kafka/data}"
export KAFKA_LOG_DIRS
env | grep '^KAFKA_' | grep -v -E '^KAFKA_(HEAP_OPTS|OPTS|JVM_PERFORMANCE_OPTS)=' | while IFS='=' read -r name value; do
    key=$(echo "${name#KAFKA_}" | tr 'A-Z_' 'a-z.')
    echo "$key=$value"
done > "$CONFIG"
CP="/opt/kafka/libs/*"
if [ ! -f "$KAFKA_LOG_DIRS/meta.properties" ]; then
    java -Dlog4j2.configurationFile=/opt/kafka/tools-log4j2.properties -cp "$CP" kafka.tools.StorageTool \
        format -t "${CLUSTER_ID:?CLUSTER_ID is required to format the storage}" -c "$CONFIG" --ignore-formatted
fi
# shellcheck disable=SC2086  # the option strings are lists of JVM flags
exec java ${KAFKA_HEAP_OPTS:--Xms512m -Xmx512m} -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -Djava.awt.headless=true -Dlog4j2.configurationFile=/opt/kafka/log4j2.properties \
    ${KAFKA_OPTS:-} -cp "$CP" kafka.Kafka "$CONFIG"
