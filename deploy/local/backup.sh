#!/usr/bin/env bash
# Back up or restore the database (pg_dump custom format) and media of this checkout.
#   deploy/local/backup.sh backup            -> backups/cityops-YYYYmmdd-HHMMSS.{dump,media.tar.gz}
#   deploy/local/backup.sh restore FILE.dump -> drops and recreates the database from FILE (and its media)
# DATABASE_URL (from the environment or .run/env) names the database.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
[ -f "$ROOT/.run/env" ] && set -a && . "$ROOT/.run/env" && set +a
PG_BIN="${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}"
URL="${DATABASE_URL/postgis:/postgresql:}"
MEDIA="${MEDIA_ROOT:-$ROOT/media}"
OUT="${BACKUP_DIR:-$ROOT/backups}"

case "${1:-}" in
  backup)
    mkdir -p "$OUT"; stamp=$(date -u +%Y%m%d-%H%M%S)
    "$PG_BIN/pg_dump" -Fc -d "$URL" -f "$OUT/cityops-$stamp.dump"
    if [ -d "$MEDIA" ]; then tar -czf "$OUT/cityops-$stamp.media.tar.gz" -C "$MEDIA" .; fi
    echo "$OUT/cityops-$stamp.dump"
    ;;
  restore)
    f="${2:?usage: $0 restore FILE.dump}"; [ -f "$f" ] || { echo "no such file: $f" >&2; exit 1; }
    "$PG_BIN/pg_restore" --clean --if-exists --no-owner -d "$URL" "$f"
    media="${f%.dump}.media.tar.gz"
    if [ -f "$media" ]; then mkdir -p "$MEDIA"; tar -xzf "$media" -C "$MEDIA"; fi
    echo "restored $f" >&2
    ;;
  *) echo "usage: $0 backup | restore FILE.dump" >&2; exit 2 ;;
esac
