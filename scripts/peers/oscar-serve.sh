#!/usr/bin/env bash
# Serve the Oscar peer as its docs recommend for production: gunicorn, (2 x cores) + 1 sync
# workers. Runs in the foreground (the comparison runner starts and stops it).
set -euo pipefail
here="$(cd "$(dirname "$0")/../.." && pwd)"
. "$here/scripts/peers/env.sh"
workers="${OSCAR_WORKERS:-$(( $(nproc) * 2 + 1 ))}"
cd "$here/peers/oscar"
exec venv/bin/gunicorn shopsite.wsgi:application -w "$workers" -b "127.0.0.1:${OSCAR_PORT}" \
    --access-logfile - --log-level warning
