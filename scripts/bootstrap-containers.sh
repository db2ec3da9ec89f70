#!/usr/bin/env bash
# The container engine for `make test-containers` and `make compose-up`, when nothing here can run
# containers yet: podman from Debian, with runc (the runtime deploy/docker/podman/containers.conf
# selects) and debootstrap (the local base image, when no registry can be reached).
# docs/operations/containers.md: why podman, and what it needs on a machine without systemd.
set -euo pipefail
cd "$(dirname "$0")/.."
if .venv/bin/python -c "import sys; from shopstream_tools.compose import engine; sys.exit(engine.find() is None)"; then
  exit 0
fi
need=()
for pkg in podman runc debootstrap; do
  command -v "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "bootstrap: installing the container engine: ${need[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq || true
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
