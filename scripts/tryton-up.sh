#!/usr/bin/env bash
# A real Tryton 6.0 accounting server (Debian 12 packages, SQLite) on loopback for the
# Tryton connector's integration tests and CI.
#
#   scripts/tryton-up.sh          install if missing, fresh database, (re)start trytond,
#                                 seed it (scripts/tryton-fixture.py) and write the ids to
#                                 $TRYTON_WORK/targets.toml; prints the URL
#   scripts/tryton-up.sh stop     stop the trytond this script started (by its pid file)
#
# Environment: TRYTON_WORK (default <repo>/target/tryton), TRYTON_PORT (8000),
#              TRYTON_DB (ci), TRYTON_ADMIN_PASSWORD (admin; the login is admin).
# Every call starts from a fresh database. Installing needs root (apt-get).
# Logs: $TRYTON_WORK/{install,trytond-admin,trytond,fixture}.log
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
NAME=tryton-up
PROCESS=trytond
# shellcheck source=scripts/server-up.sh
source "$ROOT/scripts/server-up.sh"
W=$(work_dir "${TRYTON_WORK:-$ROOT/target/tryton}")
PORT=${TRYTON_PORT:-8000}
DB=${TRYTON_DB:-ci}
PW=${TRYTON_ADMIN_PASSWORD:-admin}
PY=/usr/bin/python3 # Debian's python, the one with trytond (not a pyenv python on PATH)
PIDFILE=$W/trytond.pid
URL=http://127.0.0.1:$PORT/$DB/
stop_if_asked "$@"

# Is $PORT answering HTTP at all (any status)?
port_answers() {
  "$PY" - "$PORT" <<'EOF'
import sys, urllib.request, urllib.error
try:
    urllib.request.urlopen(f'http://127.0.0.1:{sys.argv[1]}/', timeout=1)
except urllib.error.HTTPError:
    pass
except Exception:
    sys.exit(1)
EOF
}

# Does the database answer a login?
login_ok() {
  "$PY" - "$URL" "$PW" <<'EOF'
import json, sys, urllib.request
body = json.dumps({'id': 0, 'method': 'common.db.login',
                   'params': ['admin', {'password': sys.argv[2]}, 'en']}).encode()
req = urllib.request.Request(sys.argv[1], data=body, headers={'Content-Type': 'application/json'})
try:
    with urllib.request.urlopen(req, timeout=2) as r:
        res = json.load(r)
except Exception:
    sys.exit(1)
sys.exit(0 if isinstance(res.get('result'), list) else 1)
EOF
}


# 1. install (Debian 12: tryton-server 6.0, 24 packages, ~15 s). The package's own service
#    (PostgreSQL config in /etc/tryton) is not used; containers' policy-rc.d keeps it stopped.
if ! dpkg-query -W -f='${Status}\n' tryton-server tryton-modules-account-invoice 2>/dev/null |
  grep -c "ok installed" | grep -qx 2; then
  t=$(now)
  echo "tryton-up: installing tryton-server tryton-modules-account-invoice" >&2
  {
    apt-get update -q &&
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        tryton-server tryton-modules-account-invoice
  } >"$W/install.log" 2>&1 || fail "apt-get install failed" "$W/install.log"
  echo "tryton-up: installed in $(since "$t") s" >&2
fi
command -v trytond >/dev/null && command -v trytond-admin >/dev/null ||
  fail "trytond/trytond-admin not found after install"

# 2. stop what an earlier run started, and make sure the port is free
stop
for _ in $(seq 1 30); do port_answers || break; sleep 0.2; done
if port_answers; then
  fail "127.0.0.1:$PORT is in use by another process (not started by this script; set TRYTON_PORT)"
fi

# 3. config + fresh database (SQLite file <path>/<db>.sqlite must exist before trytond-admin)
cat >"$W/trytond.conf" <<CONF
[web]
listen = 127.0.0.1:$PORT
[database]
uri = sqlite://
path = $W/db
CONF
mkdir -p "$W/db"
rm -f "$W/db/$DB.sqlite" "$W/targets.toml"
touch "$W/db/$DB.sqlite"
printf '%s' "$PW" >"$W/adminpass"
t=$(now)
TRYTONPASSFILE=$W/adminpass trytond-admin -c "$W/trytond.conf" -d "$DB" --email admin@example.com \
  -u account_invoice --activate-dependencies >"$W/trytond-admin.log" 2>&1 ||
  fail "trytond-admin (database creation) failed" "$W/trytond-admin.log"
echo "tryton-up: database '$DB' created in $(since "$t") s" >&2

# 4. start in the background
t=$(now)
nohup trytond -c "$W/trytond.conf" >"$W/trytond.log" 2>&1 </dev/null &
echo $! >"$PIDFILE"
up=
for _ in $(seq 1 150); do # up to ~30 s
  if login_ok; then up=1; break; fi
  kill -0 "$(cat "$PIDFILE")" 2>/dev/null || fail "trytond exited" "$W/trytond.log"
  sleep 0.2
done
[ -n "$up" ] || { stop; fail "trytond did not answer on $URL" "$W/trytond.log"; }
echo "tryton-up: trytond (pid $(cat "$PIDFILE")) answered in $(since "$t") s" >&2

# 5. business data; the ids go to targets.toml
t=$(now)
"$PY" "$ROOT/scripts/tryton-fixture.py" "$URL" admin "$PW" >"$W/targets.toml.tmp" 2>"$W/fixture.log" ||
  fail "fixture failed" "$W/fixture.log"
mv "$W/targets.toml.tmp" "$W/targets.toml"
echo "tryton-up: fixture in $(since "$t") s, ids in $W/targets.toml" >&2

echo "tryton-up: listening on $URL (login admin, pid $(cat "$PIDFILE"), logs in $W)" >&2
echo "$URL"
