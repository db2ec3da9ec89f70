"""The API gateway: Debian's nginx in front of the service instances, configured from Settings.

``render`` turns the settings and the ports of the running instances into a complete nginx.conf
(from ``infra/gateway/nginx.conf.tmpl``); ``start`` runs nginx as a daemon on that file, ``reload``
swaps the instance list without dropping a request, ``stop`` lets in-flight requests finish.
Everything nginx writes (pid, temp files, logs) lives under the data folder.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import re
import resource
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from shopstream.config import PROJECT_ROOT, Settings
from shopstream_tools.runtime import gateway_tls, processes

NAME = "gateway"
TEMPLATE = PROJECT_ROOT / "infra" / "gateway" / "nginx.conf.tmpl"
WORKER_PROCESSES = 2
# Old workers get this long to finish in-flight requests after a reload or quit.
SHUTDOWN_GRACE_SECONDS = 60
PROBE_USER_AGENT = "shopstream-gateway-probe"


@dataclass(frozen=True)
class Route:
    service: str
    prefix: str
    methods: tuple[str, ...]
    # the service answers a repeated Idempotency-Key with the first result: such a POST is retried
    idempotency_key: bool = False
    # anonymous reads may be answered from the gateway's cache, for as long as the service's
    # Cache-Control allows (docs/gateway.md#read-cache)
    cached: bool = False

    @property
    def upstream(self) -> str:
        return f"{self.service}_service"


ROUTES = (
    Route("product", "/products", ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"), cached=True),
    Route("order", "/orders", ("GET", "HEAD", "POST", "DELETE"), idempotency_key=True),
)

# The responses nginx writes itself, as RFC 9457 problem details. Details may use nginx variables
# that cannot carry a quote (route names, methods) and {settings} fields; never request data.
PROBLEMS: dict[int, tuple[str, str]] = {
    400: ("Bad Request", "the gateway could not parse the request"),
    404: ("Not Found", "no route for this path; the gateway serves /products and /orders"),
    405: ("Method Not Allowed", "$request_method is not allowed here; allowed: $gw_allow"),
    413: ("Content Too Large", "the request body is larger than the gateway limit of {body_limit}"),
    414: ("URI Too Long", "the request line is longer than the gateway limit of {header_limit}"),
    # nginx's own 494 (a header or the request line over large_client_header_buffers) answers as
    # the standard 431
    431: (
        "Request Header Fields Too Large",
        "a header is larger than the gateway limit of {header_limit}",
    ),
    415: (
        "Unsupported Media Type",
        "a request body must be Content-Type application/json"
        " (PATCH also accepts application/merge-patch+json)",
    ),
    429: (
        "Too Many Requests",
        "more than {rate} requests per second (burst {burst}) from this client",
    ),
    500: ("Internal Server Error", "the gateway failed to handle the request"),
    502: ("Bad Gateway", "no instance of the $gw_route service answered"),
    503: ("Service Unavailable", "no instance of the $gw_route service is running"),
    504: ("Gateway Timeout", "the $gw_route service did not answer in time"),
}
# On every answer, the services' and the gateway's own (docs/security.md#gateway): an API answers
# JSON only, so nothing may be sniffed as HTML, framed, or keep the referring URL.
SECURITY_HEADERS: dict[str, str] = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "\"default-src 'none'; frame-ancestors 'none'\"",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Resource-Policy": "same-origin",
}
# Refusals of a request line nginx could not read (a NUL, a URI over the limit): nginx cannot jump
# to a named location without a URI, so these go to an internal URI. The others stay in named
# locations, which keep the request's $uri (their details name the route).
LINE_PROBLEMS = frozenset({400, 414})
# Over TLS only: $gw_hsts is empty on plain HTTP, and nginx sends no header with an empty value.
TLS_ONLY_HEADERS = {"Strict-Transport-Security": "$gw_hsts"}
PROBLEM_HEADERS: dict[int, dict[str, str]] = {
    405: {"Allow": "$gw_allow"},
    429: {"Retry-After": "1"},
    503: {"Retry-After": "1"},
}

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


# Rendering --------------------------------------------------------------------------------------
def size_bytes(size: str) -> int:
    """An nginx size ("64k", "1m", "512") in bytes; rejects anything nginx would not take."""
    match = _SIZE.match(size.strip())
    if not match:
        raise ValueError(f"not an nginx size: {size!r} (use e.g. 64k, 1m)")
    return int(match.group(1)) * _UNITS[match.group(2).lower()]


def _problem_body(status: int, detail: str) -> str:
    title = PROBLEMS[status][0]
    # Hand-written JSON: nginx interpolates the variables inside it at request time.
    return f'{{"type":"about:blank","title":"{title}","status":{status},"detail":"{detail}"}}'


def _problem_target(status: int) -> str:
    return f"= /__problem_{status}" if status in LINE_PROBLEMS else f"@problem_{status}"


def _problem_locations(settings: Settings) -> str:
    blocks = []
    for status, (_title, detail) in PROBLEMS.items():
        detail = detail.format(
            body_limit=settings.gateway_body_limit,
            rate=settings.gateway_rate_limit,
            burst=settings.gateway_rate_burst,
            header_limit=settings.gateway_header_limit,
        )
        # add_header in a location replaces the server's, so the server's are repeated here.
        headers = {
            "X-Request-Id": "$gw_request_id",
            **SECURITY_HEADERS,
            **TLS_ONLY_HEADERS,
            **PROBLEM_HEADERS.get(status, {}),
        }
        lines = [
            f"        location {_problem_target(status)} {{",
            *(["            internal;"] if status in LINE_PROBLEMS else []),
            "            default_type application/problem+json;",
            *(f"            add_header {k} {v} always;" for k, v in headers.items()),
            f"            return {status} '{_problem_body(status, detail)}';",
            "        }",
        ]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


# Load balancing, by Settings.gateway_balancing: the nginx directive of each strategy. least_conn
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


# Only what the service marks cacheable (Cache-Control: public, max-age) is kept, under the full
# URI. A request with a token is never answered from the cache, so every token is still verified
# by the service, nor is its answer kept. An answer is kept from the second request for its URI
# (within `inactive`): the long tail of products read once would otherwise each cost a cache file
# written and evicted (measured: the gateway's CPU per read doubled on uniform reads).
# One request per key goes to the service while others wait for it (lock), and an expired entry
# is served while it is being refreshed (updating): a hot product costs the service one read per
# max-age however many ask.
READ_CACHE = """            proxy_cache gw_reads;
            proxy_cache_key $request_uri;
            proxy_cache_methods GET HEAD;
            proxy_cache_bypass $http_authorization;
            proxy_no_cache $http_authorization;
            proxy_cache_min_uses 2;
            proxy_cache_lock on;
            proxy_cache_lock_timeout 2s;
            proxy_cache_use_stale updating;
            proxy_cache_background_update on;
