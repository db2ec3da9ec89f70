# Stand-in for nginxinc/nginx-unprivileged where no registry answers: Debian's nginx set up the way
# the official unprivileged image is (uid 101, pid and temp files in /tmp, logs to stdout/stderr,
# /etc/nginx/templates/*.template rendered by envsubst at start, NGINX_ENVSUBST_FILTER honoured).
ARG BASE=localhost/shopstream-debian-base:bookworm
FROM ${BASE}
RUN apt-get update \
    && apt-get install -y --no-install-recommends nginx-light=1.22.* gettext-base=0.21* wget=1.21.* \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /usr/share/doc/* /usr/share/man/* /etc/nginx/sites-enabled/* \
    && groupadd --system --gid 101 nginx \
    && useradd --system --uid 101 --gid nginx --no-create-home --shell /usr/sbin/nologin nginx \
    && mkdir -p /etc/nginx/templates \
    && chown -R 101:101 /etc/nginx/conf.d /var/lib/nginx /var/log/nginx
COPY nginx.conf /etc/nginx/nginx.conf
COPY nginx-entrypoint.sh /docker-entrypoint.sh
USER 101
STOPSIGNAL SIGQUIT
ENTRYPOINT ["/docker-entrypoint.sh"]
CMD ["nginx", "-g", "daemon off;"]
