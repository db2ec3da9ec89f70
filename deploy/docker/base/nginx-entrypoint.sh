#!/bin/sh
# What the official image's 20-envsubst-on-templates.sh does: render every template with the
# environment variables whose names match NGINX_ENVSUBST_FILTER, then run the command.
set -eu
filter=${NGINX_ENVSUBST_FILTER:-}
vars=$(env | cut -d= -f1 | grep -E "${filter:-.}" | sed 's/^/${/; s/$/}/' | tr '\n' ' ')
for template in /etc/nginx/templates/*.template; do
    [ -f "$template" ] || continue
    out=/etc/nginx/conf.d/$(basename "$template" .template)
    envsubst "$vars" < "$template" > "$out"
done
exec "$@"
