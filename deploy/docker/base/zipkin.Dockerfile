# Stand-in for openzipkin/zipkin where no registry answers: the same Zipkin server jar the local
# platform runs (Maven Central, checksum pinned) on the JRE stand-in, with the official image's
# `docker-healthcheck` command and in-memory storage.
ARG JRE_IMAGE=localhost/shopstream-standin/jre:17-bookworm
FROM ${JRE_IMAGE}
RUN apt-get update \
    && apt-get install -y --no-install-recommends wget \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin
ADD --checksum=sha256:45530b0d895d7b56fffa5f6385f4bd45a6b8aa3c57e1c2bda4b4bb1225881333 --chmod=0444 \
    https://repo1.maven.org/maven2/io/zipkin/zipkin-server/3.4.4/zipkin-server-3.4.4-exec.jar /opt/zipkin/zipkin.jar
RUN printf '#!/bin/sh\nexec wget -q -O /dev/null http://127.0.0.1:9411/health\n' > /usr/local/bin/docker-healthcheck \
    && chmod 0755 /usr/local/bin/docker-healthcheck
USER 65534:65534
EXPOSE 9411
# JAVA_OPTS as in the official image (compose sets the heap there).
ENTRYPOINT ["sh", "-c", "exec java $JAVA_OPTS -jar /opt/zipkin/zipkin.jar"]
