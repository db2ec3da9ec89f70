#!/usr/bin/env bash
# The peers comparison in one command (`make peers`): shopstream at port offset PEERS_PORT_OFFSET
# (+7000 unless set) with its data in data-peers/, the Oscar and Medusa peers set up, loaded with
# the same catalog and served, then the same short work against each. The loads and the
# measurement hold the machine-wide bench lock, once.
set -euo pipefail
here="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$here"
. scripts/peers/env.sh
out="${PEERS_OUT:-$here/data-peers/run-$(date -u +%Y%m%dT%H%M%SZ)}"
pg="psql -h 127.0.0.1 -p $SHOPSTREAM_POSTGRES_PORT -U shopstream"
.venv/bin/shopstream up
scripts/peers/oscar-setup.sh
$pg -d postgres -tc "SELECT 1 FROM pg_database WHERE datname='oscar'" | grep -q 1 ||
    $pg -d postgres -c 'CREATE DATABASE oscar'
(cd peers/oscar && venv/bin/python manage.py migrate -v0)
scripts/peers/medusa-setup.sh
.venv/bin/python scripts/peers/export_catalog.py 100000 data-peers/catalog.csv
scripts/peers/oscar-serve.sh > data-peers/oscar.log 2>&1 &
oscar_pid=$!
scripts/peers/medusa-serve.sh > data-peers/medusa.log 2>&1 &
medusa_pid=$!
trap 'kill $oscar_pid $medusa_pid' EXIT
until curl -sf "http://127.0.0.1:$MEDUSA_PORT/health" > /dev/null &&
      curl -sf "http://127.0.0.1:$OSCAR_PORT/api/" > /dev/null; do sleep 2; done
# one hold of the lock for the loads and the measurement, so no other benchmark runs between them
flock /tmp/shopstream-bench.lock bash -ec "
  .venv/bin/shopstream seed --products 100000
  # the order service learns the catalog from the product events: wait until it has, so that
  # work does not run into the steps
  until [ \"\$($pg -d order -Atc 'SELECT count(*) >= 100000 FROM catalog')\" = t ]; do sleep 2; done
  (cd peers/oscar && venv/bin/python manage.py load_catalog ../../data-peers/catalog.csv)
  (cd peers/medusa && DATABASE_URL=postgres://shopstream@127.0.0.1:$SHOPSTREAM_POSTGRES_PORT/medusa \
     MEDUSA_LOAD_BATCH=1000 node_modules/.bin/medusa exec ./src/scripts/load-catalog.ts ../../data-peers/catalog.csv)
  .venv/bin/python -m shopstream_tools.lab.peers_cli --out '$out' --oscar-pid $oscar_pid \
     --medusa-pid $medusa_pid --medusa-setup data-peers/peers-medusa.json ${PEERS_ARGS:-}"
echo "results in $out"
