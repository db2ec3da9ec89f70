"""The containers' gateway (deploy/docker/gateway): the local gateway's rules, valid for nginx.

The template is rendered the way the nginx image does it (${SHOPSTREAM_*} from the container's
environment, here compose's) and checked with this machine's real nginx (`nginx -t`).
"""

from __future__ import annotations

import os
import re
import ssl
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from shopstream.config import Settings
from shopstream_tools.runtime import gateway as local_gateway
from shopstream_tools.runtime import gateway_routes, gateway_tls, processes
from tests.deploy import helpers as h
from tests.gateway_upstream import EchoServer

VARIABLE = re.compile(r"\$\{(SHOPSTREAM_\w+)\}")


def template() -> str:
    return h.GATEWAY_TEMPLATE.read_text()


def gateway_env() -> dict[str, str]:
    return dict(h.compose_config()["services"]["gateway"]["environment"])


def render(text: str, env: dict[str, str]) -> str:
    """envsubst as the nginx image runs it, then the service names pointed at loopback."""
    rendered = VARIABLE.sub(lambda m: env[m.group(1)], text)
    return re.sub(r"server (product|order):", "server 127.0.0.1:", rendered)


def nginx_test(conf_body: str, tmp_path: Path) -> tuple[int, str]:
    (tmp_path / "logs").mkdir(exist_ok=True)
    (tmp_path / "default.conf").write_text(conf_body)
    main = tmp_path / "nginx.conf"
    main.write_text(
        f"pid {tmp_path}/nginx.pid;\n"
        f"error_log {tmp_path}/logs/error.log;\n"
        "events { worker_connections 64; }\n"
        "http {\n"
        # What the nginx image's own nginx.conf sets around conf.d: the template must not repeat it.
        "    sendfile on;\n"
        "    keepalive_timeout 65;\n"
        f"    client_body_temp_path {tmp_path}/client_body;\n"
        f"    proxy_temp_path {tmp_path}/proxy;\n"
        f"    fastcgi_temp_path {tmp_path}/fastcgi;\n"
        f"    uwsgi_temp_path {tmp_path}/uwsgi;\n"
        f"    scgi_temp_path {tmp_path}/scgi;\n"
        f"    include {tmp_path}/default.conf;\n"
        "}\n"
    )
    result = h.run(
        [
            local_gateway.nginx_binary(),
            "-t",
            "-p",
            f"{tmp_path}/",
            "-c",
            str(main),
            "-e",
            f"{tmp_path}/logs/error.log",
        ]
    )
    return result.returncode, result.stderr


def test_rendered_template_passes_nginx_t(tmp_path: Path) -> None:
    code, output = nginx_test(render(template(), gateway_env()), tmp_path)
    assert code == 0, output


def test_nginx_t_fails_a_broken_template(tmp_path: Path) -> None:
    broken = render(template(), gateway_env()).replace("limit_req_status 429;", "limit_req_status;")
    code, output = nginx_test(broken, tmp_path)
    assert code != 0
    assert "limit_req_status" in output


def test_template_uses_only_settings_and_every_deployment_with_a_gateway_sets_them() -> None:
    used = set(VARIABLE.findall(template()))
    assert used <= h.settings_names()
    assert "$SHOPSTREAM_" not in VARIABLE.sub("", template()), "use ${NAME}: envsubst form"
    assert used <= set(gateway_env())
    for overlay in h.OVERLAYS:
        (gw,) = [w for w in h.k8s_workloads(overlay) if w.name == "gateway"]
        assert used <= set(gw.env)
    # The image's build-time check renders the same variables.
    dockerfile = (h.DOCKER / "gateway" / "Dockerfile").read_text()
    assert set(re.findall(r"^ARG (SHOPSTREAM_\w+)=", dockerfile, flags=re.M)) == used
    assert 'NGINX_ENVSUBST_FILTER="^SHOPSTREAM_"' in dockerfile


@pytest.mark.parametrize("route", gateway_routes.ROUTES, ids=lambda r: r.service)
def test_routes_and_methods_match_the_local_gateway(route: gateway_routes.Route) -> None:
    text = template()
    prefix = re.escape(route.prefix)
    assert f'"~^{prefix}(?:/|$)" {route.service};' in text
    assert f'{route.service} "{", ".join(route.methods)}";' in text
    allowed = set(re.findall(rf'"{route.service} ([A-Z]+)" 1;', text))
    assert allowed == set(route.methods)
    assert f"proxy_pass http://{route.upstream};" in text
    assert re.search(
        rf"server {route.service}:\$\{{SHOPSTREAM_{route.service.upper()}_PORT\}}", text
    )


@pytest.mark.parametrize("route", gateway_routes.ROUTES, ids=lambda r: r.service)
def test_read_cache_matches_the_local_gateway(route: gateway_routes.Route) -> None:
    location = template().split(f"location ~ ^{re.escape(route.prefix)}(?:/|$) {{", 1)[1]
    location = location.split("\n    }", 1)[0]
    directives = [line.strip() for line in gateway_routes.READ_CACHE.strip().splitlines()]
    for directive in directives:
        assert (directive in location) == route.cached, (route.service, directive)


