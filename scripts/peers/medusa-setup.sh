#!/usr/bin/env bash
# Install the Medusa peer (peers/medusa/node_modules, from its package-lock.json) and migrate its
# own database `medusa` in the comparison's private PostgreSQL.
set -euo pipefail
here="$(cd "$(dirname "$0")/../.." && pwd)"
. "$here/scripts/peers/env.sh"
cd "$here/peers/medusa"
[ -d node_modules/@medusajs/medusa ] || npm ci --no-audit --no-fund
psql -h 127.0.0.1 -p "$SHOPSTREAM_POSTGRES_PORT" -U shopstream -d postgres -tc \
    "SELECT 1 FROM pg_database WHERE datname='medusa'" | grep -q 1 ||
    psql -h 127.0.0.1 -p "$SHOPSTREAM_POSTGRES_PORT" -U shopstream -d postgres -c 'CREATE DATABASE medusa'
DATABASE_URL="postgres://shopstream@127.0.0.1:${SHOPSTREAM_POSTGRES_PORT}/medusa" npx medusa db:migrate
