#!/bin/sh
# Secrets as files (compose secrets, Kubernetes secret volumes) rather than environment
# variables, which `docker inspect` and every child process see. TRANSPARENCY_MASTER_KEY_FILE
# is a setting of its own; the database URL (it holds the password) and the admin key are
# read here from DATABASE_URL_FILE and TRANSPARENCY_ADMIN_KEY_FILE when those are set.
set -eu
if [ -n "${DATABASE_URL_FILE:-}" ]; then
    DATABASE_URL="$(cat "$DATABASE_URL_FILE")"
    export DATABASE_URL
fi
if [ -n "${TRANSPARENCY_ADMIN_KEY_FILE:-}" ]; then
    TRANSPARENCY_ADMIN_KEY="$(cat "$TRANSPARENCY_ADMIN_KEY_FILE")"
    export TRANSPARENCY_ADMIN_KEY
fi
# exec: the service replaces this shell, so SIGTERM (docker stop, a pod's deletion) reaches
# it, not the shell, and requests in flight get their 30 s.
exec "$@"
