#!/bin/bash
# A product instance's CPU per filtered search, answered in front of the framework (hot_reads) and
# through the route (a query name the front layer does not know, `via`, sends it there): wrk straight
# at the instance, the bench's searches (its windows file), 15 s each, twice in turn.
#   performance-tests/server-floor/search.sh performance-tests/results/<bench run>/search-windows.txt [port]
# Run it alone on the machine (it takes the benchmark lock); docs/performance/README.md#reads.
set -euo pipefail
WINDOWS=$(realpath "$1")
PORT=${2:-8081}
cd "$(dirname "$0")/../wrk"
exec 9>/tmp/shopstream-bench.lock
flock 9
WORKER=$(pgrep -P "$(pgrep -f "granian.*--port $PORT" | head -1)" | head -1)
sed 's/&limit=20"/\&limit=20\&via=route"/' product_search.lua > product_search_via_route.lua
trap 'rm -f product_search_via_route.lua' EXIT
for round in 1 2; do
  for script in product_search.lua product_search_via_route.lua; do
    t0=$(awk '{print $14+$15}' "/proc/$WORKER/stat")
    out=$(wrk -t1 -c32 -d15s -s "$script" "http://127.0.0.1:$PORT" -- "$WINDOWS")
    t1=$(awk '{print $14+$15}' "/proc/$WORKER/stat")
    n=$(echo "$out" | awk '/requests in/{print $1}')
    printf 'round %d %-32s %8s req/s  %.3f ms CPU per search\n' "$round" "$script" \
      "$(echo "$out" | awk '/Requests\/sec/{print $2}')" "$(echo "($t1-$t0)*10/$n" | bc -l)"
  done
done
