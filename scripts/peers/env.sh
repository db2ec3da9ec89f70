# Ports, data folder and gateway limits of the peers comparison. Every shopstream port is offset
# by PEERS_PORT_OFFSET (+7000 unless set), so the run never touches the lead's platform. Source it:
# `. scripts/peers/env.sh`.
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
off="${PEERS_PORT_OFFSET:-7000}"
export SHOPSTREAM_DATA_DIR="${SHOPSTREAM_DATA_DIR:-$here/data-peers}"
export SHOPSTREAM_GATEWAY_PORT=$((8080 + off)) SHOPSTREAM_GATEWAY_STATUS_PORT=$((8079 + off))
export SHOPSTREAM_PRODUCT_PORT=$((8081 + off)) SHOPSTREAM_ORDER_PORT=$((8082 + off))
export SHOPSTREAM_CONSOLE_PORT=$((8090 + off))
export SHOPSTREAM_POSTGRES_PORT=$((5432 + off)) SHOPSTREAM_KAFKA_PORT=$((9092 + off))
export SHOPSTREAM_KAFKA_CONTROLLER_PORT=$((9093 + off))
export SHOPSTREAM_PROMETHEUS_PORT=0 SHOPSTREAM_ALERTMANAGER_PORT=0 SHOPSTREAM_ZIPKIN_PORT=0
export SHOPSTREAM_NODE_EXPORTER_PORT=$((9100 + off)) SHOPSTREAM_NGINX_EXPORTER_PORT=$((9113 + off))
export SHOPSTREAM_POSTGRES_EXPORTER_PORT=$((9187 + off)) SHOPSTREAM_KAFKA_METRICS_PORT=$((9404 + off))
# As the lab (shopstream_tools/lab/testbed.py, UNLIMITED_RATE): the gateway's per-client and
# per-address limits raised, so the limiter is not what gets measured. Every user still sends its
# own bearer token and X-Client-Id, as the lab's shoppers do.
export SHOPSTREAM_GATEWAY_RATE_LIMIT=1000000 SHOPSTREAM_GATEWAY_RATE_BURST=1000000
export SHOPSTREAM_GATEWAY_ADDRESS_RATE_LIMIT=1000000
export SHOPSTREAM_LOG_LEVEL=WARNING  # as the lab: an INFO line per request would be measured too
export OSCAR_PORT=$((8180 + off)) MEDUSA_PORT=$((8190 + off))
# The private cluster asks every login for a password: psql, Django (libpq) and Medusa (node-postgres)
# read the admin's from the password file the first `up` generates (docs/security.md).
export PGPASSFILE="$SHOPSTREAM_DATA_DIR/auth/postgres/pgpass"
