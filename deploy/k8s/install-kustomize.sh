#!/usr/bin/env bash
# Installs the pinned kustomize into the project's virtualenv (.venv/bin), from the Go module
# proxy, when it is missing or another version. Called by tests/deploy (and usable by hand).
# Needs Go (>= 1.22); about 30 s on a fresh machine, instant afterwards.
set -euo pipefail
VERSION=v5.7.1
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN="$ROOT/.venv/bin"
if [ -x "$BIN/kustomize" ] && "$BIN/kustomize" version 2>/dev/null | grep -qx "$VERSION"; then
  echo "$BIN/kustomize"
  exit 0
fi
command -v go >/dev/null 2>&1 || { echo "install-kustomize: Go is needed (apt-get install golang)" >&2; exit 1; }
mkdir -p "$BIN"
GOBIN="$BIN" GOFLAGS=-mod=mod go install "sigs.k8s.io/kustomize/kustomize/v5@$VERSION" >&2
echo "$BIN/kustomize"
