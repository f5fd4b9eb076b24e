#!/bin/sh
# Entry point of the tinyfleet image: `serve` (the default) first migrates the database (`tinyfleet db upgrade`:
# Alembic under an advisory lock, a no-op when up to date), then replaces itself with `tinyfleet serve`. Any
# other command (`ingest …`, `dashboards push …`, `devices …`) runs as given.
set -eu
if [ "${1:-serve}" = "serve" ]; then
  [ "$#" -gt 0 ] && shift
  tinyfleet db upgrade
  exec tinyfleet serve "$@"
fi
exec tinyfleet "$@"