"""


def _route_locations(upstreams: dict[str, list[int]]) -> str:
    blocks = []
    for route in ROUTES:
        target = (
            f"proxy_pass http://{route.upstream};"
            if upstreams.get(route.service)
            else "return 503;"
        )
        retry_safe = f"/__retry_safe_{route.service}"
        divert = (
            "            if ($gw_retry_safe_post) {\n"
            f"                rewrite ^ {retry_safe}$uri last;\n"
            "            }\n"
            if route.idempotency_key and upstreams.get(route.service)
            else ""
        )
        blocks.append(
            f"        location ~ ^{re.escape(route.prefix)}(?:/|$) {{\n"
            + (READ_CACHE if route.cached else "")
            + "            if ($gw_method_ok = 0) {\n"
            "                return 405;\n"
            "            }\n"
            "            if ($gw_bad_type) {\n"
            "                return 415;\n"
            "            }\n"
            f"{divert}"
            f"            {target}\n"
            "        }\n"
        )
        if divert:
            blocks.append(
                f"        location ^~ {retry_safe}/ {{\n"
                "            internal;\n"
                f"            rewrite ^{retry_safe}(/.*)$ $1 break;\n"
                "            proxy_next_upstream error timeout non_idempotent;\n"
                f"            {target}\n"
                "        }\n"
            )
    return "\n".join(blocks)


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
            f"        error_page {s} {_problem_target(s).removeprefix('= ')};" for s in PROBLEMS
        )
        + "\n        error_page 494 =431 @problem_431;",
        "routes": _route_locations(upstreams),
        "problems": _problem_locations(settings),
        "status_404_body": _problem_body(404, "the status port serves /nginx_status and /fixed"),
    }

    def substitute(match: re.Match[str]) -> str:
        return values[match.group(1)]

    return _PLACEHOLDER.sub(substitute, TEMPLATE.read_text())


# Process control --------------------------------------------------------------------------------
def _nginx(settings: Settings, conf: Path, *args: str) -> subprocess.CompletedProcess[str]:
    argv = [
        nginx_binary(),
        "-p",
        f"{gateway_dir(settings)}/",
        "-c",
        str(conf),
        # Startup errors go to our log, not to the compiled-in default.
        "-e",
        str(error_log_path(settings)),
        *args,
    ]
    return subprocess.run(argv, capture_output=True, text=True, check=False)


def _failure(what: str, result: subprocess.CompletedProcess[str] | None, settings: Settings) -> str:
    parts = [what]
    if result is not None and (result.stderr or result.stdout):
        parts.append((result.stderr or result.stdout).strip())
    with contextlib.suppress(OSError):
        tail = error_log_path(settings).read_text(errors="replace").splitlines()[-5:]
        if tail:
            parts.append("gateway.log: " + "\n".join(tail))
    return "\n".join(parts)


def _write_conf(settings: Settings, upstreams: dict[str, list[int]], path: Path) -> None:
    (gateway_dir(settings) / "tmp").mkdir(parents=True, exist_ok=True)
    processes.logs_dir(settings)
    path.write_text(render(settings, upstreams))


def pid(settings: Settings) -> int | None:
    """The master's pid, or None when it is not running (a stale pid file reads as None)."""
    try:
        master = int(pid_path(settings).read_text().split()[0])
    except (FileNotFoundError, ValueError, IndexError):
        return None
    if not processes.alive(master) or "nginx" not in processes.command_line(master):
        return None
    return master


