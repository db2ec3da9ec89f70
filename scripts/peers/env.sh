# Ports and data folder of the peers comparison: every shopstream port offset by +7000, so the
# run never touches the lead's platform. Source it: `. scripts/peers/env.sh`.
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
export SHOPSTREAM_DATA_DIR="$here/data-peers"
export SHOPSTREAM_GATEWAY_PORT=15080 SHOPSTREAM_GATEWAY_STATUS_PORT=15079
export SHOPSTREAM_PRODUCT_PORT=15081 SHOPSTREAM_ORDER_PORT=15082 SHOPSTREAM_CONSOLE_PORT=15090
export SHOPSTREAM_POSTGRES_PORT=22432 SHOPSTREAM_KAFKA_PORT=26092 SHOPSTREAM_KAFKA_CONTROLLER_PORT=26093
export SHOPSTREAM_PROMETHEUS_PORT=0 SHOPSTREAM_ALERTMANAGER_PORT=0 SHOPSTREAM_ZIPKIN_PORT=0
export SHOPSTREAM_NODE_EXPORTER_PORT=16100 SHOPSTREAM_NGINX_EXPORTER_PORT=16113
export SHOPSTREAM_POSTGRES_EXPORTER_PORT=16187 SHOPSTREAM_KAFKA_METRICS_PORT=16404
export OSCAR_PORT=15180 MEDUSA_PORT=15190
# The private cluster asks every login for a password: psql, Django (libpq) and Medusa (node-postgres)
# read the admin's from the password file the first `up` generates (docs/security.md).
export PGPASSFILE="$SHOPSTREAM_DATA_DIR/auth/postgres/pgpass"
