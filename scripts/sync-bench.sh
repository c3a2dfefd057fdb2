#!/usr/bin/env bash
# A first sync against `bill` on the same export: the daemon's path held to
# the engine's standard. Generates TICKETS tickets (default 20,000) with
# ENTRIES work entries, times `bill` on the export, then `run --once` of a
# daemon whose folder source holds that export, into a fresh SQLite store
# (sync, SLA tick, close of every month due, drafts to a folder). Prints both
# and the ratio; asserts nothing.
#
#   scripts/sync-bench.sh
#   TICKETS=5000 ENTRIES=50000 scripts/sync-bench.sh
set -euo pipefail
cd "$(dirname "$0")/.."
TICKETS=${TICKETS:-20000}
ENTRIES=${ENTRIES:-200000}
SEED=${SEED:-42}
PERIOD=${PERIOD:-2026-10}

cargo build --release --quiet --bin contract-bridge --example gen_export
BIN=$PWD/target/release/contract-bridge
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
mkdir -p "$TMP/source"
target/release/examples/gen_export --seed "$SEED" --tickets "$TICKETS" --entries "$ENTRIES" >"$TMP/source/tickets.json"

secs() { # secs CMD...: wall seconds of CMD
  local start end
  start=$(date +%s.%N)
  "$@" >/dev/null 2>"$TMP/stderr" || { cat "$TMP/stderr" >&2; return 1; }
  end=$(date +%s.%N)
  awk -v a="$start" -v b="$end" 'BEGIN { printf "%.2f", b - a }'
}

BILL=$(secs "$BIN" bill --mapping mappings/examples --tickets "$TMP/source/tickets.json" --period "$PERIOD" --json)
cat >"$TMP/bridge.toml" <<TOML
[store]
url = "sqlite://$TMP/state.db"
[mapping]
path = "$PWD/mappings/examples"
[billing]
first_period = "$PERIOD"
target = "drafts"
[sources.bench]
type = "folder"
path = "$TMP/source"
file_name = "tickets.json"
[targets.drafts]
type = "folder"
path = "$TMP/drafts"
TOML
# The month after PERIOD, once its close time has passed everywhere.
NOW=$(date -u -d "$PERIOD-01 +1 month +1 day" +%Y-%m-%dT12:00:00Z)
SYNC=$(secs "$BIN" run --once --now "$NOW" --config "$TMP/bridge.toml") || true
SECOND=$(secs "$BIN" run --once --now "$NOW" --config "$TMP/bridge.toml") || true
printf '%-40s %8s s\n' "bill ($TICKETS tickets, $ENTRIES entries)" "$BILL"
printf '%-40s %8s s\n' "first run --once (sync+close+push)" "$SYNC"
printf '%-40s %8s s\n' "second run --once (nothing changed)" "$SECOND"
awk -v a="$SYNC" -v b="$BILL" 'BEGIN { if (b > 0) printf "first sync / bill: %.1fx\n", a / b }'
tail -n 3 "$TMP/stderr" >&2
