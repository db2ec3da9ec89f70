"""Every image of the compose stack, built with the engine from the same Dockerfiles as anywhere.

With a registry in reach the Dockerfiles' public base images are used as they stand. Without one,
stand-ins made from Debian's packages replace them through the Dockerfiles' base-image build
arguments: a debootstrap base (deploy/docker/base/build-debian-base.sh, built once and kept) and
small images on top of it (deploy/docker/base/*.Dockerfile). A TLS proxy's CA bundle (the host's,
or SHOPSTREAM_BUILD_CACERT) reaches pip and the jar downloads as the build secret ``cacert``.
"""

from __future__ import annotations

import os
import ssl
import subprocess
import time
from dataclasses import dataclass

from shopstream.config import PROJECT_ROOT
from shopstream_tools.compose.engine import Engine

BASE = PROJECT_ROOT / "deploy" / "docker" / "base"
DEBIAN_BASE = "localhost/shopstream-debian-base:bookworm"
PYTHON = "localhost/shopstream-standin/python:3.11-bookworm"
JRE = "localhost/shopstream-standin/jre:17-bookworm"
NGINX = "localhost/shopstream-standin/nginx:bookworm"
OPS = "localhost/shopstream-standin/ops:bookworm"
ZIPKIN = "localhost/shopstream-standin/zipkin:3.4.4"
OPS_PACKAGES = (
    "prometheus=2.42.* prometheus-alertmanager=0.25.* prometheus-postgres-exporter=0.11.*"
    " prometheus-nginx-exporter=0.11.*"
)


@dataclass(frozen=True)
class Image:
    tag: str
    dockerfile: str  # relative to the build context
    context: str = "."  # relative to the repository root
    args: tuple[tuple[str, str], ...] = ()
    standin_args: tuple[tuple[str, str], ...] = ()  # only when no registry answers


def standins() -> list[Image]:
    """Stand-ins for the public base and tool images, in build order."""
    base = "deploy/docker/base"
    return [
        Image(PYTHON, "python.Dockerfile", base),
        Image(JRE, "jre.Dockerfile", base),
        Image(NGINX, "nginx.Dockerfile", base),
        Image(OPS, "debian-package.Dockerfile", base, (("PACKAGES", OPS_PACKAGES),)),
        Image(ZIPKIN, "deploy/docker/base/zipkin.Dockerfile", "."),
    ]


def stack(tag: str) -> list[Image]:
    """shopstream's own images, named as docker-compose.yml names them."""
    service = "deploy/docker/service.Dockerfile"
    return [
        Image(f"shopstream/postgres:{tag}", "deploy/docker/postgres/Dockerfile",
              standin_args=(("BASE", DEBIAN_BASE),)),
        Image(f"shopstream/kafka:{tag}", "deploy/docker/kafka/Dockerfile",
              standin_args=(("PYTHON_IMAGE", PYTHON), ("JRE_IMAGE", JRE))),
        Image(f"shopstream/product-service:{tag}", service,
              args=(("SERVICE", "product"), ("PORT", "8081")),
              standin_args=(("PYTHON_IMAGE", PYTHON), ("RDS_CA_BUNDLE_URL", ""))),
        Image(f"shopstream/order-service:{tag}", service,
              args=(("SERVICE", "order"), ("PORT", "8082")),
              standin_args=(("PYTHON_IMAGE", PYTHON), ("RDS_CA_BUNDLE_URL", ""))),
        Image(f"shopstream/gateway:{tag}", "deploy/docker/gateway/Dockerfile",
              standin_args=(("NGINX_IMAGE", NGINX),)),
    ]


def cacert() -> str | None:
    configured = os.environ.get("SHOPSTREAM_BUILD_CACERT") or ssl.get_default_verify_paths().cafile
    return configured if configured and os.path.exists(configured) else None


def exists(engine: Engine, tag: str) -> bool:
    return engine.run("image", "inspect", tag, check=False, capture=True).strip() not in ("", "[]")


def build(engine: Engine, image: Image, use_standins: bool) -> float:
    started = time.monotonic()
    args = [*image.args, *(image.standin_args if use_standins else ())]
    command = ["build", "--network", "host", "-q", "-t", image.tag, "-f",
               str(PROJECT_ROOT / image.context / image.dockerfile)]
    if engine.name == "podman":  # OCI images would drop the Dockerfiles' HEALTHCHECK
        command += ["--format", "docker"]
    for name, value in args:
        command += ["--build-arg", f"{name}={value}"]
    if (ca := cacert()) is not None:
        command += ["--secret", f"id=cacert,src={ca}"]
    engine.run(*command, str(PROJECT_ROOT / image.context), capture=True)
    return time.monotonic() - started


def build_all(engine: Engine, tag: str, use_standins: bool, work_dir: str) -> dict[str, float]:
    """Build what is missing of the stand-ins (kept between runs) and all of the stack's images."""
    seconds: dict[str, float] = {}
    if use_standins:
        if not exists(engine, DEBIAN_BASE):
            started = time.monotonic()
            engine_env = {**os.environ, **engine.env}
            subprocess.run([str(BASE / "build-debian-base.sh"), engine.name, work_dir],
                           env=engine_env, check=True, capture_output=True)
            seconds[DEBIAN_BASE] = time.monotonic() - started
        for image in standins():
            if not exists(engine, image.tag):
                seconds[image.tag] = build(engine, image, use_standins)
    for image in stack(tag):
        print(f"building {image.tag}", flush=True)
        seconds[image.tag] = build(engine, image, use_standins)
    return seconds
