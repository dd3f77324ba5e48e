#!/usr/bin/env bash
# The local Celery workers and beat for `make demo`, as background processes with pid files under .run/.
# Two workers, as in production (deploy/docker-compose.yml): `worker` takes plans and photos, and
# `worker-realtime` takes sensor and vehicle evaluation and the short bookkeeping, so a flood alert never
# waits behind a minutes-long plan.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
RUN="$ROOT/.run"; BIN="$ROOT/.venv/bin"
mkdir -p "$RUN"
alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
PROCESSES="worker worker-realtime beat"  # what `stop` stops and `make status` lists

# start_worker NAME CELERY-WORKER-ARGS...: one worker process, its log and pid file named NAME.
start_worker() {
  local name="$1"; shift
  if alive "$RUN/$name.pid"; then echo "[workers] $name already running" >&2; return; fi
  "$BIN/celery" -A city_ops worker "$@" --loglevel=INFO --logfile "$RUN/$name.log" --pidfile "$RUN/$name.pid" \
    --detach
  echo "[workers] $name started (log: .run/$name.log)" >&2
}

case "${1:-}" in
  start)
    cd "$ROOT"
    start_worker worker -Q planning,vision -c "${CELERY_CONCURRENCY:-2}" -n "demo@%h"
    start_worker worker-realtime -Q realtime,default -c "${CELERY_REALTIME_CONCURRENCY:-2}" -n "realtime@%h"
    if alive "$RUN/beat.pid"; then echo "[workers] beat already running" >&2; else
      "$BIN/celery" -A city_ops beat --loglevel=INFO --logfile "$RUN/beat.log" --pidfile "$RUN/beat.pid" \
        --schedule "$RUN/beat-schedule" --detach
      echo "[workers] beat started (log: .run/beat.log)" >&2
    fi
    ;;
  stop)
    for p in $PROCESSES; do
      if alive "$RUN/$p.pid"; then kill "$(cat "$RUN/$p.pid")"; echo "[workers] $p stopped" >&2; fi
    done
    ;;
  status)
    for p in $PROCESSES; do
      if alive "$RUN/$p.pid"; then echo "$p: running (pid $(cat "$RUN/$p.pid"))"; else echo "$p: stopped"; fi
    done
    ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
