#!/usr/bin/env bash
# The peers comparison in one command (`make peers`): shopstream at port offset +7000 with its data
# in data-peers/, the Oscar peer set up, loaded and served by gunicorn, then the same short work
# against each. Takes the machine-wide bench lock for the loads and the measurement.
set -euo pipefail
here="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$here"
. scripts/peers/env.sh
out="${PEERS_OUT:-$here/data-peers/run-$(date -u +%Y%m%dT%H%M%SZ)}"
.venv/bin/shopstream up
scripts/peers/oscar-setup.sh
psql -h 127.0.0.1 -p "$SHOPSTREAM_POSTGRES_PORT" -U shopstream -d postgres -tc \
    "SELECT 1 FROM pg_database WHERE datname='oscar'" | grep -q 1 ||
    psql -h 127.0.0.1 -p "$SHOPSTREAM_POSTGRES_PORT" -U shopstream -d postgres -c 'CREATE DATABASE oscar'
(cd peers/oscar && venv/bin/python manage.py migrate -v0)
.venv/bin/python scripts/peers/export_catalog.py 100000 data-peers/catalog.csv
scripts/peers/oscar-serve.sh > data-peers/oscar.log 2>&1 &
oscar_pid=$!
trap 'kill $oscar_pid' EXIT
flock /tmp/shopstream-bench.lock bash -ec "
  .venv/bin/shopstream seed --products 100000
  # the order service learns the catalog from the product events: wait until it has, so that
  # work does not run into the steps
  until [ \"\$(psql -h 127.0.0.1 -p $SHOPSTREAM_POSTGRES_PORT -U shopstream -d order -Atc 'SELECT count(*) >= 100000 FROM catalog')\" = t ]; do sleep 2; done
  (cd peers/oscar && venv/bin/python manage.py load_catalog ../../data-peers/catalog.csv)
  .venv/bin/python -m shopstream_tools.lab.peers_cli --out '$out' --oscar-pid $oscar_pid ${PEERS_ARGS:-}"
echo "results in $out"
