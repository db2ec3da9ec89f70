# Stand-in for eclipse-temurin:17-jre where no registry answers: Debian's OpenJDK 17 JRE.
ARG BASE=localhost/shopstream-debian-base:bookworm
FROM ${BASE}
# openjdk's postinst links a man page and fails when the folder is missing (the base has no man pages).
RUN mkdir -p /usr/share/man/man1 \
    && apt-get update \
    && apt-get install -y --no-install-recommends openjdk-17-jre-headless=17.* \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /usr/share/doc/* /usr/share/man/*
