#!/usr/bin/env bash
# Interoperability with a stock OAuth2 client: requests-oauthlib's
# OAuth2Session with oauthlib's LegacyApplicationClient (RFC 6749 §4.3
# password grant), no Portcullis-specific code (.ci/clients/oauth_client.py):
# fetch_token, GET /users/me through the session, refresh_token, GET again;
# 200s, and the refresh must rotate the tokens. The server runs with TLS on a
# throwaway self-signed certificate, so the library's HTTPS-only rule is kept
# (no OAUTHLIB_INSECURE_TRANSPORT) and the client verifies the certificate.
set -euo pipefail
cd "$(dirname "$0")/../.."
. .ci/lib/server.sh

fail() { echo "oauth-client: FAIL: $*" >&2; exit 1; }

WORK=target/ci/oauth-client
unset OAUTHLIB_INSECURE_TRANSPORT  # the library must insist on HTTPS, as in production
VENV=target/ci-venv
rm -rf "$WORK"
mkdir -p "$WORK"
trap 'stop_server' EXIT

echo "oauth-client: Python venv $VENV from .ci/clients/requirements.txt (pinned)"
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV" || fail "python3 -m venv failed"
"$VENV/bin/pip" install -q --disable-pip-version-check -r .ci/clients/requirements.txt \
  || fail "pip install -r .ci/clients/requirements.txt failed"

command -v openssl >/dev/null || {
  echo "oauth-client: installing openssl"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssl >/dev/null
}
echo "oauth-client: self-signed certificate for 127.0.0.1"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 1 \
  -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1,DNS:localhost \
  -keyout "$WORK/key.pem" -out "$WORK/cert.pem" 2>"$WORK/openssl.err" \
  || { cat "$WORK/openssl.err" >&2; fail "openssl could not make a certificate"; }

build_release
start_server "$WORK" PORTCULLIS_TLS_CERT="$WORK/cert.pem" PORTCULLIS_TLS_KEY="$WORK/key.pem" \
  2>"$WORK/start.err" || { cat "$WORK/start.err" >&2; fail "the release server did not start with TLS (log: $WORK/server.log)"; }
URL="$SERVER_URL"
grep -q "listening on $URL" "$WORK/server.log" || fail "the server does not report listening on $URL"
curl -fsS --cacert "$WORK/cert.pem" "$URL/health" >/dev/null || fail "GET $URL/health failed"
echo "oauth-client: server at $URL"

USERNAME=oauth-ci
PASSWORD='copper heron beside the mill pond'
status=$(curl -sS --cacert "$WORK/cert.pem" -o "$WORK/register.json" -w '%{http_code}' \
  -X POST "$URL/auth/register" -H 'content-type: application/json' \
  -d "{\"username\":\"$USERNAME\",\"email\":\"$USERNAME@example.com\",\"password\":\"$PASSWORD\"}")
[ "$status" = 201 ] || fail "POST /auth/register answered $status: $(cat "$WORK/register.json")"

"$VENV/bin/python" .ci/clients/oauth_client.py "$URL" "$USERNAME" "$PASSWORD" --ca-cert "$WORK/cert.pem" \
  || fail "requests-oauthlib could not complete password grant + refresh (server log: $WORK/server.log)"

stop_server
echo "oauth-client: ok"
