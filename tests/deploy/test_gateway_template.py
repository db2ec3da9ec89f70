"""The containers' gateway (deploy/docker/gateway): the local gateway's rules, valid for nginx.

The template is rendered the way the nginx image does it (${SHOPSTREAM_*} from the container's
environment, here compose's) and checked with this machine's real nginx (`nginx -t`).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from shopstream_tools.runtime import gateway as local_gateway
from shopstream_tools.runtime import gateway_routes
from tests.deploy import helpers as h

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