def running(settings: Settings) -> bool:
    return pid(settings) is not None and processes.port_open(settings.gateway_port)


def _answers(port: int) -> bool:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1.0)
    try:
        conn.request("HEAD", "/", headers={"User-Agent": PROBE_USER_AGENT})
        conn.getresponse().read()
        return True
    except OSError:
        return False
    finally:
        conn.close()


def _workers(master: int) -> dict[int, str]:
    """The master's children by pid, with titles like "nginx: worker process is shutting down"."""
    children = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if ppid == master:
            child = int(stat.parent.name)
            children[child] = processes.command_line(child)
    return children


# Rate limits by principal (docs/gateway.md) ------------------------------------------------------
def _address_limit(settings: Settings) -> dict[str, str]:
    """The per-address ceiling over every principal from one address (one second's burst)."""
    if settings.gateway_address_rate_limit < settings.gateway_rate_limit:
        raise ValueError("gateway_address_rate_limit must be >= gateway_rate_limit")
    return {"address_rate_limit": str(settings.gateway_address_rate_limit)}


def start(settings: Settings, upstreams: dict[str, list[int]]) -> int:
    """Start nginx (or reload a running one with these upstreams); return the master's pid."""
    current = pid(settings)
    if current is not None:
        reload(settings, upstreams)
        return current
    pid_path(settings).unlink(missing_ok=True)
    conf = conf_path(settings)
    _write_conf(settings, upstreams, conf)
    result = _nginx(settings, conf)
    if result.returncode != 0:
        raise RuntimeError(_failure("gateway: nginx did not start", result, settings))
    # The launching process exits once it has forked the master, which then writes the pid file.
    processes.wait_until(lambda: pid(settings) is not None, 10, "gateway pid file")
    master = pid(settings)
    assert master is not None
    try:
        processes.wait_until(lambda: _answers(settings.gateway_port), 10, "gateway", pid=master)
    except (TimeoutError, RuntimeError) as exc:
        raise RuntimeError(_failure(str(exc), None, settings)) from exc
    return master


def reload(
    settings: Settings, upstreams: dict[str, list[int]], drain_timeout: float | None = None
) -> None:
    """Apply a new instance list gracefully; return once only the new configuration serves.

    nginx keeps listening throughout: the master starts new workers on the new config, and the
    old ones stop accepting, finish their in-flight requests and exit. Waiting for that last step
    means a caller may stop an instance it just removed without cutting a request off.
    """
    master = pid(settings)
    if master is None:
        start(settings, upstreams)
        return
    conf = conf_path(settings)
    candidate = conf.with_name("nginx.conf.next")
    _write_conf(settings, upstreams, candidate)
    checked = _nginx(settings, candidate, "-t", "-q")
    if checked.returncode != 0:
        raise RuntimeError(_failure(f"gateway: {candidate} failed nginx -t", checked, settings))
    candidate.replace(conf)

    old = set(_workers(master))
    result = _nginx(settings, conf, "-s", "reload")
    if result.returncode != 0:
        raise RuntimeError(_failure("gateway: nginx -s reload failed", result, settings))

    def new_workers_up() -> bool:
        titles = _workers(master)
        fresh = [p for p, title in titles.items() if p not in old and "worker process" in title]
        return len(fresh) >= WORKER_PROCESSES

    try:
        processes.wait_until(new_workers_up, 10, "gateway reload", pid=master)
    except (TimeoutError, RuntimeError) as exc:
        # The master keeps the old config when it cannot apply the new one (e.g. a port in use).
        raise RuntimeError(_failure(str(exc), None, settings)) from exc
    timeout = SHUTDOWN_GRACE_SECONDS + 5 if drain_timeout is None else drain_timeout
    processes.wait_until(
        lambda: not (old & set(_workers(master))), timeout, "gateway old workers draining"
    )


def stop(settings: Settings, timeout: float = SHUTDOWN_GRACE_SECONDS + 5) -> None:
    """Graceful quit: stop accepting, finish in-flight requests; kill after the timeout."""
    master = pid(settings)
    if master is None:
        pid_path(settings).unlink(missing_ok=True)
        return
    workers = set(_workers(master))
    result = _nginx(settings, conf_path(settings), "-s", "quit")
    if result.returncode != 0:
        # No readable conf to find the pid file through: -s quit is this signal.
        with contextlib.suppress(ProcessLookupError):
            os.kill(master, signal.SIGQUIT)
    deadline = time.monotonic() + timeout
    while processes.alive(master) and time.monotonic() < deadline:
        time.sleep(0.05)
    if processes.alive(master):
        processes.terminate(master, timeout=5)
    # A killed master leaves its workers behind; they must not keep the port.
    for worker in workers:
        if processes.alive(worker) and "nginx" in processes.command_line(worker):
            with contextlib.suppress(ProcessLookupError):
                os.kill(worker, signal.SIGKILL)
    pid_path(settings).unlink(missing_ok=True)
