# syntax=docker/dockerfile:1.7
# One image per Python service of shopstream. The repository is one package (one pyproject.toml),
# so both images hold the whole package; SERVICE picks the default command, the exposed port and
# the health check. Relays, consumers and migrations run from the same image with another command.
# Build from the repository root:
#   docker build -f deploy/docker/service.Dockerfile --build-arg SERVICE=product -t shopstream/product-service:0.1.0 .
#   docker build -f deploy/docker/service.Dockerfile --build-arg SERVICE=order --build-arg PORT=8082 -t shopstream/order-service:0.1.0 .
ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm

# Stage 1: build a virtualenv with the package and its pinned dependencies (all ship as wheels,
# so no compiler is needed). Nothing of this stage but /opt/venv reaches the runtime image.
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
RUN python -m venv /opt/venv
COPY pyproject.toml ./
COPY shopstream ./shopstream
COPY shopstream_tools ./shopstream_tools
COPY services ./services
# dumb-init (PID 1) forwards SIGTERM to the process and reaps zombies. Behind a TLS proxy, its CA
# bundle comes in as the build secret `cacert` (never stored in a layer); without it pip uses its own.
# Pruned (about 60 MB): Faker and Pygments, which only litestar's test factories and CLI colouring
# import, and pip/setuptools, which a running service never needs.
RUN --mount=type=secret,id=cacert \
    if [ -f /run/secrets/cacert ]; then export PIP_CERT=/run/secrets/cacert; fi \
    && /opt/venv/bin/pip install . dumb-init==1.2.5.post1 \
    && /opt/venv/bin/pip uninstall -y -q faker pygments \
    && /opt/venv/bin/pip uninstall -y -q pip setuptools \
    && /opt/venv/bin/python -m compileall -q /opt/venv/lib
# RDS's CA bundle, with which the services verify the database server (sslmode=verify-full,
# SHOPSTREAM_POSTGRES_SSLROOTCERT=/etc/ssl/rds/global-bundle.pem on ECS and EKS). An empty
# RDS_CA_BUNDLE_URL leaves it out: builds without internet access, for compose's own PostgreSQL.
ARG RDS_CA_BUNDLE_URL=https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem
RUN --mount=type=secret,id=cacert \
    mkdir -p /opt/rds-ca && if [ -n "$RDS_CA_BUNDLE_URL" ]; then \
      CAFILE=$([ -f /run/secrets/cacert ] && echo /run/secrets/cacert || true) \
      /opt/venv/bin/python -c 'import os, ssl, sys, urllib.request; ctx = ssl.create_default_context(cafile=os.environ["CAFILE"] or None); pem = urllib.request.urlopen(sys.argv[1], context=ctx, timeout=60).read(); assert pem.count(b"BEGIN CERTIFICATE") > 0, "not a PEM bundle"; open("/opt/rds-ca/global-bundle.pem", "wb").write(pem)' "$RDS_CA_BUNDLE_URL"; \
    fi

# Stage 2: the runtime image: the virtualenv, three small scripts, a non-root user.
FROM ${PYTHON_IMAGE}
ARG SERVICE=product
ARG PORT=8081
LABEL org.opencontainers.image.title="shopstream-${SERVICE}-service" \
      org.opencontainers.image.description="shopstream ${SERVICE}-service (HTTP API, outbox relay, consumers, migrations)" \
      org.opencontainers.image.source="https://example.invalid/shopstream"
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    APP_SERVICE=${SERVICE}
RUN groupadd --system --gid 10001 shopstream \
    && useradd --system --uid 10001 --gid shopstream --home-dir /var/lib/shopstream \
       --create-home --shell /usr/sbin/nologin shopstream
COPY --from=build /opt/venv /opt/venv
COPY --from=build /opt/rds-ca /etc/ssl/rds
COPY deploy/docker/entrypoint.sh /usr/local/bin/docker-entrypoint
COPY deploy/docker/healthcheck.py /usr/local/bin/shopstream-healthcheck
COPY deploy/docker/provision.py /usr/local/bin/shopstream-provision
USER 10001:10001
WORKDIR /var/lib/shopstream
EXPOSE ${PORT}
# Liveness of the HTTP API on SHOPSTREAM_<SERVICE>_PORT; relays and consumers pass their metrics URL.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 CMD ["shopstream-healthcheck"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["dumb-init", "--", "docker-entrypoint"]
# No arguments: `shopstream serve $APP_SERVICE --host 0.0.0.0` (see entrypoint.sh).
CMD []
