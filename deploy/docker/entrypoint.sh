#!/bin/sh
# Entry point of the shopstream service images: runs `shopstream ARGS...`, with three additions.
# - No arguments: serve this image's service (APP_SERVICE) on all interfaces.
# - SHOPSTREAM_INSTANCE_ID defaults to the host name (the pod name in Kubernetes, the task's host
#   name on ECS, the container id in compose), so every replica has its own name.
# - `migrate` first provisions what migrations cannot create themselves: this image's service
#   database, its owner and login roles, and the Kafka topics (shopstream-provision), so a fresh
#   RDS/MSK or compose stack just works; then it migrates that database only, as its owner role.
set -eu

if [ -z "${SHOPSTREAM_INSTANCE_ID:-}" ]; then
    SHOPSTREAM_INSTANCE_ID=$(cat /proc/sys/kernel/hostname)
    export SHOPSTREAM_INSTANCE_ID
fi

if [ "$#" -eq 0 ]; then
    set -- serve "${APP_SERVICE}" --host 0.0.0.0
fi

if [ "$1" = "migrate" ] && [ "$#" -eq 1 ]; then
    set -- migrate "${APP_SERVICE}"
fi

if [ "$1" = "migrate" ]; then
    shift
    shopstream-provision "$@"
    set -- migrate "$@"
fi

exec shopstream "$@"
