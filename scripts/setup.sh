#!/usr/bin/env bash
# Idempotent set-up of everything pgha needs on a Debian 12 machine:
# PostgreSQL 15, etcd, Prometheus, Alertmanager and postgres_exporter, Azurite
# (npm), headless Chromium for the page tests, and one Python venv readable by
# the unprivileged user that runs PostgreSQL, Patroni and barman-cloud.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PGHA_OPT="${PGHA_OPT:-/opt/pgha}"
venv="$PGHA_OPT/venv"
stamp="$PGHA_OPT/.setup-stamp"
want="$here $(cat "$here/requirements.txt" "$here/requirements-local.txt" "$here/scripts/setup.sh" "$here/pyproject.toml" | sha256sum | cut -d' ' -f1)"

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x "$venv/bin/python" ] \
   && [ -x /usr/lib/postgresql/15/bin/postgres ] && command -v etcd >/dev/null \
   && command -v prometheus >/dev/null && command -v prometheus-alertmanager >/dev/null \
   && command -v prometheus-postgres-exporter >/dev/null && command -v chromium >/dev/null \
   && [ -x "$PGHA_OPT/node/node_modules/.bin/azurite" ]; then
  exit 0
fi

log() { printf '[setup] %s\n' "$*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

pkgs=(postgresql-15 postgresql-client-15 etcd-server etcd-client libpq-dev python3-dev python3-venv build-essential procps
      prometheus prometheus-alertmanager prometheus-postgres-exporter
      chromium fonts-dejavu-core)  # headless Chromium, with a font for its text, for tests/browser.py
services=(prometheus prometheus-alertmanager prometheus-postgres-exporter)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
# Node.js may come from another source that bundles npm; ask Debian only when npm is missing.
command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
if [ "${#missing[@]}" -gt 0 ]; then
  log "apt: installing ${missing[*]}"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# pgha starts its own servers on free loopback ports: the packages' daemons, where the init system started
# them, are stopped and kept off (they would take 9090, 9093 and 9187 and scrape nothing of ours).
for svc in "${services[@]}"; do
  if [ -d /run/systemd/system ]; then
    as_root systemctl disable --now "$svc" >/dev/null 2>&1 || true
  else
    as_root service "$svc" stop >/dev/null 2>&1 || true
    as_root update-rc.d "$svc" disable >/dev/null 2>&1 || true
  fi
done
id postgres >/dev/null 2>&1 || as_root useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres

as_root mkdir -p "$PGHA_OPT"
if [ ! -x "$PGHA_OPT/node/node_modules/.bin/azurite" ]; then
  log "npm: installing azurite"
  as_root mkdir -p "$PGHA_OPT/node"
  (cd "$PGHA_OPT/node" && as_root npm install --silent --no-audit --no-fund --prefix . azurite@3 >/dev/null)
fi

if [ ! -x "$venv/bin/python" ]; then
  log "python: creating $venv from /usr/bin/python3"
  as_root /usr/bin/python3 -m venv "$venv"
fi
log "pip: installing requirements"
as_root "$venv/bin/pip" install -q --disable-pip-version-check --upgrade pip >/dev/null
as_root "$venv/bin/pip" install -q --disable-pip-version-check -r "$here/requirements.txt" -r "$here/requirements-local.txt"
as_root chmod -R a+rX "$PGHA_OPT"
echo "$want" | as_root tee "$stamp" >/dev/null
log "done"
