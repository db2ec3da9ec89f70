#!/usr/bin/env bash
# Build the django-oscar peer's own virtualenv (peers/oscar/venv), kept out of shopstream's
# pyproject so the peer's dependencies never mix with the platform's.
set -euo pipefail
here="$(cd "$(dirname "$0")/../.." && pwd)"
venv="$here/peers/oscar/venv"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install -q django-oscar==4.2.1 django-oscar-api==3.3.0 \
    gunicorn psycopg2-binary sorl-thumbnail
echo "oscar peer venv ready: $venv"
