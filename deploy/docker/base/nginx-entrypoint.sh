#!/bin/sh
# What the official image's entrypoint does: render every template with the environment variables
# whose names match NGINX_ENVSUBST_FILTER (its 20-envsubst-on-templates.sh), run the image's
# /docker-entrypoint.d/*.sh in order (a failing one stops the start), then run the command.
set -eu
filter=${NGINX_ENVSUBST_FILTER:-}
vars=$(env | cut -d= -f1 | grep -E "${filter:-.}" | sed 's/^/${/; s/$/}/' | tr '\n' ' ')
for template in /etc/nginx/templates/*.template; do
    [ -f "$template" ] || continue
    out=/etc/nginx/conf.d/$(basename "$template" .template)
    envsubst "$vars" < "$template" > "$out"
done
for script in /docker-entrypoint.d/*.sh; do
    [ -x "$script" ] || continue
    "$script"
done
exec "$@"
