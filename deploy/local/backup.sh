#!/usr/bin/env bash
# Back up or restore the database (pg_dump custom format) and media of this checkout.
#   deploy/local/backup.sh backup            -> backups/cityops-YYYYmmdd-HHMMSS.{dump,media.tar.gz}
#   deploy/local/backup.sh restore FILE.dump -> replaces the objects in FILE (and restores its media), in one
#                                               transaction: a failed restore changes nothing
# DATABASE_URL, MEDIA_ROOT and BACKUP_DIR come from the environment, else from .run/env, else the defaults.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# .run/env fills in only what the environment does not set: DATABASE_URL=... deploy/local/backup.sh backs up
# that database, not the checkout's (sourcing the file would overwrite the caller's choice).
if [ -f "$ROOT/.run/env" ]; then
  while IFS= read -r line; do
    case "$line" in ''|\#*) continue ;; esac
    key="${line%%=*}"
    if [ -z "${!key+x}" ]; then export "$key=${line#*=}"; fi
  done < "$ROOT/.run/env"
fi
: "${DATABASE_URL:?DATABASE_URL is not set (and there is no .run/env): which database?}"
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
    # One transaction: a broken or truncated dump stops at the first error and leaves the database as it was.
    "$PG_BIN/pg_restore" --clean --if-exists --no-owner --single-transaction -d "$URL" "$f"
    media="${f%.dump}.media.tar.gz"
    if [ -f "$media" ]; then mkdir -p "$MEDIA"; tar -xzf "$media" -C "$MEDIA"; fi
    echo "restored $f" >&2
    ;;
  *) echo "usage: $0 backup | restore FILE.dump" >&2; exit 2 ;;
esac
