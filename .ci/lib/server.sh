# Shared helpers for CI stages that need a running Portcullis release server.
# Source it: `. .ci/lib/server.sh`. Requires bash, curl.
#
#   build_release                      builds target/release/portcullis once
#   start_server DIR [ENV=VALUE ...]   starts it on a free port with its data
#                                      in DIR; sets SERVER_PID, SERVER_URL
#                                      (https:// when PORTCULLIS_TLS_CERT is
#                                      given) and SERVER_LOG; extra settings
#                                      as env pairs
#   stop_server                        SIGTERM and wait
#
# Servers started here allow generous login and API-key rates and caps (the
# checks come from one address and a few accounts, and the fuzzer creates
# keys and sessions by the thousand) and use the default, production argon2
# parameters.

PORTCULLIS_BIN="${PORTCULLIS_BIN:-target/release/portcullis}"

build_release() {
  if [ ! -x "$PORTCULLIS_BIN" ] || [ -n "${FORCE_BUILD:-}" ]; then
    cargo build --release --locked -p portcullis
  fi
}

start_server() {
  local dir="$1"
  shift
  mkdir -p "$dir"
  SERVER_LOG="$dir/server.log"
  env PORTCULLIS_BIND=127.0.0.1:0 \
    PORTCULLIS_DATA_DIR="$dir/data" \
    PORTCULLIS_LOGIN_PER_IP_PER_MIN=1000000 \
    PORTCULLIS_LOGIN_PER_USER_PER_MIN=1000000 \
    PORTCULLIS_API_KEY_CREATIONS_PER_USER_PER_MIN=1000000 \
    PORTCULLIS_MAX_API_KEYS_PER_USER=1000000 \
    PORTCULLIS_MAX_SESSIONS_PER_USER=1000000 \
    PORTCULLIS_LOG_FORMAT=json \
    "$@" "$PORTCULLIS_BIN" serve 2>"$SERVER_LOG" &
  SERVER_PID=$!
  local port=""
  for _ in $(seq 1 100); do
    # `|| true`: until the server has logged its address the pipeline fails,
    # which must not end a caller running under `set -euo pipefail`.
    port=$(grep -o '"address":"127.0.0.1:[0-9]*"' "$SERVER_LOG" 2>/dev/null | head -1 | grep -o '[0-9]*"$' | tr -d '"' || true)
    [ -n "$port" ] && break
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
      echo "server exited early:" >&2
      cat "$SERVER_LOG" >&2
      return 1
    fi
    sleep 0.1
  done
  if [ -z "$port" ]; then
    echo "server did not report its address:" >&2
    cat "$SERVER_LOG" >&2
    return 1
  fi
  # A server given PORTCULLIS_TLS_CERT speaks HTTPS; the liveness probe does
  # not verify its (test) certificate, the stage's own client does.
  local scheme=http
  local arg
  for arg in "$@"; do
    case "$arg" in PORTCULLIS_TLS_CERT=*) scheme=https ;; esac
  done
  SERVER_URL="$scheme://127.0.0.1:$port"
  curl -fsS --insecure "$SERVER_URL/health" >/dev/null
}

stop_server() {
  if [ -n "${SERVER_PID:-}" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID"
    wait "$SERVER_PID" || true
  fi
  SERVER_PID=""
}
