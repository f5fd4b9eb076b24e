#!/usr/bin/env bash
# Make `CREATE EXTENSION timescaledb` work on the local PostgreSQL cluster.
#
# Debian 12 ships no TimescaleDB package, so when the extension is missing this script builds Debian's own
# `timescaledb` source package (trixie) against the installed PostgreSQL with -DAPACHE_ONLY=ON (the
# Apache-2.0 part: hypertables, time_bucket, drop_chunks), installs it, adds it to shared_preload_libraries
# and restarts the cluster. Idempotent: it returns at once when the extension is already available.
#
# Environment: PGHOST (127.0.0.1), PGPORT (5432), PGUSER (postgres), PG_MAJOR (detected), CLUSTER (main).
set -euo pipefail

PGHOST=${PGHOST:-127.0.0.1}
PGPORT=${PGPORT:-5432}
PGUSER=${PGUSER:-postgres}
CLUSTER=${CLUSTER:-main}
PG_MAJOR=${PG_MAJOR:-$(ls /usr/lib/postgresql 2>/dev/null | sort -n | tail -1)}
export PGHOST PGPORT PGUSER

log() { printf 'install-timescaledb: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[ -n "$PG_MAJOR" ] || die "no PostgreSQL server found under /usr/lib/postgresql"

can_create() {
  # The extension is usable when a scratch database can create it.
  local db=tf_tsdb_probe_$$
  psql -qAtX -d postgres -c "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1 || return 2
  psql -qAtX -d postgres -c "CREATE DATABASE $db" >/dev/null 2>&1 || return 2
  local rc=0
  psql -qAtX -d "$db" -c "CREATE EXTENSION IF NOT EXISTS timescaledb" >/dev/null 2>&1 || rc=1
  psql -qAtX -d postgres -c "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1 || true
  return $rc
}

if ! psql -qAtX -d postgres -c 'select 1' >/dev/null 2>&1; then
  die "PostgreSQL is not reachable at $PGHOST:$PGPORT as $PGUSER (start it first: pg_ctlcluster --skip-systemctl-redirect $PG_MAJOR $CLUSTER start)"
fi

if can_create; then
  log "timescaledb already available"
  exit 0
fi

[ "$(id -u)" = 0 ] || die "timescaledb is missing and building it needs root; run: sudo $0"

libdir=$(/usr/lib/postgresql/"$PG_MAJOR"/bin/pg_config --pkglibdir 2>/dev/null || true)
if ! ls "$libdir"/timescaledb*.so >/dev/null 2>&1; then
  log "building timescaledb from Debian's trixie source package (Apache-only) for PostgreSQL $PG_MAJOR"
  src_list=/etc/apt/sources.list.d/tinyfleet-trixie-src.sources
  if [ ! -f "$src_list" ]; then
    cat >"$src_list" <<SRC
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends dpkg-dev cmake gcc make libssl-dev \
    "postgresql-server-dev-$PG_MAJOR" >/dev/null
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  (cd "$work" && apt-get source -qq --download-only timescaledb >/dev/null && dpkg-source -x ./*.dsc src >/dev/null)
  (
    cd "$work/src"
    cmake -S . -B build -DAPACHE_ONLY=ON -DREGRESS_CHECKS=OFF -DTAP_CHECKS=OFF -DWARNINGS_AS_ERRORS=OFF \
      -DCMAKE_BUILD_TYPE=Release -DPG_CONFIG="/usr/lib/postgresql/$PG_MAJOR/bin/pg_config" >/dev/null
    cmake --build build -j"$(nproc)" >/dev/null
    cmake --install build >/dev/null
  )
fi

conf_dir=/etc/postgresql/$PG_MAJOR/$CLUSTER/conf.d
mkdir -p "$conf_dir"
cat >"$conf_dir/tinyfleet-timescaledb.conf" <<CONF
# written by tinyfleet scripts/install-timescaledb.sh
shared_preload_libraries = 'timescaledb'
timescaledb.telemetry_level = off
CONF
if ! grep -qE "^\s*include_dir\s*=\s*'conf.d'" "/etc/postgresql/$PG_MAJOR/$CLUSTER/postgresql.conf"; then
  echo "include_dir = 'conf.d'" >>"/etc/postgresql/$PG_MAJOR/$CLUSTER/postgresql.conf"
fi
log "restarting PostgreSQL $PG_MAJOR/$CLUSTER"
pg_ctlcluster --skip-systemctl-redirect "$PG_MAJOR" "$CLUSTER" restart
for _ in $(seq 1 60); do
  psql -qAtX -d postgres -c 'select 1' >/dev/null 2>&1 && break
  sleep 0.5
done
can_create || die "timescaledb was installed but CREATE EXTENSION still fails"
log "timescaledb ready: $(psql -qAtX -d postgres -c "select default_version from pg_available_extensions where name='timescaledb'")"
