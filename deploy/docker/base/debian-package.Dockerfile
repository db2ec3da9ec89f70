# Stand-in for an official tool image (Prometheus, Alertmanager) where no registry answers: the
# tool from Debian's package, run as an unprivileged user. The compose file deploy/docker/
# compose.standins.yml names the binary as the entrypoint.
ARG BASE=localhost/shopstream-debian-base:bookworm
FROM ${BASE}
ARG PACKAGES
# PACKAGES carries the version pins (shopstream_tools/compose/images.py).
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ${PACKAGES} wget=1.21.* \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /usr/share/doc/* /usr/share/man/*
# The data folders the compose volumes mount, writable by the unprivileged user.
RUN mkdir -p /prometheus /alertmanager && chown 65534:65534 /prometheus /alertmanager
USER 65534:65534
