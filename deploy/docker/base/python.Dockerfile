# Stand-in for python:3.11-slim-bookworm where no registry answers: Debian's own Python 3.11 on the
# debootstrap base (build-debian-base.sh). `python` and `pip` behave as in the official image.
ARG BASE=localhost/shopstream-debian-base:bookworm
FROM ${BASE}
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3=3.11.* python3-venv=3.11.* python-is-python3=3.11.* \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /usr/share/doc/* /usr/share/man/*
