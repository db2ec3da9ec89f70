#!/bin/sh
# The official image's tool scripts by name (kafka-topics.sh, ...), on the image's jars.
set -eu
case "$(basename "$0")" in
    kafka-broker-api-versions.sh) main=org.apache.kafka.tools.BrokerApiVersionsCommand ;;
    kafka-topics.sh) main=org.apache.kafka.tools.TopicCommand ;;
    kafka-consumer-groups.sh) main=org.apache.kafka.tools.consumer.group.ConsumerGroupCommand ;;
    kafka-console-consumer.sh) main=org.apache.kafka.tools.consumer.ConsoleConsumer ;;
    kafka-metadata-quorum.sh) main=org.apache.kafka.tools.MetadataQuorumCommand ;;
    *) echo "unknown tool: $0" >&2; exit 2 ;;
esac
# shellcheck disable=SC2086
exec java -Xmx256m ${KAFKA_OPTS:-} -Dlog4j2.configurationFile=/opt/kafka/tools-log4j2.properties \
    -cp "/opt/kafka/libs/*" "$main" "$@"
