#!/usr/bin/env bash
# Browser check: Swagger UI at /docs, driven by Playwright in Debian's headless
# Chromium, must Authorize with the OAuth2 password flow and then get 200 from
# "Try it out" on GET /users/me, with no Content-Security-Policy violation, no
# uncaught exception and no console error but the favicon 404
# (tests/browser/swagger-authorize.js). A negative control then serves /docs
# with a stricter CSP and requires the violation to be detected, so the CSP
# check cannot go blind unnoticed. Screenshot: target/artifacts/swagger-authorize.png.
set -euo pipefail
cd "$(dirname "$0")/../.."
. .ci/lib/server.sh

fail() { echo "browser: FAIL: $*" >&2; exit 1; }

WORK=target/ci/browser
ARTIFACTS=target/artifacts
rm -rf "$WORK"
mkdir -p "$WORK" "$ARTIFACTS"
trap 'stop_server' EXIT

echo "browser: tools (Debian chromium, node, playwright-core from tests/browser/package-lock.json)"
if [ ! -x /usr/bin/chromium ]; then
  echo "browser: installing Debian's chromium"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq chromium >/dev/null
fi
[ -x /usr/bin/chromium ] || fail "/usr/bin/chromium is missing after apt-get install chromium"
command -v node >/dev/null || fail "node is not installed"
command -v npm >/dev/null || fail "npm is not installed"
(cd tests/browser && npm ci --no-audit --no-fund --loglevel=error) || fail "npm ci in tests/browser failed"
/usr/bin/chromium --version 2>/dev/null || true

build_release
# start_server polls the log with a grep pipeline that fails until the address
# is logged; calling it as the left side of || keeps errexit from ending the
# stage on the first poll.
start_server "$WORK" || fail "the release server did not start (log: $WORK/server.log)"
echo "browser: server at $SERVER_URL"

USERNAME=swagger-ci
PASSWORD='violet kestrel under nine bridges'
status=$(curl -sS -o "$WORK/register.json" -w '%{http_code}' -X POST "$SERVER_URL/auth/register" \
  -H 'content-type: application/json' \
  -d "{\"username\":\"$USERNAME\",\"email\":\"$USERNAME@example.com\",\"password\":\"$PASSWORD\"}")
[ "$status" = 201 ] || fail "POST /auth/register answered $status: $(cat "$WORK/register.json")"

echo "browser: Swagger UI /docs: Authorize (password flow) + Try it out GET /users/me; no CSP violation, no console error but the favicon 404"
if ! SCREENSHOT="$ARTIFACTS/swagger-authorize.png" \
  node tests/browser/swagger-authorize.js "$SERVER_URL" "$USERNAME" "$PASSWORD" >"$WORK/verdict.json" 2>"$WORK/node.err"; then
  cat "$WORK/node.err" >&2
  fail "Swagger UI check failed; verdict: $(cat "$WORK/verdict.json")"
fi
echo "browser: verdict: $(cat "$WORK/verdict.json")"
echo "browser: screenshot saved to $ARTIFACTS/swagger-authorize.png"

# Negative control: the server's own policy with 'unsafe-inline' taken out of
# style-src (Swagger UI needs inline styles) must produce a detected violation.
policy=$(curl -sS -D - -o /dev/null "$SERVER_URL/docs" | tr -d '\r' \
  | sed -n 's/^[Cc]ontent-[Ss]ecurity-[Pp]olicy: //p')
[ -n "$policy" ] || fail "/docs sent no Content-Security-Policy header"
echo "browser: /docs CSP: $policy"
strict=$(printf '%s' "$policy" | sed "s/\(style-src[^;]*\) 'unsafe-inline'/\1/")
[ "$strict" != "$policy" ] || strict="$policy; style-src 'none'"
echo "browser: negative control with CSP: $strict"
set +e
CSP_OVERRIDE="$strict" SCREENSHOT="$WORK/control.png" \
  node tests/browser/swagger-authorize.js "$SERVER_URL" "$USERNAME" "$PASSWORD" >"$WORK/control.json" 2>"$WORK/control.err"
rc=$?
set -e
violations=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["cspViolations"]))' "$WORK/control.json" 2>/dev/null || echo 0)
if [ "$rc" -eq 0 ] || [ "$violations" -eq 0 ]; then
  cat "$WORK/control.err" >&2
  fail "negative control: a stricter CSP produced no detected violation (exit $rc): the CSP check is blind"
fi
echo "browser: negative control detected $violations CSP violation(s) as expected"

stop_server
echo "browser: ok"
