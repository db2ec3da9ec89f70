#!/usr/bin/env bash
# Install the Medusa peer (peers/medusa/node_modules), configure it on its own database in the
# comparison's private PostgreSQL, run its migrations and start it as its docs say (`medusa start`).
set -euo pipefail
here="$(cd "$(dirname "$0")/../.." && pwd)"
. "$here/scripts/peers/env.sh"
cd "$here/peers/medusa"
[ -d node_modules/@medusajs/medusa ] || npm install --no-audit --no-fund \
    @medusajs/medusa@2.21.2 @medusajs/framework@2.21.2 @medusajs/cli@2.21.2 typescript ts-node
export DATABASE_URL="postgres://shopstream@127.0.0.1:${SHOPSTREAM_POSTGRES_PORT}/medusa"
npx medusa db:migrate
npx medusa start --port "${MEDUSA_PORT}"
