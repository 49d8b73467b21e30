#!/usr/bin/env bash
# Schemathesis against the running release server's /openapi.json: all
# checks; phases examples, coverage, fuzzing and stateful; every operation;
# at least 100 generated examples per operation (where the operation's inputs
# allow that many distinct ones). Two runs: one authenticated with the OAuth2
# password flow (Bearer), one with an API key (X-API-Key); see
# .ci/schemathesis/hooks.py for how the identities survive the fuzzer.
#
# Fails on any schemathesis failure and on any 5xx the server logged.
# Reports (JUnit, NDJSON, HAR; secrets filtered by Schemathesis), the
# server's log and the auth hook's log go to target/schemathesis/{oauth2,apikey}/.
# SCHEMATHESIS_SEED=N reproduces a run; SCHEMATHESIS_MAX_EXAMPLES=N (>= 100)
# asks for more examples per operation.
#
# Usage: .ci/stages/schemathesis.sh (from anywhere; it works in the repository root)
set -euo pipefail
cd "$(dirname "$0")/../.."

ROOT=$(pwd)
OUT="$ROOT/target/schemathesis"
VENV="$ROOT/target/ci-venv-schemathesis"
CONFIG="$ROOT/.ci/schemathesis/schemathesis.toml"
REQUIREMENTS="$ROOT/.ci/schemathesis/requirements.txt"
# Optional: a seed to reproduce a run, and more examples for a deeper local run.
SEED="${SCHEMATHESIS_SEED:-}"
MAX_EXAMPLES="${SCHEMATHESIS_MAX_EXAMPLES:-100}"
if ! [ "$MAX_EXAMPLES" -ge 100 ] 2>/dev/null; then
  echo "SCHEMATHESIS_MAX_EXAMPLES must be a number >= 100" >&2
  exit 2
fi

# shellcheck source=../lib/server.sh
. "$ROOT/.ci/lib/server.sh"

stage_started=$SECONDS

step() {
  echo "--- schemathesis: $*"
}

# 1. The tool, pinned, in its own virtualenv (reused while the pin is unchanged).
step "virtualenv $VENV"
started=$SECONDS
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
if ! cmp -s "$REQUIREMENTS" "$VENV/.requirements.txt"; then
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$REQUIREMENTS"
  cp "$REQUIREMENTS" "$VENV/.requirements.txt"
fi
"$VENV/bin/schemathesis" --version
echo "    ($((SECONDS - started)) s)"

# 2. The release binary.
step "release build"
started=$SECONDS
build_release
echo "    ($((SECONDS - started)) s)"

rm -rf "$OUT"
mkdir -p "$OUT"
failed=0

cleanup() {
  stop_server
}
trap cleanup EXIT

# 3. One run per credential type, each against a fresh server and database.
run_schemathesis() {
  local mode="$1"
  local dir="$OUT/$mode"
  mkdir -p "$dir"
  step "run with $mode authentication"
  local started=$SECONDS
  # `start_server` is called as a condition: its port-polling pipeline
  # fails harmlessly until the server logs its address, which `set -e`
  # would otherwise turn into an exit.
  if ! start_server "$dir"; then
    echo "the server did not start" >&2
    return 1
  fi
  echo "    server $SERVER_URL (pid $SERVER_PID), log $SERVER_LOG"
  curl -fsS "$SERVER_URL/openapi.json" -o "$dir/openapi.json" || true

  local seed_args=()
  if [ -n "$SEED" ]; then
    seed_args=(--seed "$SEED")
  fi
  local status=0
  # One worker: a fuzzed logout or revocation in one worker would end the
  # session another worker's request is using at that very moment; its
  # re-authenticated replay could fail again, and Schemathesis would then
  # stop re-authenticating for that operation. Sequentially every such 401 is
  # repaired before the next request (and the whole run still takes well
  # under a minute per credential type).
  env SERVER_URL="$SERVER_URL" \
    PORTCULLIS_ST_AUTH="$mode" \
    PORTCULLIS_BIN="$(cd "$(dirname "$PORTCULLIS_BIN")" && pwd)/$(basename "$PORTCULLIS_BIN")" \
    PORTCULLIS_DATA_DIR="$dir/data" \
    PORTCULLIS_ST_LOG="$dir/auth.log" \
    SCHEMATHESIS_HOOKS="$ROOT/.ci/schemathesis/hooks.py" \
    HYPOTHESIS_STORAGE_DIRECTORY="$dir/hypothesis" \
    "$VENV/bin/schemathesis" --config-file "$CONFIG" run "$SERVER_URL/openapi.json" \
    --checks all \
    --phases examples,coverage,fuzzing,stateful \
    --max-examples "$MAX_EXAMPLES" \
    --workers 1 \
    --report junit,ndjson,har \
    --report-dir "$dir" \
    --report-junit-path "$dir/junit.xml" \
    --report-ndjson-path "$dir/events.ndjson" \
    --report-har-path "$dir/requests.har" \
    --no-color \
    "${seed_args[@]}" || status=$?
  stop_server

  # Belt and braces: not_a_server_error already fails on a 5xx answer, but
  # the server's own log also sees requests made by the hooks.
  local server_errors
  server_errors=$(grep -c '"status":5[0-9][0-9]' "$dir/server.log" || true)
  local covered=1
  if [ -s "$dir/events.ndjson" ] && [ -s "$dir/openapi.json" ]; then
    covered=0
    "$VENV/bin/python" "$ROOT/.ci/schemathesis/summary.py" "$dir/events.ndjson" "$dir/server.log" \
      "$dir/auth.log" "$dir/openapi.json" "$MAX_EXAMPLES" || covered=$?
  fi
  echo "    ($((SECONDS - started)) s)"

  local ok=0
  if [ "$status" -ne 0 ]; then
    echo "=== schemathesis ($mode) reported failures (exit $status); see the output above and $dir" >&2
    ok=1
  fi
  if [ "$server_errors" -ne 0 ]; then
    echo "=== the server answered $server_errors request(s) with a 5xx during the $mode run; see $dir/server.log" >&2
    ok=1
  fi
  if [ "$covered" -ne 0 ]; then
    echo "=== schemathesis ($mode) did not test every operation with $MAX_EXAMPLES examples; see above" >&2
    ok=1
  fi
  return "$ok"
}

for mode in oauth2 apikey; do
  run_schemathesis "$mode" || failed=1
done

echo "--- schemathesis: total $((SECONDS - stage_started)) s; reports in $OUT"
exit "$failed"
