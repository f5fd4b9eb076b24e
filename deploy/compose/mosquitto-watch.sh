#!/bin/sh
# Entry point of the mosquitto container: run Mosquitto and reload it (SIGHUP) when the password or ACL file that
# the tinyfleet service rewrites changes. The service runs in another container, so it cannot signal the broker
# itself (no shared pid namespace, and no Docker socket in the service); this wrapper watches the shared volume
# instead. The service replaces each file by rename, so a new inode, mtime or size means "reload".
#
# Environment: MOSQUITTO_CONF (/mosquitto/config/mosquitto.conf), MOSQUITTO_AUTH_DIR (/mosquitto/auth),
# MOSQUITTO_WATCH_INTERVAL (2 seconds), MOSQUITTO_BIN (mosquitto). POSIX sh (busybox in the official image).
set -eu

conf=${MOSQUITTO_CONF:-/mosquitto/config/mosquitto.conf}
dir=${MOSQUITTO_AUTH_DIR:-/mosquitto/auth}
interval=${MOSQUITTO_WATCH_INTERVAL:-2}
bin=${MOSQUITTO_BIN:-mosquitto}
files="$dir/passwd $dir/acl"

log() { echo "mosquitto-watch: $*"; }

# Mosquitto refuses to start without its password file: wait until the service has written both.
waited=0
until [ -s "$dir/passwd" ] && [ -s "$dir/acl" ]; do
  [ "$waited" -eq 0 ] && log "waiting for $dir/passwd and $dir/acl (written by the tinyfleet service at start)"
  waited=1
  sleep 1
done

stamp() {
  for f in $files; do
    stat -c '%i:%Y:%s' "$f" 2>/dev/null || echo missing
  done
}

"$bin" -c "$conf" &
pid=$!
trap 'kill -TERM "$pid" 2>/dev/null || true' TERM INT
log "mosquitto running (pid $pid), watching $files every ${interval}s"

last=$(stamp)
while kill -0 "$pid" 2>/dev/null; do
  sleep "$interval" &
  wait $! || true
  now=$(stamp)
  if [ "$now" != "$last" ]; then
    last=$now
    log "credentials changed: SIGHUP"
    kill -HUP "$pid" 2>/dev/null || true
  fi
done
rc=0
wait "$pid" || rc=$?
log "mosquitto exited ($rc)"
exit "$rc"
