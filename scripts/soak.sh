#!/usr/bin/env bash
# Scale soak (issue 19): prints figures, asserts nothing.
#
# 1. A month-end close on PostgreSQL with two daemon instances (`run --once`
#    rounds, each 10 simulated minutes after the last, until nothing is
#    pending) against a Xero stand-in enforcing 60 requests a minute and
#    5,000 a day (examples/soak.rs `ledger`, answering 429 + Retry-After):
#    CUSTOMERS customers × TICKETS October tickets each. Prints drafts a
#    minute (wall clock, first round to last draft sent), requests per draft
#    (everything the stand-in answered: lookups, creates, read-backs, status
#    polls) and the instances' peak RSS (/usr/bin/time -v).
# 2. A day of SLA ticks (examples/soak.rs `ticks`): SLA_TICKETS stored
#    tickets, TICKS ticks STEP minutes apart, CHANGES tickets changed before
#    each; once judging every stored ticket (as before issue 19) and once
#    incrementally. Prints p50/p99 tick cost and tickets read.
#
#   scripts/soak.sh [CUSTOMERS] [TICKETS]        # the issue's scale: 5000 100
#   scripts/soak.sh 100 20                       # minutes on a small machine
#   BATCH=1 scripts/soak.sh 100 20               # one draft a request (before)
# Environment: BATCH (outbox.batch, default 50), SLA_TICKETS (100000),
# TICKS (144), STEP (10), CHANGES (20), PROFILE (debug or release; debug),
# PG (postgres://postgres@127.0.0.1:5432), STATEMENT_TICKETS (12000),
# SKIP_CLOSE=1, SKIP_TICKS=1, SKIP_STATEMENT=1.
set -euo pipefail
cd "$(dirname "$0")/.."
CUSTOMERS=${1:-5000}
TICKETS=${2:-100}
BATCH=${BATCH:-50}
SLA_TICKETS=${SLA_TICKETS:-100000}
TICKS=${TICKS:-144}
STEP=${STEP:-10}
CHANGES=${CHANGES:-20}
PROFILE=${PROFILE:-debug}
PG=${PG:-postgres://postgres@127.0.0.1:5432}

if [ "$PROFILE" = release ]; then
  cargo build --release --quiet --bin contract-bridge --example soak
else
  cargo build --quiet --bin contract-bridge --example soak
fi
BIN=$PWD/target/$PROFILE/contract-bridge
SOAK=$PWD/target/$PROFILE/examples/soak
TMP=$(mktemp -d)
PIDS=()
DBS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for d in "${DBS[@]}"; do psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS $d" >/dev/null 2>&1 || true; done
  rm -rf "$TMP"
}
trap cleanup EXIT
newdb() { # newdb NAME: a fresh database at $PG/NAME, dropped at exit
  psql "$PG/postgres" -qc "CREATE DATABASE $1" >/dev/null
  DBS+=("$1")
}
now_s() { date +%s.%N; }

if [ "${SKIP_CLOSE:-}" != 1 ]; then
  "$SOAK" gen "$TMP" "$CUSTOMERS" "$TICKETS"
  PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  "$SOAK" ledger "$PORT" 60 5000 &
  PIDS+=($!)
  newdb "cb_soak_close_$$"
  URL="$PG/cb_soak_close_$$"
  cat >"$TMP/bridge.toml" <<TOML
