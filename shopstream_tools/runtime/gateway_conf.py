"""The gateway's nginx.conf: ``render`` turns the settings and the ports of the running instances
into a complete file (from ``infra/gateway/nginx.conf.tmpl``), with the routes and answers of
``gateway_routes``, the load balancing of ``Settings.gateway_balancing`` and the rate limits.
Everything nginx writes (pid, temp files, logs) lives under the data folder: the paths are here.
"""

from __future__ import annotations

import os
import re
import resource
import shutil
from pathlib import Path

from shopstream.config import PROJECT_ROOT, Settings
from shopstream_tools.runtime import gateway_tls, processes
from shopstream_tools.runtime.gateway_routes import (
    BUSY_STATUS,
    PROBLEMS,
    ROUTES,
    SECURITY_HEADERS,
    TLS_ONLY_HEADERS,
    problem_body,
    problem_locations,
    problem_target,
    route_locations,
)

NAME = "gateway"
TEMPLATE = PROJECT_ROOT / "infra" / "gateway" / "nginx.conf.tmpl"
WORKER_PROCESSES = 2
# Old workers get this long to finish in-flight requests after a reload or quit.
SHUTDOWN_GRACE_SECONDS = 60

_SIZE = re.compile(r"^(\d+)([kKmMgG]?)$")
_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}
_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")
_BODY_BUFFER_MAX = 1024**2


# Paths ------------------------------------------------------------------------------------------
def gateway_dir(settings: Settings) -> Path:
    return settings.data_path / "gateway"


def conf_path(settings: Settings) -> Path:
    return gateway_dir(settings) / "nginx.conf"


def pid_path(settings: Settings) -> Path:
    return gateway_dir(settings) / "nginx.pid"


def access_log_path(settings: Settings) -> Path:
    return processes.logs_dir(settings) / "gateway-access.log"


def error_log_path(settings: Settings) -> Path:
    return processes.log_file(settings, NAME)


def nginx_binary() -> str:
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else "")
    if not found:
        raise RuntimeError("nginx not found: run scripts/bootstrap.sh")
    return found


def size_bytes(size: str) -> int:
    """An nginx size ("64k", "1m", "512") in bytes; rejects anything nginx would not take. The
    JVM's heap sizes (-Xmx256m) are written the same way."""
    match = _SIZE.match(size.strip())
    if not match:
        raise ValueError(f"not an nginx size: {size!r} (use e.g. 64k, 1m)")
    return int(match.group(1)) * _UNITS[match.group(2).lower()]


# and random_two read the shared zone, so they see every worker's connections.
BALANCING = {
    "least_conn": "least_conn;",
    "round_robin": "",  # nginx's default: each instance in turn
    "random_two": "random two least_conn;",
    # consistent hashing: an instance added or removed moves only its share of the customers
    "customer_hash": "hash $gw_customer consistent;",
}
# Who the customer is, for customer_hash: the customer_id query parameter (GET /orders), else the
# X-Customer-Id header, else the client (X-Client-Id, as the rate limit), else the address. nginx
# does not read JSON bodies, so a client placing orders should send X-Customer-Id.
CUSTOMER_KEY = """    map $arg_customer_id $gw_customer_query {
        default $arg_customer_id;
        "" $http_x_customer_id;
    }
    map $gw_customer_query $gw_customer_header {
        default $gw_customer_query;
        "" $http_x_client_id;
    }
    map $gw_customer_header $gw_customer {
        default $gw_customer_header;
        "" $remote_addr;
    }
"""


def _balancing(strategy: str) -> str:
    if strategy not in BALANCING:
        raise ValueError(f"gateway_balancing {strategy!r} is not one of {sorted(BALANCING)}")
    return BALANCING[strategy]


def _upstream_blocks(upstreams: dict[str, list[int]], strategy: str = "least_conn") -> str:
    blocks = []
    for route in ROUTES:
        ports = upstreams.get(route.service) or []
        if not ports:
            continue
        servers = "\n".join(
            f"        server 127.0.0.1:{int(port)} max_fails=2 fail_timeout=5s;" for port in ports
        )
        blocks.append(
            f"    upstream {route.upstream} {{\n"
            # A shared zone lets least_conn see the connections of every worker, not just its own.
            f"        zone {route.upstream} 256k;\n"
            + (f"        {_balancing(strategy)}\n" if _balancing(strategy) else "")
            + f"{servers}\n"
            "        keepalive 64;\n"
            "        keepalive_requests 10000;\n"
            "        keepalive_timeout 60s;\n"
            "    }\n"
        )
    return "\n".join(blocks)



