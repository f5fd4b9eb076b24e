#!/usr/bin/env bash
# Make sure the services the tests talk to are installed, running and answering:
#   - PostgreSQL at $PGHOST:$PGPORT (default 127.0.0.1:5432; or the host/port of $TINYFLEET_TEST_PG_URL)
#   - Mosquitto  at $TINYFLEET_TEST_MQTT_HOST:$TINYFLEET_TEST_MQTT_PORT (default 127.0.0.1:1883)
# and that the server binaries the fault tests use (initdb, pg_ctl, mosquitto, mosquitto_pub) are present.
#
# Idempotent and quick when all is well. Each service is checked with a real connection (psql `select 1`; an MQTT
# CONNECT + QoS1 PUBLISH acknowledged by the broker, via mosquitto_pub); one that is down is started with Debian's
# own commands and waited for (up to $ENSURE_SERVICES_TIMEOUT seconds, default 30). Exits non-zero with a message
# naming the service when it cannot be made to answer.
#
# Missing Debian packages are installed when running as root; otherwise the exact apt-get command is printed.
#
# Mosquitto's default `max_queued_messages 1000` silently DROPS QoS1 messages for a subscriber that lags more
# than 1,000 messages behind. As root, this script raises the local broker's limits once, with the drop-in
# /etc/mosquitto/conf.d/tinyfleet-queues.conf (and a graceful broker restart, which keeps persistent sessions).
# Set TINYFLEET_CONFIGURE_MOSQUITTO=0 to leave the broker's configuration alone.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

