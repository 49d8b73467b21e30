#!/usr/bin/env bash
# Prometheus metrics, checked with Prometheus's own tool: the release server
# with PORTCULLIS_METRICS_BIND on a free port serves `/metrics` there (and
# not on the API's port); after a registration, logins (one refused), a
# refresh, a refresh reuse and requests to unknown paths, `promtool check
# metrics` accepts the scrape, and the counters of those requests are in it.
# `promtool check rules` accepts docs/monitoring/alerts.yml. promtool comes
# from Debian's `prometheus` package, installed when missing.
set -euo pipefail
cd "$(dirname "$0")/../.."
. .ci/lib/server.sh

fail() { echo "metrics: FAIL: $*" >&2; exit 1; }

WORK=target/ci/metrics
rm -rf "$WORK"
mkdir -p "$WORK"
trap 'stop_server' EXIT

if ! command -v promtool >/dev/null; then
  echo "metrics: promtool missing: installing Debian's prometheus package"
  # The policy is read whole before grep looks at it: `grep -q` stops at its
  # match, and under pipefail the SIGPIPE that gives apt-cache would fail
  # the check.
  candidate() { local policy; policy=$(apt-cache policy prometheus 2>/dev/null || true); grep -q 'Candidate: [0-9]' <<<"$policy"; }
  if ! candidate; then
    apt-get update -qq || fail "apt-get update failed"
  fi
  candidate || fail "no installable prometheus package"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null \
    || fail "apt-get install prometheus failed"
fi
promtool --version | head -1

echo "metrics: promtool check rules docs/monitoring/alerts.yml"
promtool check rules docs/monitoring/alerts.yml || fail "the alert rules do not pass promtool"

build_release
start_server "$WORK" PORTCULLIS_METRICS_BIND=127.0.0.1:0 \
  || fail "the release server did not start (log: $WORK/server.log)"
# The metrics listener logs its own address before the API's `address`.
metrics_port=$(grep -o '"metrics_address":"127.0.0.1:[0-9]*"' "$SERVER_LOG" | head -1 | grep -o '[0-9]*"$' | tr -d '"' || true)
[ -n "$metrics_port" ] || fail "the server did not log metrics_address (log: $SERVER_LOG)"
METRICS_URL="http://127.0.0.1:$metrics_port/metrics"
echo "metrics: API at $SERVER_URL, metrics at $METRICS_URL"

status() { curl -s -o /dev/null -w '%{http_code}' "$@"; }
json() { curl -s -o /dev/null -w '%{http_code}' -H 'content-type: application/json' "$@"; }
password='correct horse battery staple'
[ "$(json -X POST "$SERVER_URL/auth/register" \
  -d "{\"username\":\"metrics-ci\",\"email\":\"metrics-ci@example.com\",\"password\":\"$password\"}")" = 201 ] \
  || fail "registration failed"
[ "$(json "$SERVER_URL/auth/login" -d '{"username":"metrics-ci","password":"not the password at all"}')" = 400 ] \
  || fail "a wrong password was not refused"
tokens=$(curl -fsS -H 'content-type: application/json' "$SERVER_URL/auth/login" \
  -d "{\"username\":\"metrics-ci\",\"password\":\"$password\"}") || fail "login failed"
refresh_token=$(printf '%s' "$tokens" | python3 -c 'import json, sys; print(json.load(sys.stdin)["refresh_token"])')
[ "$(status "$SERVER_URL/auth/token" --data-urlencode grant_type=refresh_token --data-urlencode "refresh_token=$refresh_token")" = 200 ] \
  || fail "refresh failed"
[ "$(status "$SERVER_URL/auth/token" --data-urlencode grant_type=refresh_token --data-urlencode "refresh_token=$refresh_token")" = 400 ] \
  || fail "a reused refresh token was not refused"
for i in 1 2 3; do
  [ "$(status "$SERVER_URL/no-such-path-$RANDOM/$i")" = 404 ] || fail "an unknown path was not 404"
done
[ "$(status "$SERVER_URL/health/ready")" = 200 ] || fail "/health/ready is not 200"
[ "$(status "$SERVER_URL/metrics")" = 404 ] || fail "the API port serves /metrics"

# Three unknown paths and the API port's /metrics: four `unmatched`.
curl -fsS "$METRICS_URL" -o "$WORK/scrape.txt" || fail "GET $METRICS_URL failed"
echo "metrics: promtool check metrics on the scrape ($(wc -l <"$WORK/scrape.txt") lines)"
promtool check metrics <"$WORK/scrape.txt" || fail "promtool check metrics rejected the scrape ($WORK/scrape.txt)"
for series in \
  'portcullis_http_requests_total{method="POST",route="/auth/register",status="201"} 1' \
  'portcullis_http_requests_total{method="GET",route="unmatched",status="404"} 4' \
  'portcullis_logins_total{result="success"} 1' \
  'portcullis_logins_total{result="invalid_grant"} 1' \
  'portcullis_refresh_token_reuse_total 1'; do
  grep -qxF "$series" "$WORK/scrape.txt" || fail "the scrape lacks '$series' ($WORK/scrape.txt)"
done
if grep -q 'no-such-path' "$WORK/scrape.txt"; then
  fail "a raw path became a label value"
fi
stop_server
echo "metrics: ok"
