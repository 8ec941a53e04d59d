#!/usr/bin/env bash
# Run the product: make the virtual environment if needed, install, create a
# demo database when none exists, and serve http://127.0.0.1:8050 with
# POST /webhook and live updates, with the production server (gunicorn:
# WEB_CONCURRENCY processes of WEB_THREADS threads; one of them also runs the
# delivery processor unless PROCESSOR=off).
set -euo pipefail
cd "$(dirname "$0")"
source scripts/venv.sh
ensure_venv requirements.txt
export DATABASE_PATH="${DATABASE_PATH:-data/builds.db}"
if [[ "$DATABASE_PATH" != *"://"* && ! -f "$DATABASE_PATH" ]]; then
  echo "No database at $DATABASE_PATH: creating one with demo data"
  "$VENV/bin/python" init_db.py -db "$DATABASE_PATH" --demo
fi
if [[ -z "${GITHUB_WEBHOOK_SECRET:-}" ]]; then
  # Demo mode: with no secret, accept unsigned deliveries from this machine only.
  export ALLOW_UNSIGNED_WEBHOOKS="${ALLOW_UNSIGNED_WEBHOOKS:-loopback}"
fi
exec "$VENV/bin/gunicorn" -c dashapp/gunicorn_conf.py dashapp.wsgi:server
