"""Where the gateway sends each path, and what it answers by itself: the routes (service, prefix,
methods), its own refusals as RFC 9457 problem details, the headers on every answer, and the
nginx ``location`` blocks made of them (``gateway_conf.render`` puts them in nginx.conf).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from shopstream.config import Settings


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
# A route with gateway_route_concurrency requests in flight: limit_conn refuses with this code of
# its own, which error_page answers as a 503 whose detail says why (the plain 503 means no instance).
BUSY_STATUS = 529
BUSY_DETAIL = (
    "the $gw_route service has {concurrency} requests in flight at the gateway; try again after"
    " Retry-After"
)



def problem_body(status: int, detail: str) -> str:
    title = PROBLEMS[status][0]
    # Hand-written JSON: nginx interpolates the variables inside it at request time.
    return f'{{"type":"about:blank","title":"{title}","status":{status},"detail":"{detail}"}}'


def problem_target(status: int) -> str:
    return f"= /__problem_{status}" if status in LINE_PROBLEMS else f"@problem_{status}"


def _problem_location(target: str, status: int, detail: str) -> str:
    # add_header in a location replaces the server's, so the server's are repeated here.
    headers = {
        "X-Request-Id": "$gw_request_id",
        **SECURITY_HEADERS,
        **TLS_ONLY_HEADERS,
        **PROBLEM_HEADERS.get(status, {}),
    }
    lines = [
        f"        location {target} {{",
        *(["            internal;"] if target.startswith("= ") else []),
        "            default_type application/problem+json;",
        *(f"            add_header {k} {v} always;" for k, v in headers.items()),
        f"            return {status} '{problem_body(status, detail)}';",
        "        }",
    ]
    return "\n".join(lines)


def problem_locations(settings: Settings) -> str:
    blocks = []
    for status, (_title, detail) in PROBLEMS.items():
        detail = detail.format(
            body_limit=settings.gateway_body_limit,
            rate=settings.gateway_rate_limit,
            burst=settings.gateway_rate_burst,
            header_limit=settings.gateway_header_limit,
        )
        blocks.append(_problem_location(problem_target(status), status, detail))
    busy = BUSY_DETAIL.format(concurrency=settings.gateway_route_concurrency)
    blocks.append(_problem_location("@problem_busy", 503, busy))
    return "\n\n".join(blocks)


# Load balancing, by Settings.gateway_balancing: the nginx directive of each strategy. least_conn



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


def route_locations(upstreams: dict[str, list[int]], concurrency: int) -> str:
    # In both locations of a route: a POST diverted to the retry-safe one leaves the first in its
    # rewrite phase, before limit_conn's; nginx counts a request once however many it passes.
    limit = f"            limit_conn gw_routes {concurrency};\n"
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
            f"{limit}"
            f"            {target}\n"
            "        }\n"
        )
        if divert:
            blocks.append(
                f"        location ^~ {retry_safe}/ {{\n"
                "            internal;\n"
                f"            rewrite ^{retry_safe}(/.*)$ $1 break;\n"
                "            proxy_next_upstream error timeout non_idempotent;\n"
                f"{limit}"
                f"            {target}\n"
                "        }\n"
            )
    return "\n".join(blocks)