PGHOST=${PGHOST:-127.0.0.1}
PGPORT=${PGPORT:-5432}
PGUSER=${PGUSER:-postgres}
if [ -n "${TINYFLEET_TEST_PG_URL:-}" ]; then
  # postgresql://[user[:password]@]host[:port]/db
  if [[ $TINYFLEET_TEST_PG_URL =~ ^postgres(ql)?://(([^:@/]+)(:[^@/]*)?@)?([^:/]+)(:([0-9]+))?/ ]]; then
    PGUSER=${BASH_REMATCH[3]:-$PGUSER}
    PGHOST=${BASH_REMATCH[5]}
    PGPORT=${BASH_REMATCH[7]:-5432}
  fi
fi
export PGHOST PGPORT PGUSER
MQTT_HOST=${TINYFLEET_TEST_MQTT_HOST:-127.0.0.1}
MQTT_PORT=${TINYFLEET_TEST_MQTT_PORT:-1883}
TIMEOUT=${ENSURE_SERVICES_TIMEOUT:-30}
CLUSTER=${CLUSTER:-main}
MOSQUITTO_CONF=/etc/mosquitto/mosquitto.conf
MOSQUITTO_PIDFILE=/run/mosquitto/mosquitto.pid
MOSQUITTO_DROPIN=/etc/mosquitto/conf.d/tinyfleet-queues.conf

log() { printf 'ensure-services: %s\n' "$*" >&2; }
die() {
  log "ERROR: $*"
  exit 1
}
is_root() { [ "$(id -u)" = 0 ]; }
pid_gone() { ! kill -0 "$1" 2>/dev/null; }

# ---------------------------------------------------------------------------------------------- packages

"$here/ensure-system-packages.sh" mosquitto mosquitto-clients postgresql postgresql-contrib
# Node.js + npm for the real Node-RED of the action tests (installed by the tests into .tinyfleet/nodered).
# A Node.js that is already on the PATH (e.g. NodeSource's) is kept: Debian's package would conflict with it.
if ! command -v npm >/dev/null 2>&1; then
  "$here/ensure-system-packages.sh" nodejs npm
fi

PG_MAJOR=${PG_MAJOR:-$(ls /usr/lib/postgresql 2>/dev/null | sort -n | tail -1)}
[ -n "$PG_MAJOR" ] || die "PostgreSQL: no server found under /usr/lib/postgresql (package postgresql)"
PG_BIN=/usr/lib/postgresql/$PG_MAJOR/bin
for tool in "$PG_BIN/initdb" "$PG_BIN/pg_ctl" "$PG_BIN/postgres"; do
  [ -x "$tool" ] || die "PostgreSQL: $tool is missing (package postgresql-$PG_MAJOR)"
done
for tool in mosquitto mosquitto_pub mosquitto_sub psql pg_isready; do
  command -v "$tool" >/dev/null 2>&1 || [ -x "/usr/sbin/$tool" ] ||
    die "$tool is missing (packages mosquitto, mosquitto-clients, postgresql)"
done
MOSQUITTO_BIN=$(command -v mosquitto || echo /usr/sbin/mosquitto)

# ------------------------------------------------------------------------------------------------ checks

pg_answers() { pg_isready -q -h "$PGHOST" -p "$PGPORT" -t 3 >/dev/null 2>&1; }
pg_select1() {
  psql "host=$PGHOST port=$PGPORT user=$PGUSER dbname=postgres connect_timeout=5" -qAtX -c 'select 1' 2>&1
}
mqtt_answers() {
  # CONNECT, PUBLISH at QoS1, wait for the PUBACK, DISCONNECT: the broker really serves MQTT.
  timeout 10 mosquitto_pub -h "$MQTT_HOST" -p "$MQTT_PORT" -V mqttv311 -i "tf-ensure-$$" \
    -t tinyfleet/ensure-services -n -q 1 >/dev/null 2>&1
}
wait_until() { # wait_until SECONDS COMMAND...
  local deadline=$((SECONDS + $1))
  shift
  until "$@"; do
    [ $SECONDS -lt $deadline ] || return 1
    sleep 0.5
  done
}
mosquitto_pid() { # pid of the broker started from the system configuration, if it runs
  local pid
  pid=$(cat "$MOSQUITTO_PIDFILE" 2>/dev/null || true)
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = mosquitto ] &&
    echo "$pid"
}
start_system_mosquitto() {
  mkdir -p /run/mosquitto
  chown mosquitto: /run/mosquitto 2>/dev/null || true
  "$MOSQUITTO_BIN" -d -c "$MOSQUITTO_CONF"
}

# ------------------------------------------------------------------------ Mosquitto: raised queue limits

configure_mosquitto_queues() {
  [ "${TINYFLEET_CONFIGURE_MOSQUITTO:-1}" != 0 ] || return 0
  [ -f "$MOSQUITTO_CONF" ] || return 0
  if grep -qsE '^\s*max_queued_messages\s' "$MOSQUITTO_CONF"; then
    local value
    value=$(grep -hsE '^\s*max_queued_messages\s' "$MOSQUITTO_CONF" | tail -1 | awk '{print $2}')
    if [ "$value" != 0 ] && [ "$value" -lt 100000 ] 2>/dev/null; then
      log "WARNING: $MOSQUITTO_CONF sets max_queued_messages $value: a subscriber lagging more than that" \
        "loses QoS1 messages (raise it; see README, 'Operating Mosquitto')"
    fi
    return 0
  fi
  if [ -f "$MOSQUITTO_DROPIN" ] && grep -qsE '^\s*include_dir\s+/etc/mosquitto/conf.d/?\s*$' "$MOSQUITTO_CONF"; then
    return 0
  fi
  if ! is_root; then
    log "WARNING: the local Mosquitto keeps its default max_queued_messages 1000 (QoS1 messages are dropped for a"
    log "  subscriber lagging further behind). As root, add to $MOSQUITTO_CONF and restart the broker:"
    log "    max_queued_messages 1000000"
    log "    max_queued_bytes 0"
    return 0
  fi
  log "Mosquitto: raising max_queued_messages (default 1000 drops QoS1 messages) in $MOSQUITTO_DROPIN"
  mkdir -p /etc/mosquitto/conf.d
  cat >"$MOSQUITTO_DROPIN" <<'CONF'
# written by tinyfleet scripts/ensure-services.sh
# Mosquitto's default max_queued_messages (1000) makes the broker silently DROP QoS1 messages for a client that is
# offline or lags more than 1,000 messages behind (e.g. the ingest service while its database restarts).
# 0 = no limit for max_queued_bytes; bound the broker's memory with memory_limit if needed.
max_queued_messages 1000000
max_queued_bytes 0
# Nagle's algorithm + delayed ACKs otherwise add up to 40 ms to the delivery of small messages.
set_tcp_nodelay true
CONF
  if ! grep -qsE '^\s*include_dir\s+/etc/mosquitto/conf.d/?\s*$' "$MOSQUITTO_CONF"; then
    printf '\n# added by tinyfleet scripts/ensure-services.sh\ninclude_dir /etc/mosquitto/conf.d\n' >>"$MOSQUITTO_CONF"
  fi
  local pid
  pid=$(mosquitto_pid || true)
  if [ -n "$pid" ]; then
    # The limits are read at start only (SIGHUP does not apply them). A graceful stop saves persistent sessions.
    log "Mosquitto: restarting the broker (pid $pid) to apply the new limits"
    kill -TERM "$pid"
    wait_until 30 pid_gone "$pid" || die "Mosquitto (pid $pid) did not stop within 30 s"
    start_system_mosquitto || die "Mosquitto failed to start again with $MOSQUITTO_CONF"
  fi
}

# ------------------------------------------------------------------------------------------- PostgreSQL

ensure_postgres() {
  if ! pg_answers; then
    log "PostgreSQL is not answering at $PGHOST:$PGPORT: starting cluster $PG_MAJOR/$CLUSTER"
    local cmd="pg_ctlcluster --skip-systemctl-redirect $PG_MAJOR $CLUSTER start"
    if is_root; then
      $cmd 2>&1 | sed 's/^/  /' >&2 || true
    elif [ "$(id -un)" = postgres ]; then
      $cmd 2>&1 | sed 's/^/  /' >&2 || true
    else
      die "PostgreSQL is down at $PGHOST:$PGPORT and starting it needs root: sudo $cmd"
    fi
    if ! wait_until "$TIMEOUT" pg_answers; then
      log "PostgreSQL clusters:"
      pg_lsclusters 2>&1 | sed 's/^/  /' >&2 || true
      tail -n 20 "/var/log/postgresql/postgresql-$PG_MAJOR-$CLUSTER.log" 2>/dev/null | sed 's/^/  /' >&2 || true
      die "PostgreSQL did not accept connections at $PGHOST:$PGPORT within ${TIMEOUT}s (started with: $cmd)"
    fi
  fi
  local out
  if ! out=$(pg_select1); then
    log "PostgreSQL answers at $PGHOST:$PGPORT, but 'select 1' as user $PGUSER fails:"
    printf '  %s\n' "$out" >&2
    die "PostgreSQL refuses the test user. The tests need password-less access for $PGUSER over TCP: set" \
      "PGPASSWORD (or TINYFLEET_TEST_PG_URL), or allow it for local tests with" \
      "'host all $PGUSER 127.0.0.1/32 trust' at the top of /etc/postgresql/$PG_MAJOR/$CLUSTER/pg_hba.conf," \
      "then: pg_ctlcluster $PG_MAJOR $CLUSTER reload"
  fi
  log "PostgreSQL ok at $PGHOST:$PGPORT"
}

# -------------------------------------------------------------------------------------------- Mosquitto

ensure_mosquitto() {
  configure_mosquitto_queues
  if mqtt_answers; then
    log "Mosquitto ok at $MQTT_HOST:$MQTT_PORT"
    return 0
  fi
  local running cmd="mkdir -p /run/mosquitto && chown mosquitto: /run/mosquitto; mosquitto -d -c $MOSQUITTO_CONF"
  running=$(mosquitto_pid || true)
  if [ -n "$running" ]; then
    log "Mosquitto is running (pid $running, $MOSQUITTO_CONF) but not answering at $MQTT_HOST:$MQTT_PORT yet"
  elif is_root; then
    log "Mosquitto is not answering at $MQTT_HOST:$MQTT_PORT: starting it ($cmd)"
    start_system_mosquitto || log "mosquitto -d exited with an error"
  else
    die "Mosquitto is down at $MQTT_HOST:$MQTT_PORT and starting it needs root: sudo sh -c '$cmd'"
  fi
  if ! wait_until "$TIMEOUT" mqtt_answers; then
    tail -n 20 /var/log/mosquitto/mosquitto.log 2>/dev/null | sed 's/^/  /' >&2 || true
    die "Mosquitto did not accept MQTT connections at $MQTT_HOST:$MQTT_PORT within ${TIMEOUT}s" \
      "(check the listener in $MOSQUITTO_CONF and the log above)"
  fi
  log "Mosquitto ok at $MQTT_HOST:$MQTT_PORT"
}

ensure_postgres
ensure_mosquitto
