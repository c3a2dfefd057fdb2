#!/usr/bin/env bash
# Soak: the crash test with many rounds (default 200), release build. Each
# round kills the daemon with SIGKILL at a random moment of a period close
# (half of them with a push in flight), restarts it, and checks that the fake
# accounting API holds each draft exactly once and the ledger balances.
#   scripts/crash-soak.sh [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-200}"
start=$(date +%s)
CONTRACT_BRIDGE_CRASH_ROUNDS="$rounds" cargo test --release --test api -- \
  --nocapture outbox::a_daemon_killed_at_random_moments 2>&1 | grep -E "crash test|test result|panicked"
echo "soak: $rounds rounds in $(( $(date +%s) - start )) s"
