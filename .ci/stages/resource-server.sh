#!/usr/bin/env bash
# Tokens other services can trust, proven with outside code: the FastAPI
# app in apps/fastapi-resource-server (PyJWT's PyJWKClient, RFC 9068 checks)
# verifies Portcullis's EdDSA tokens from the JWKS it finds in the RFC 8414
# metadata, and asks RFC 7662 introspection (with an API key holding only
# `introspect`) on its revocation-sensitive route. Across two key rotations
# (`portcullis keys rotate`, as an operator would run it) no call fails;
# after logout the introspecting route refuses at once, while the locally
# verifying one accepts the token until it expires (that is the trade-off
# the route choice documents).
set -euo pipefail
cd "$(dirname "$0")/../.."
. .ci/lib/server.sh

fail() { echo "resource-server: FAIL: $*" >&2; exit 1; }

WORK=target/ci/resource-server
VENV=target/ci-resource-server-venv
APP_PID=""
rm -rf "$WORK"
mkdir -p "$WORK"
cleanup() {
  [ -n "$APP_PID" ] && kill "$APP_PID" 2>/dev/null || true
  stop_server
}
trap cleanup EXIT

echo "resource-server: Python venv $VENV from apps/fastapi-resource-server/requirements.txt (pinned)"
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV" || fail "python3 -m venv failed"
"$VENV/bin/pip" install -q --disable-pip-version-check -r apps/fastapi-resource-server/requirements.txt \
  || fail "pip install failed"

build_release
# Upkeep runs every second (a quarter of the publish-ahead time), so a
# rotation made by the CLI reaches the server at once.
start_server "$WORK" PORTCULLIS_KEY_PUBLISH_AHEAD_SECS=4 \
  || fail "the release server did not start (log: $WORK/server.log)"
URL="$SERVER_URL"
DATA="$WORK/data"
echo "resource-server: Portcullis at $URL"

json() { "$VENV/bin/python" -c "import json,sys; print(json.load(sys.stdin)$1)"; }
PASSWORD='copper heron beside the mill pond'

"$PORTCULLIS_BIN" --data-dir "$DATA" user create --username rs-admin --email rs-admin@example.com \
  --admin --password-stdin <<<"$PASSWORD" >/dev/null || fail "portcullis user create --admin failed"
status=$(curl -sS -o "$WORK/register.json" -w '%{http_code}' -X POST "$URL/auth/register" \
  -H 'content-type: application/json' \
  -d "{\"username\":\"rs-user\",\"email\":\"rs-user@example.com\",\"password\":\"$PASSWORD\"}")
[ "$status" = 201 ] || fail "POST /auth/register answered $status: $(cat "$WORK/register.json")"

token_for() { # username scope
  curl -fsS -X POST "$URL/auth/token" --data-urlencode grant_type=password \
    --data-urlencode "username=$1" --data-urlencode "password=$PASSWORD" \
    --data-urlencode "scope=$2" | json '["access_token"]'
}
ADMIN_TOKEN=$(token_for rs-admin "profile admin introspect") || fail "admin login failed"
INTROSPECTION_KEY=$(curl -fsS -X POST "$URL/users/me/api-keys" -H "authorization: Bearer $ADMIN_TOKEN" \
  -H 'content-type: application/json' -d '{"name":"fastapi resource server","scopes":["introspect"]}' \
  | json '["key"]') || fail "creating the introspection API key failed"

PORT=$("$VENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
APP="http://127.0.0.1:$PORT"
(cd apps/fastapi-resource-server && PORTCULLIS_URL="$URL" RESOURCE_AUDIENCE=portcullis \
  INTROSPECTION_API_KEY="$INTROSPECTION_KEY" \
  exec "../../$VENV/bin/uvicorn" app:app --host 127.0.0.1 --port "$PORT" --log-level warning) \
  >"$WORK/app.log" 2>&1 &
APP_PID=$!
for _ in $(seq 1 100); do curl -fsS -o /dev/null "$APP/openapi.json" 2>/dev/null && break; sleep 0.1; done
curl -fsS -o /dev/null "$APP/openapi.json" || fail "the FastAPI app did not start: $(cat "$WORK/app.log")"
echo "resource-server: FastAPI app at $APP"

expect() { # status method path token what
  local got
  got=$(curl -sS -o "$WORK/last.json" -w '%{http_code}' -X "$2" "$APP$3" -H "authorization: Bearer $4")
  [ "$got" = "$1" ] || fail "$5: $2 $3 answered $got, wanted $1: $(cat "$WORK/last.json") (app log: $WORK/app.log)"
  echo "resource-server: ok: $5 ($got)"
}

FIRST=$(token_for rs-user profile)
expect 200 GET /notes "$FIRST" "a Portcullis token verified from the JWKS"
expect 200 POST /transfers "$FIRST" "and found active by introspection"
BROKEN=$("$VENV/bin/python" -c '
import sys
head, body, sig = sys.argv[1].split(".")
i = len(sig) // 2
sig = sig[:i] + ("B" if sig[i] == "A" else "A") + sig[i + 1:]
print(".".join([head, body, sig]))' "$FIRST")
expect 401 GET /notes "$BROKEN" "a token with a broken signature"

for round in 1 2; do
  # A forced rotation signs with the next key at once. The app has it
  # cached only if it fetched the key set since that key was published, so
  # wait out its refetch cooldown (5 s): then an unknown kid refetches once.
  sleep 6
  "$PORTCULLIS_BIN" --data-dir "$DATA" keys rotate >"$WORK/rotate-$round.txt" || fail "portcullis keys rotate failed"
  sleep 2 # the server's key upkeep runs every second
  NEW=$(token_for rs-user profile)
  expect 200 GET /notes "$NEW" "rotation $round: a token of the new key"
  expect 200 POST /transfers "$NEW" "rotation $round: introspected"
  expect 200 GET /notes "$FIRST" "rotation $round: a token of a retired key still verifies"
done

LOGGED_OUT=$(token_for rs-user profile)
expect 200 POST /transfers "$LOGGED_OUT" "before logout"
status=$(curl -sS -o /dev/null -w '%{http_code}' -X POST "$URL/auth/logout" -H "authorization: Bearer $LOGGED_OUT")
[ "$status" = 204 ] || fail "POST /auth/logout answered $status"
expect 401 POST /transfers "$LOGGED_OUT" "after logout the introspecting route refuses at once"
expect 200 GET /notes "$LOGGED_OUT" "the locally verifying route accepts it until it expires"

cleanup
trap - EXIT
echo "resource-server: ok"
