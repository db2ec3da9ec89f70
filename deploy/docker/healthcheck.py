#!/opt/venv/bin/python
"""Container health check of the shopstream service images (Docker HEALTHCHECK, compose, ECS).

``shopstream-healthcheck [URL]`` exits 0 when URL answers 2xx within two seconds, else 1.
Without URL it checks the liveness endpoint of this image's HTTP API: ``/health/live`` on
``SHOPSTREAM_<SERVICE>_PORT``, read through ``Settings`` like every other setting. Relays and
consumers, which serve only metrics, pass their metrics URL.
"""

from __future__ import annotations

import os
import sys
import urllib.request

LIVENESS_PATH = "/health/live"


def default_url() -> str:
    from shopstream.config import Settings

    service = os.environ.get("APP_SERVICE", "product")
    return f"http://127.0.0.1:{Settings.from_env().service_port(service)}{LIVENESS_PATH}"


def main(argv: list[str]) -> int:
    url = argv[1] if len(argv) > 1 else default_url()
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            healthy = 200 <= response.status < 300
    except OSError as exc:
        print(f"unhealthy: {url}: {exc}", file=sys.stderr)
        return 1
    if not healthy:
        print(f"unhealthy: {url}: HTTP {response.status}", file=sys.stderr)
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
