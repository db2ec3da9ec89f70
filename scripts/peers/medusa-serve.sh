#!/usr/bin/env bash
# Serve the Medusa peer as its docs say for production: `medusa start`, NODE_ENV=production (one
# Node process; Medusa has no worker count to set). Runs in the foreground; `exec` keeps the pid
# the runner is given the one of Medusa's own process tree.
set -euo pipefail
here="$(cd "$(dirname "$0")/../.." && pwd)"
. "$here/scripts/peers/env.sh"
cd "$here/peers/medusa"
export DATABASE_URL="postgres://shopstream@127.0.0.1:${SHOPSTREAM_POSTGRES_PORT}/medusa" NODE_ENV=production
exec node_modules/.bin/medusa start --port "${MEDUSA_PORT}"