[store]
url = "$URL"
[mapping]
path = "$TMP/mapping"
[billing]
first_period = "2026-10"
target = "xero"
[sources.soak]
type = "folder"
path = "$TMP/source"
file_name = "tickets.json"
[targets.xero]
type = "xero"
base_url = "http://127.0.0.1:$PORT/api.xro/2.0"
token_url = "http://127.0.0.1:$PORT/connect/token"
client_id = "soak"
client_secret = "soak"
tenant_id = "soak-tenant"
requests_per_second = 1
[targets.xero.contacts]
$(cat "$TMP/contacts.toml")
[outbox]
batch = $BATCH
TOML
  sleep 0.5
  start=$(now_s)
  round=0
  while :; do
    at=$(date -u -d "2026-11-01T07:00:00Z + $((round * 10)) minutes" +%Y-%m-%dT%H:%M:%SZ)
    for i in 1 2; do
      /usr/bin/time -v "$BIN" run --once --now "$at" --config "$TMP/bridge.toml" \
        >"$TMP/out.$round.$i" 2>"$TMP/err.$round.$i" &
      PIDS+=($!)
    done
    wait "${PIDS[-1]}" || true
    wait "${PIDS[-2]}" || true
    pending=$("$BIN" status --json --config "$TMP/bridge.toml" | python3 -c 'import json,sys; print(json.load(sys.stdin)["outbox"]["pending"])')
    round=$((round + 1))
    [ "$pending" = 0 ] && break
    if [ "$round" -ge 60 ]; then echo "soak: still $pending pending after $round rounds" >&2; break; fi
  done
  end=$(now_s)
  stats=$(curl -s "http://127.0.0.1:$PORT/stats")
  rss=$(grep -h "Maximum resident set size" "$TMP"/err.* | awk '{print $NF}' | sort -n | tail -1)
  python3 - "$stats" "$start" "$end" "$rss" "$round" "$CUSTOMERS" "$TICKETS" "$BATCH" <<'PY'
import json, sys
s = json.loads(sys.argv[1]); start, end = float(sys.argv[2]), float(sys.argv[3])
rss, rounds, customers, tickets, batch = sys.argv[4], sys.argv[5], sys.argv[6], sys.argv[7], sys.argv[8]
drafts = s["invoices"]; minutes = (end - start) / 60
print(f"close: {customers} customers x {tickets} tickets, outbox.batch {batch}, two instances, {rounds} round(s)")
print(f"  {drafts} drafts in {minutes:.1f} min wall: {drafts / minutes:.1f} drafts/minute")
print(f"  ledger: {s['requests']} requests answered ({s['gets']} GET, {s['puts']} PUT), {s['throttled']} throttled (429)")
print(f"  requests per draft: {s['requests'] / max(drafts, 1):.2f} (creates per draft {s['puts'] / max(drafts, 1):.2f})")
print(f"  peak RSS of an instance: {int(rss) / 1024:.0f} MiB")
PY
fi

# The SLA sample's mapping and a configuration on database $2, in file $1.
sla_config() {
  mkdir -p "$TMP/sla-mapping"
  cp mappings/examples/* "$TMP/sla-mapping/"
  printf 'sources:\n  desk:\n    customers:\n      poznan-clinic: poznan-clinic\n' >"$TMP/sla-mapping/sources.yaml"
  newdb "$2"
  cat >"$1" <<TOML
[store]
url = "$PG/$2"
[mapping]
path = "$TMP/sla-mapping"
[billing]
first_period = "2026-10"
target = "drafts"
[sources.desk]
type = "zammad"
url = "http://127.0.0.1:9"
token = "unused"
notes = "desk"
[targets.drafts]
type = "folder"
path = "$TMP/drafts"
TOML
}

if [ "${SKIP_TICKS:-}" != 1 ]; then
  for mode in full incremental; do
    sla_config "$TMP/ticks-$mode.toml" "cb_soak_ticks_${mode}_$$"
    /usr/bin/time -v "$SOAK" ticks "$TMP/ticks-$mode.toml" "$SLA_TICKETS" "$TICKS" "$STEP" "$CHANGES" "$mode" 2>"$TMP/ticks-$mode.err"
    echo "  peak RSS: $(( $(grep "Maximum resident set size" "$TMP/ticks-$mode.err" | awk '{print $NF}') / 1024 )) MiB"
  done
fi

# 3. A customer's balance statement asked for again and again (the signed
#    link): STATEMENT_TICKETS tickets over its twelve months.
if [ "${SKIP_STATEMENT:-}" != 1 ]; then
  sla_config "$TMP/statement.toml" "cb_soak_statement_$$"
  "$SOAK" statement "$TMP/statement.toml" "${STATEMENT_TICKETS:-12000}" 50
fi
