# Shared by rt-up.sh and tryton-up.sh (sourced, not run): how a script that
# starts a local peer server reports failure, times its steps and stops the
# server it started. The sourcing script sets NAME (its own name, for
# messages) and PROCESS (what the server's command line contains) before
# sourcing it, and PIDFILE before calling stop or stop_if_asked.

fail() { # fail MESSAGE [LOG]
  echo "$NAME: $1" >&2
  if [ -n "${2:-}" ] && [ -f "$2" ]; then
    echo "--- last lines of $2:" >&2
    tail -n 30 "$2" >&2
  fi
  exit 1
}

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

stop() {
  [ -f "$PIDFILE" ] || return 0
  local pid
  pid=$(cat "$PIDFILE")
  # only kill it if that pid is still our server (not a recycled pid)
  if [ -n "$pid" ] && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "$PROCESS"; then
    kill "$pid" 2>/dev/null || true # RT's Starlet master takes its workers down with it
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then kill -9 "$pid" 2>/dev/null || true; sleep 0.2; fi
    echo "$NAME: stopped $PROCESS (pid $pid)" >&2
  fi
  rm -f "$PIDFILE"
}

# `SCRIPT stop` stops the server and exits; any other argument is a mistake.
stop_if_asked() {
  if [ "${1:-}" = stop ]; then
    stop
    exit 0
  elif [ -n "${1:-}" ]; then
    echo "usage: $0 [stop]" >&2
    exit 2
  fi
}

# The absolute path of the work folder $1, made if missing.
work_dir() {
  mkdir -p "$1"
  (cd "$1" && pwd)
}
