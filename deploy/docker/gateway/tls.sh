#!/bin/sh
# TLS for the gateway container: the image's entrypoint (`shopstream-gateway-tls
# /docker-entrypoint.sh nginx ...`), then the nginx image's own entrypoint. With
# SHOPSTREAM_GATEWAY_TLS_PORT set (not 0) it writes the server block's TLS lines to
# ${GATEWAY_CONF_DIR:-/etc/nginx/conf.d}/tls.server, which default.conf includes: a TLS
# 1.2/1.3 listener on the certificate SHOPSTREAM_GATEWAY_TLS_CERT/_KEY name (a mounted file: the
# compose stack's from the local CA, a Kubernetes TLS Secret), and with
# SHOPSTREAM_GATEWAY_HTTPS_REDIRECT_PORT set, plain HTTP answered 308 to HTTPS on that port. The
# same lines as the local gateway's (shopstream_tools/runtime/gateway_tls.py). A missing or
# unreadable certificate stops the container: it never falls back to plain HTTP on its own.
set -eu
out="${GATEWAY_CONF_DIR:-/etc/nginx/conf.d}/tls.server"
port="${SHOPSTREAM_GATEWAY_TLS_PORT:-0}"
redirect="${SHOPSTREAM_GATEWAY_HTTPS_REDIRECT_PORT:-0}"
for value in "$port" "$redirect"; do
    case "$value" in
        '' | *[!0-9]*) echo "gateway TLS: not a port: '$value'" >&2; exit 1 ;;
    esac
done
rm -f "$out"
if [ "$port" -eq 0 ]; then
    if [ "$redirect" -ne 0 ]; then
        echo "gateway TLS: SHOPSTREAM_GATEWAY_HTTPS_REDIRECT_PORT needs SHOPSTREAM_GATEWAY_TLS_PORT" >&2
        exit 1
    fi
    [ $# -eq 0 ] || exec "$@"
    exit 0
fi
cert="${SHOPSTREAM_GATEWAY_TLS_CERT:-/etc/nginx/tls/gateway.crt}"
key="${SHOPSTREAM_GATEWAY_TLS_KEY:-/etc/nginx/tls/gateway.key}"
for file in "$cert" "$key"; do
    if [ ! -r "$file" ]; then
        echo "gateway TLS: cannot read $file (mount the certificate, or set SHOPSTREAM_GATEWAY_TLS_PORT=0)" >&2
        exit 1
    fi
done
{
    echo "listen $port ssl backlog=4096;"
    echo "ssl_certificate $cert;"
    echo "ssl_certificate_key $key;"
    echo "ssl_protocols TLSv1.2 TLSv1.3;"
    echo "ssl_session_cache shared:gw_tls:10m;"
    echo "ssl_session_timeout 1h;"
    if [ "$redirect" -ne 0 ]; then
        authority="\$host:$redirect"
        [ "$redirect" -eq 443 ] && authority="\$host"
        echo "if (\$https = \"\") {"
        echo "    return 308 https://$authority\$request_uri;"
        echo "}"
    fi
} > "$out"
echo "gateway TLS: listening on $port with $cert"
[ $# -eq 0 ] || exec "$@"
