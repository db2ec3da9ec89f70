#!/usr/bin/env bash
# Installs everything shopstream needs, idempotently: Debian packages, a Python virtualenv with the
# project in it, and the Apache Kafka jars from Maven Central. Fast when everything is present.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

need_apt=()
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need_apt+=(nginx-light)
command -v wrk >/dev/null 2>&1 || need_apt+=(wrk)
ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || need_apt+=(postgresql postgresql-contrib)
command -v java >/dev/null 2>&1 || need_apt+=(openjdk-17-jre-headless)
command -v mvn >/dev/null 2>&1 || need_apt+=(maven)
# Observability: Prometheus, Alertmanager (with amtool) and the exporters; Chromium for the console's browser tests.
for pkg in prometheus prometheus-alertmanager prometheus-node-exporter prometheus-nginx-exporter prometheus-postgres-exporter; do
  command -v "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "bootstrap: installing Debian packages: ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq || true
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# Python virtualenv; reinstalled only when pyproject.toml changed.
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.shopstream-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  echo "bootstrap: installing Python packages into .venv"
  .venv/bin/pip install -q --disable-pip-version-check -e ".[dev,lab]"
  touch "$stamp"
fi

# Patroni (the HA profile's PostgreSQL failover) in a virtualenv of the system's Python: when the
# platform runs as root, Patroni runs as the `postgres` account, which must be able to read it.
pstamp=infra/patroni/venv/.installed
if [ ! -f "$pstamp" ] || [ infra/patroni/requirements.txt -nt "$pstamp" ]; then
  if ! /usr/bin/python3 -c "import ensurepip" >/dev/null 2>&1; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-venv >/dev/null
  fi
  echo "bootstrap: installing Patroni into infra/patroni/venv"
  rm -rf infra/patroni/venv
  /usr/bin/python3 -m venv infra/patroni/venv
  infra/patroni/venv/bin/pip install -q --disable-pip-version-check -r infra/patroni/requirements.txt
  touch "$pstamp"
fi

# vegeta, the performance lab's open-loop constant-rate load generator, from the Go module proxy.
if [ ! -x .tools/bin/vegeta ]; then
  GO=$(command -v go || echo /usr/local/go/bin/go)
  if [ ! -x "$GO" ]; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq golang-go >/dev/null
    GO=$(command -v go)
  fi
  echo "bootstrap: building vegeta into .tools/bin"
  GOBIN="$ROOT/.tools/bin" GOTOOLCHAIN=auto "$GO" install github.com/tsenart/vegeta/v12@v12.13.0
fi

# Kafka jars from Maven Central (pinned in infra/kafka/pom.xml).
if [ -f infra/kafka/pom.xml ]; then
  kstamp=infra/kafka/libs/.fetched
  if [ ! -f "$kstamp" ] || [ infra/kafka/pom.xml -nt "$kstamp" ]; then
    echo "bootstrap: fetching Kafka jars with Maven"
    rm -rf infra/kafka/libs
    (cd infra/kafka && mvn -B -q package -DskipTests)
    touch "$kstamp"
  fi
fi

# The JMX exporter agent (Kafka's metrics) and the Zipkin server from Maven Central.
if [ -f infra/observability/pom.xml ]; then
  ostamp=infra/observability/libs/.fetched
  if [ ! -f "$ostamp" ] || [ infra/observability/pom.xml -nt "$ostamp" ]; then
    echo "bootstrap: fetching the JMX exporter agent and Zipkin with Maven"
    rm -rf infra/observability/libs
    (cd infra/observability && mvn -B -q package)
    touch "$ostamp"
  fi
fi

# JMeter 5.6.3 from Maven Central, laid out by the jmeter-maven-plugin's configure goal
# (performance-tests/jmeter/pom.xml); the lab's --loadgen jmeter runs its jar directly.
if [ -f performance-tests/jmeter/pom.xml ]; then
  jconf=performance-tests/jmeter/target/config.json
  if [ ! -f "$jconf" ] || [ performance-tests/jmeter/pom.xml -nt "$jconf" ]; then
    echo "bootstrap: installing JMeter with Maven (jmeter-maven-plugin configure)"
    rm -rf performance-tests/jmeter/target
    (cd performance-tests/jmeter && mvn -B -q com.lazerycode.jmeter:jmeter-maven-plugin:3.7.0:configure@configuration)
  fi
fi
