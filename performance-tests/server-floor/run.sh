#!/bin/bash
# What a read costs a Python HTTP server by layer: a bare ASGI callable and a one-route Litestar app
# under granian (as the services run), CPU of the server's processes from /proc, at saturation (wrk,
# 32 connections, 10 s) and at fixed rates (vegeta, 10 s). Optionally a product instance's page:
#   performance-tests/server-floor/run.sh [http://127.0.0.1:8081/products/<id>]
# Run it alone on the machine (it takes the benchmark lock); docs/performance/README.md#reads.
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$(cd ../.. && pwd)
PY="$ROOT/.venv/bin/python"
export PATH="$ROOT/.tools/bin:$PATH"
PORT=19903
exec 9>/tmp/shopstream-bench.lock
flock 9

ticks() { local t=0; for p in $(pgrep -f "$1" || true); do
  t=$((t + $(awk '{print $14+$15}' "/proc/$p/stat" 2>/dev/null || echo 0))); done; echo $t; }

measure() {  # name, pgrep pattern, url
  local t0 t1 rps
  t0=$(ticks "$2"); rps=$(wrk -t1 -c32 -d10s "$3" | awk '/Requests\/sec/{print $2}'); t1=$(ticks "$2")
  printf '%-28s saturated %8.0f req/s  %.3f ms CPU per read\n' "$1" "$rps" \
    "$(echo "($t1-$t0)*10/($rps*10)" | bc -l)"
  for rate in 400 2000; do
    t0=$(ticks "$2"); echo "GET $3" | vegeta attack -rate=$rate -duration=10s > /dev/null; t1=$(ticks "$2")
    printf '%-28s at %5d/s                 %.3f ms CPU per read\n' "$1" "$rate" \
      "$(echo "($t1-$t0)*10/($rate*10)" | bc -l)"
  done
}

for app in bare lite; do
  "$PY" -m granian --interface asgi --host 127.0.0.1 --port $PORT --workers 1 --loop uvloop \
    "$app:app" > /dev/null 2>&1 &
  sleep 3
  measure "granian, $app" "granian.*--port $PORT" "http://127.0.0.1:$PORT/products/any"
  kill %1; wait 2>/dev/null || true
done
if [ $# -gt 0 ]; then
  port=$(echo "$1" | sed -E 's#.*:([0-9]+)/.*#\1#')
  curl -s "$1" > /dev/null  # into the instance's cache
  measure "product instance" "granian.*--port $port" "$1"
fi