# Rate limits by principal (docs/gateway.md) ------------------------------------------------------
def _address_limit(settings: Settings) -> dict[str, str]:
    """The per-address ceiling over every principal from one address (one second's burst)."""
    if settings.gateway_address_rate_limit < settings.gateway_rate_limit:
        raise ValueError("gateway_address_rate_limit must be >= gateway_rate_limit")
    return {"address_rate_limit": str(settings.gateway_address_rate_limit)}


def _nofile_limit() -> int:
    # Raising past the hard limit fails without CAP_SYS_RESOURCE (containers), so stay under it.
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    return 65536 if hard == resource.RLIM_INFINITY else min(65536, hard)


def render(settings: Settings, upstreams: dict[str, list[int]]) -> str:
    """The complete nginx.conf for these settings and instance ports (127.0.0.1)."""
    known = {route.service for route in ROUTES}
    unknown = set(upstreams) - known
    if unknown:
        raise ValueError(f"no gateway route for {sorted(unknown)}; routes: {sorted(known)}")
    for ports in upstreams.values():
        for port in ports:
            if not 0 < int(port) < 65536:
                raise ValueError(f"not a port: {port}")
    if settings.gateway_rate_limit < 1 or settings.gateway_rate_burst < 0:
        raise ValueError("gateway_rate_limit must be >= 1 and gateway_rate_burst >= 0")
    if not 1 <= settings.gateway_route_concurrency <= 65535:  # nginx's limit_conn range
        raise ValueError("gateway_route_concurrency must be 1-65535")
    _balancing(settings.gateway_balancing)
    body_limit = size_bytes(settings.gateway_body_limit)
    size_bytes(settings.gateway_header_limit)

    gateway = gateway_dir(settings)
    values = {
        # Workers must write the data folder, which belongs to whoever runs the platform.
        "user": "user root;" if os.geteuid() == 0 else "# user: the account that started nginx",
        "worker_processes": str(WORKER_PROCESSES),
        "worker_rlimit_nofile": str(_nofile_limit()),
        "shutdown_grace": str(SHUTDOWN_GRACE_SECONDS),
        "pid_file": str(pid_path(settings)),
        "error_log": str(error_log_path(settings)),
        "access_log": str(access_log_path(settings)),
        "temp_dir": str(gateway / "tmp"),
        "cache_dir": str(gateway / "cache"),
        "body_limit": settings.gateway_body_limit.strip(),
        "body_buffer": str(min(body_limit, _BODY_BUFFER_MAX) or _BODY_BUFFER_MAX),
        "rate_limit": str(settings.gateway_rate_limit),
        "rate_burst": str(settings.gateway_rate_burst),
        **_address_limit(settings),
        "gateway_port": str(int(settings.gateway_port)),
        "status_port": str(int(settings.gateway_status_port)),
        "route_map": "\n".join(
            f'        "~^{re.escape(r.prefix)}(?:/|$)" {r.service};' for r in ROUTES
        ),
        "allow_map": "\n".join(f'        {r.service} "{", ".join(r.methods)}";' for r in ROUTES),
        "method_map": "\n".join(
            f'        "{r.service} {method}" 1;' for r in ROUTES for method in r.methods
        ),
        "upstreams": (CUSTOMER_KEY if settings.gateway_balancing == "customer_hash" else "")
        + _upstream_blocks(upstreams, settings.gateway_balancing),
        "header_limit": settings.gateway_header_limit.strip(),
        "security_headers": "\n".join(
            f"        add_header {k} {v} always;"
            for k, v in {**SECURITY_HEADERS, **TLS_ONLY_HEADERS}.items()
        ),
        "tls": gateway_tls.listen_lines(settings),
        "error_pages": "\n".join(
            f"        error_page {s} {problem_target(s).removeprefix('= ')};" for s in PROBLEMS
        )
        + "\n        error_page 494 =431 @problem_431;"
        + f"\n        error_page {BUSY_STATUS} =503 @problem_busy;",
        "busy_status": str(BUSY_STATUS),
        "routes": route_locations(upstreams, settings.gateway_route_concurrency),
        "problems": problem_locations(settings),
        "status_404_body": problem_body(404, "the status port serves /nginx_status and /fixed"),
    }

    def substitute(match: re.Match[str]) -> str:
        return values[match.group(1)]

    return _PLACEHOLDER.sub(substitute, TEMPLATE.read_text())
