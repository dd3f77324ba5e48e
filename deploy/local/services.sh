#!/usr/bin/env bash
# Project-local PostgreSQL+PostGIS and Redis under .run/, on their own ports, so the demo and the tests
# never touch a system cluster. Idempotent: `start` reuses what exists, `stop` and `status` are safe to repeat.
#
#   deploy/local/services.sh install   apt packages (Debian/Ubuntu, as root) when missing
#   deploy/local/services.sh start     init (first time) and start both; writes .run/env
#   deploy/local/services.sh stop|status
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
RUN="$ROOT/.run"
PG_PORT="${CITY_OPS_PG_PORT:-55432}"
REDIS_PORT="${CITY_OPS_REDIS_PORT:-56379}"
PG_BIN="${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}"
ENV_FILE="$RUN/env"

log() { printf '[services] %s\n' "$*" >&2; }

APT_PACKAGES=(postgresql postgresql-15-postgis-3 redis-server gdal-bin libgdal-dev libgeos-dev libproj-dev
              chromium fonts-dejavu-core fonts-wqy-microhei poppler-utils gettext curl ca-certificates libgl1
              libglib2.0-0)

cmd_install() {
  local missing=()
  command -v redis-server >/dev/null || missing+=(redis-server)
  [ -n "$PG_BIN" ] && [ -x "$PG_BIN/initdb" ] || missing+=(postgresql)
  ls /usr/share/postgresql/*/extension/postgis.control >/dev/null 2>&1 || missing+=(postgresql-15-postgis-3)
  command -v gdal-config >/dev/null || missing+=(gdal-bin libgdal-dev)
  command -v chromium >/dev/null || missing+=(chromium)
  command -v msgfmt >/dev/null || missing+=(gettext)
  [ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || missing+=(fonts-dejavu-core)
  # the results statement's PDF prints Chinese with it; its tests read the PDF back with poppler-utils
  [ -f /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] || missing+=(fonts-wqy-microhei)
  command -v pdftotext >/dev/null || missing+=(poppler-utils)
  ldconfig -p | grep -q "libGL.so.1" || missing+=(libgl1)
  if [ ${#missing[@]} -eq 0 ]; then log "system packages present"; return 0; fi
  if ! command -v apt-get >/dev/null; then
    log "missing: ${missing[*]}. This machine has no apt-get: install PostgreSQL 15+ with PostGIS 3, Redis,"
    log "GDAL, Chromium, gettext, poppler-utils and the DejaVu and WenQuanYi Micro Hei fonts with your package"
    log "manager, then run this again."
    exit 1
  fi
  local SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  log "installing with apt: ${APT_PACKAGES[*]} (progress below)"
  $SUDO apt-get update -q
  # Debian names the PostGIS package after the server's major version; Ubuntu too. Pick the one that exists.
  local postgis_pkg
  # The PostGIS build must match the server's major version: that of the distribution's `postgresql`.
  local pg_major
  pg_major=$(apt-cache depends postgresql 2>/dev/null | grep -oE 'postgresql-[0-9]+' | head -n 1 | cut -d- -f2)
  postgis_pkg="postgresql-${pg_major}-postgis-3"
  apt-cache show "$postgis_pkg" >/dev/null 2>&1 ||
    postgis_pkg=$(apt-cache search --names-only '^postgresql-[0-9]+-postgis-3$' | awk '{print $1}' | sort -V | tail -n 1)
  local pkgs=()
  for p in "${APT_PACKAGES[@]}"; do [ "$p" = postgresql-15-postgis-3 ] && p="$postgis_pkg"; pkgs+=("$p"); done
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${pkgs[@]}"
  PG_BIN="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"
}

# PostgreSQL refuses to run as root; when we are root, run it as the `postgres` system user, in a data
# directory that user can reach (a checkout under /root is not traversable for it).
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

pg_data_dir() {
  if [ "$(id -u)" -eq 0 ] && ! runuser -u postgres -- test -x "$RUN" 2>/dev/null; then
    echo "/var/lib/city-ops/$(echo -n "$ROOT" | md5sum | cut -c1-12)/pg"
  else
    echo "$RUN/pg"
  fi
}

ensure_env() {
  mkdir -p "$RUN"
  chmod 755 "$RUN"
  if [ ! -f "$ENV_FILE" ]; then
    local pw key rpw
    pw=$(head -c 18 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 20)
    rpw=$(head -c 18 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 20)
    key=$(head -c 48 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 50)
    umask 077
    cat > "$ENV_FILE" <<ENV
# Written by deploy/local/services.sh for this checkout's local services. Secrets stay out of git.
DATABASE_URL=postgis://cityops:$pw@127.0.0.1:$PG_PORT/cityops
REDIS_URL=redis://:$rpw@127.0.0.1:$REDIS_PORT/0
SECRET_KEY=$key
CITY_OPS_DB_PASSWORD=$pw
CITY_OPS_REDIS_PASSWORD=$rpw
ENV
  fi
}

env_get() { grep "^$1=" "$ENV_FILE" | head -n 1 | cut -d= -f2-; }

pg_start() {
  local data; data="$(pg_data_dir)"
  if [ "$data" != "$RUN/pg" ]; then ln -sfn "$data" "$RUN/pg.link"; fi
  if [ ! -f "$data/PG_VERSION" ]; then
    log "initialising PostgreSQL cluster in $data"
    mkdir -p "$data"; [ "$(id -u)" -eq 0 ] && chown -R postgres:postgres "$(dirname "$data")" "$data"
    local pwfile; pwfile=$(mktemp); env_get CITY_OPS_DB_PASSWORD > "$pwfile"; chmod 644 "$pwfile"
    as_pg "$PG_BIN/initdb" -D "$data" -U cityops --pwfile="$pwfile" --auth-local=trust \
      --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >/dev/null
    rm -f "$pwfile"
    cat >> "$data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$data'
fsync = ${CITY_OPS_PG_FSYNC:-on}
shared_buffers = 256MB
max_connections = 200
CONF
  fi
  if as_pg "$PG_BIN/pg_ctl" -D "$data" status >/dev/null 2>&1; then
    log "PostgreSQL already running on 127.0.0.1:$PG_PORT"
  else
    as_pg "$PG_BIN/pg_ctl" -D "$data" -l "$data/server.log" -w -t 60 start >/dev/null
    log "PostgreSQL started on 127.0.0.1:$PG_PORT"
  fi
  if ! as_pg "$PG_BIN/psql" -h "$data" -p "$PG_PORT" -U cityops -d postgres -Atc "select 1 from pg_database where datname='cityops'" | grep -q 1; then
    as_pg "$PG_BIN/createdb" -h "$data" -p "$PG_PORT" -U cityops cityops
  fi
  as_pg "$PG_BIN/psql" -q -h "$data" -p "$PG_PORT" -U cityops -d cityops -c "CREATE EXTENSION IF NOT EXISTS postgis" >/dev/null
}

pg_stop() {
  local data; data="$(pg_data_dir)"
  if [ -f "$data/PG_VERSION" ] && as_pg "$PG_BIN/pg_ctl" -D "$data" status >/dev/null 2>&1; then
    as_pg "$PG_BIN/pg_ctl" -D "$data" -m fast -w stop >/dev/null; log "PostgreSQL stopped"
  else log "PostgreSQL not running"; fi
}

redis_start() {
  mkdir -p "$RUN/redis"
  if [ -f "$RUN/redis/redis.pid" ] && kill -0 "$(cat "$RUN/redis/redis.pid")" 2>/dev/null; then
    log "Redis already running on 127.0.0.1:$REDIS_PORT"; return 0
  fi
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --daemonize yes --dir "$RUN/redis" \
    --pidfile "$RUN/redis/redis.pid" --logfile "$RUN/redis/redis.log" --save "" --appendonly no \
    --requirepass "$(env_get CITY_OPS_REDIS_PASSWORD)"
  for _ in $(seq 1 50); do
    redis-cli -p "$REDIS_PORT" -a "$(env_get CITY_OPS_REDIS_PASSWORD)" --no-auth-warning ping >/dev/null 2>&1 && break
    sleep 0.1
  done
  log "Redis started on 127.0.0.1:$REDIS_PORT"
}

redis_stop() {
  if [ -f "$RUN/redis/redis.pid" ] && kill -0 "$(cat "$RUN/redis/redis.pid")" 2>/dev/null; then
    kill "$(cat "$RUN/redis/redis.pid")"; log "Redis stopped"
  else log "Redis not running"; fi
}

cmd_status() {
  local data; data="$(pg_data_dir)"; local rc=0
  if [ -f "$data/PG_VERSION" ] && as_pg "$PG_BIN/pg_ctl" -D "$data" status >/dev/null 2>&1; then
    echo "postgres: running (127.0.0.1:$PG_PORT, $data)"; else echo "postgres: stopped"; rc=1; fi
  if [ -f "$RUN/redis/redis.pid" ] && kill -0 "$(cat "$RUN/redis/redis.pid")" 2>/dev/null; then
    echo "redis: running (127.0.0.1:$REDIS_PORT)"; else echo "redis: stopped"; rc=1; fi
  return $rc
}

case "${1:-}" in
  install) cmd_install ;;
  start) ensure_env; pg_start; redis_start ;;
  stop) redis_stop; pg_stop ;;
  status) cmd_status ;;
  *) echo "usage: $0 install|start|stop|status" >&2; exit 2 ;;
esac