def test_problem_answers_match_the_local_gateway() -> None:
    text = template()
    for status, (title, _detail) in gateway_routes.PROBLEMS.items():
        target = gateway_routes.problem_target(status).removeprefix("= ")
        assert f"error_page {status} {target};" in text
        assert f'"title":"{title}","status":{status}' in text
    statuses = {int(s) for s in re.findall(r"error_page (\d+) (?:@problem_|/__problem_)", text)}
    assert statuses == set(gateway_routes.PROBLEMS)


def test_rate_limit_body_limit_and_request_id_rules_are_present() -> None:
    text = template()
    assert "rate=${SHOPSTREAM_GATEWAY_RATE_LIMIT}r/s" in text
    assert "burst=${SHOPSTREAM_GATEWAY_RATE_BURST} nodelay" in text
    assert "client_max_body_size ${SHOPSTREAM_GATEWAY_BODY_LIMIT};" in text
    assert "proxy_set_header X-Request-Id $gw_request_id;" in text
    assert text.count("least_conn;") == len(gateway_routes.ROUTES)
    assert "return 415;" in text


def test_requests_in_flight_per_route_are_limited_as_in_the_local_gateway() -> None:
    text = template()
    assert "limit_conn_zone $gw_route zone=gw_routes:1m;" in text
    assert f"limit_conn_status {gateway_routes.BUSY_STATUS};" in text
    assert f"error_page {gateway_routes.BUSY_STATUS} =503 @problem_busy;" in text
    assert text.count(
        "limit_conn gw_routes ${SHOPSTREAM_GATEWAY_ROUTE_CONCURRENCY};"
    ) == len(gateway_routes.ROUTES)
    detail = gateway_routes.BUSY_DETAIL.format(concurrency="${SHOPSTREAM_GATEWAY_ROUTE_CONCURRENCY}")
    assert f'"status":503,"detail":"{detail}"' in text


# TLS in the container gateway: deploy/docker/gateway/tls.sh, the image's entrypoint,
# then the rendered template served by this machine's real nginx in front of echo servers.
TLS_SCRIPT = h.DOCKER / "gateway" / "tls.sh"
PLAIN, STATUS, HTTPS, PRODUCT, ORDER = 32080, 32079, 32443, 32181, 32182


def tls_script(conf_d: Path, env: dict[str, str], *then: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["sh", str(TLS_SCRIPT), *then],
                          env={"PATH": "/usr/bin:/bin", "GATEWAY_CONF_DIR": str(conf_d), **env},
                          capture_output=True, text=True, timeout=30)  # fmt: skip


@pytest.fixture
def container_gateway(tmp_path: Path) -> Iterator[tuple[Path, Callable[[dict[str, str]], None]]]:
    """(the local CA's certificate, start(extra env)): the container template with the TLS lines
    the image's script writes, run by the real nginx; stopped at the end."""
    issued = gateway_tls.issue(tmp_path / "ca", tmp_path / "tls", ["localhost", "127.0.0.1", "gateway"], "gateway")
    echo = {port: EchoServer(port).start() for port in (PRODUCT, ORDER)}
    started: list[Path] = []

    def start(extra: dict[str, str]) -> None:
        env = {**gateway_env(), "SHOPSTREAM_GATEWAY_PORT": str(PLAIN),
               "SHOPSTREAM_GATEWAY_STATUS_PORT": str(STATUS), "SHOPSTREAM_PRODUCT_PORT": str(PRODUCT),
               "SHOPSTREAM_ORDER_PORT": str(ORDER), "SHOPSTREAM_GATEWAY_TLS_PORT": str(HTTPS),
               "SHOPSTREAM_GATEWAY_TLS_CERT": str(issued.cert), "SHOPSTREAM_GATEWAY_TLS_KEY": str(issued.key),
               **extra}  # fmt: skip
        conf_d = tmp_path / "conf.d"
        conf_d.mkdir(exist_ok=True)
        written = tls_script(conf_d, env)
        assert written.returncode == 0, written.stderr
        body = render(template(), env).replace("/etc/nginx/conf.d/", f"{conf_d}/")
        body = body.replace("/tmp/gateway-cache", str(tmp_path / "cache"))
        code, output = nginx_test(body, tmp_path)
        assert code == 0, output
        main = tmp_path / "nginx.conf"
        if os.geteuid() == 0:  # workers read the data folder as its owner
            main.write_text("user root;\n" + main.read_text())
        with (tmp_path / "logs" / "stdout.log").open("w") as out:
            subprocess.run([local_gateway.nginx_binary(), "-p", f"{tmp_path}/", "-c", str(main)],
                           stdout=out, stderr=subprocess.STDOUT, check=True, timeout=30)  # fmt: skip
        started.append(main)
        for _ in range(100):
            if processes.port_open(HTTPS) and processes.port_open(PLAIN):
                return
            time.sleep(0.05)
        raise AssertionError("the container gateway did not listen")

    try:
        yield issued.ca, start
    finally:
        for main in started:
            subprocess.run([local_gateway.nginx_binary(), "-p", f"{tmp_path}/", "-c", str(main), "-s", "stop"],
                           capture_output=True, timeout=30)  # fmt: skip
        for server in echo.values():
            server.close()
        for _ in range(100):
            if not processes.port_open(HTTPS):
                break
            time.sleep(0.05)


