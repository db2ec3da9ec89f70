# Stand-in for openzipkin/zipkin where no registry answers: the same Zipkin server jar the local
# platform runs (Maven Central, SHA-256 pinned in zipkin.lock) on the JRE stand-in, with the
# official image's `docker-healthcheck` command and in-memory storage. Build from the repository root.
ARG PYTHON_IMAGE=localhost/shopstream-standin/python:3.11-bookworm
ARG JRE_IMAGE=localhost/shopstream-standin/jre:17-bookworm

FROM ${PYTHON_IMAGE} AS jar
COPY deploy/docker/base/zipkin.lock deploy/docker/kafka/fetch_jars.py /tmp/
RUN --mount=type=secret,id=cacert python /tmp/fetch_jars.py /tmp/zipkin.lock /opt/zipkin /run/secrets/cacert

FROM ${JRE_IMAGE}
RUN apt-get update \
    && apt-get install -y --no-install-recommends wget=1.21.* \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin \
    && printf '#!/bin/sh\nexec wget -q -O /dev/null http://127.0.0.1:9411/health\n' > /usr/local/bin/docker-healthcheck \
    && chmod 0755 /usr/local/bin/docker-healthcheck
COPY --from=jar /opt/zipkin/zipkin-server-3.4.4-exec.jar /opt/zipkin/zipkin.jar
USER 65534:65534
EXPOSE 9411
# JAVA_OPTS as in the official image (compose sets the heap there).
ENTRYPOINT ["sh", "-c", "exec java $JAVA_OPTS -jar /opt/zipkin/zipkin.jar"]
