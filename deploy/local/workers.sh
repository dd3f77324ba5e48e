#!/usr/bin/env bash
# A local Celery worker (every queue) and beat for `make demo`, as background processes with pid files
# under .run/. Production runs them as separate services (deploy/docker-compose.yml).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
RUN="$ROOT/.run"; BIN="$ROOT/.venv/bin"
mkdir -p "$RUN"
alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

case "${1:-}" in
  start)
    cd "$ROOT"
    if alive "$RUN/worker.pid"; then echo "[workers] worker already running" >&2; else
      "$BIN/celery" -A city_ops worker -Q default,planning,vision,realtime -c "${CELERY_CONCURRENCY:-2}" \
        -n "demo@%h" --loglevel=INFO --logfile "$RUN/worker.log" --pidfile "$RUN/worker.pid" --detach
      echo "[workers] worker started (log: .run/worker.log)" >&2
    fi
    if alive "$RUN/beat.pid"; then echo "[workers] beat already running" >&2; else
      "$BIN/celery" -A city_ops beat --loglevel=INFO --logfile "$RUN/beat.log" --pidfile "$RUN/beat.pid" \
        --schedule "$RUN/beat-schedule" --detach
      echo "[workers] beat started (log: .run/beat.log)" >&2
    fi
    ;;
  stop)
    for p in worker beat; do
      if alive "$RUN/$p.pid"; then kill "$(cat "$RUN/$p.pid")"; echo "[workers] $p stopped" >&2; fi
    done
    ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