def test_the_container_gateway_terminates_tls_and_keeps_http_as_configured(container_gateway) -> None:
    ca, start = container_gateway
    start({})
    trusted = ssl.create_default_context(cafile=str(ca))
    with httpx.Client(base_url=f"https://localhost:{HTTPS}", verify=trusted) as client:
        answer = client.get("/products/1", headers={"Authorization": "Bearer a.b.c"})
        assert answer.status_code == 200 and answer.json()["port"] == PRODUCT
        assert answer.headers["strict-transport-security"] == "max-age=31536000"
        refused = client.get("/nowhere")
        assert refused.status_code == 404 and refused.headers["content-type"] == "application/problem+json"
        assert refused.headers["strict-transport-security"] == "max-age=31536000"
    with pytest.raises(httpx.ConnectError):  # the local CA is what makes it trusted
        httpx.get(f"https://localhost:{HTTPS}/products/1")
    plain = httpx.get(f"http://127.0.0.1:{PLAIN}/products/1")
    assert plain.status_code == 200 and "strict-transport-security" not in plain.headers


def test_the_container_gateway_redirects_plain_http_when_configured(container_gateway) -> None:
    ca, start = container_gateway
    start({"SHOPSTREAM_GATEWAY_HTTPS_REDIRECT_PORT": str(HTTPS)})
    plain = httpx.post(f"http://127.0.0.1:{PLAIN}/orders", json={})
    assert plain.status_code == 308
    assert plain.headers["location"] == f"https://127.0.0.1:{HTTPS}/orders"
    followed = httpx.get(f"http://localhost:{PLAIN}/orders/9", follow_redirects=True,
                         verify=ssl.create_default_context(cafile=str(ca)))  # fmt: skip
    assert followed.status_code == 200 and followed.url.scheme == "https"
    assert followed.json()["port"] == ORDER
    assert httpx.get(f"http://127.0.0.1:{STATUS}/nginx_status").status_code == 200


def test_the_tls_script_refuses_a_missing_certificate_and_writes_nothing_when_off(tmp_path: Path) -> None:
    on = {"SHOPSTREAM_GATEWAY_TLS_PORT": "8443", "SHOPSTREAM_GATEWAY_TLS_CERT": str(tmp_path / "none.crt")}
    missing = tls_script(tmp_path, on)
    assert missing.returncode == 1 and "cannot read" in missing.stderr
    assert not (tmp_path / "tls.server").exists()
    (tmp_path / "tls.server").write_text("stale")
    off = tls_script(tmp_path, {"SHOPSTREAM_GATEWAY_TLS_PORT": "0"})
    assert off.returncode == 0 and not (tmp_path / "tls.server").exists()
    for bad in ({"SHOPSTREAM_GATEWAY_TLS_PORT": "84a3"}, {"SHOPSTREAM_GATEWAY_HTTPS_REDIRECT_PORT": "443"}):
        refused = tls_script(tmp_path, bad, "echo", "nginx started")
        assert refused.returncode == 1 and "nginx started" not in refused.stdout, bad
    # as the image's entrypoint: then the nginx image's own, with the command
    handed = tls_script(tmp_path, {"SHOPSTREAM_GATEWAY_TLS_PORT": "0"}, "echo", "nginx started")
    assert handed.returncode == 0 and handed.stdout.strip() == "nginx started"


def test_the_container_tls_lines_are_the_local_gateways(tmp_path: Path) -> None:
    """The script writes what the local gateway renders (gateway_tls.listen_lines), but for the
    listening address and the certificate's files."""
    local = Settings(data_dir=str(tmp_path / "local"), gateway_tls_port=8443, gateway_https_redirect_port=8443)
    cert, key = gateway_tls.certificate(local)
    written = tls_script(tmp_path, {"SHOPSTREAM_GATEWAY_TLS_PORT": "8443", "SHOPSTREAM_GATEWAY_HTTPS_REDIRECT_PORT": "8443",
                                    "SHOPSTREAM_GATEWAY_TLS_CERT": str(cert), "SHOPSTREAM_GATEWAY_TLS_KEY": str(key)})  # fmt: skip
    assert written.returncode == 0, written.stderr

    def lines(text: str) -> list[str]:
        return [line.strip().replace("127.0.0.1:", "") for line in text.splitlines() if line.strip()]

    assert lines((tmp_path / "tls.server").read_text()) == lines(gateway_tls.listen_lines(local))
    text = template()
    problems = text.count("location @problem_") + text.count("location = /__problem_")
    assert text.count("add_header Strict-Transport-Security $gw_hsts always;") == problems + 1
