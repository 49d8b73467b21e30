#!/usr/bin/env bash
# The OpenAPI document must make a working client: openapi-python-client
# (pinned) generates one from the live /openapi.json, it is installed into the
# CI venv, and .ci/clients/generated_client_smoke.py uses only its generated
# functions to register, log in (form /auth/token and JSON /auth/login) and
# GET /users/me with the bearer token. Generator warnings about the document
# are printed (pieces of the client may be missing then) but do not fail the
# stage; a failed generation does.
set -euo pipefail
cd "$(dirname "$0")/../.."
. .ci/lib/server.sh

fail() { echo "generated-client: FAIL: $*" >&2; exit 1; }

WORK=target/ci/generated-client
VENV=target/ci-venv
rm -rf "$WORK"
mkdir -p "$WORK"
trap 'stop_server' EXIT

echo "generated-client: Python venv $VENV from .ci/clients/requirements.txt (pinned)"
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV" || fail "python3 -m venv failed"
"$VENV/bin/pip" install -q --disable-pip-version-check -r .ci/clients/requirements.txt \
  || fail "pip install -r .ci/clients/requirements.txt failed"
"$VENV/bin/pip" uninstall -q -y portcullis-client >/dev/null 2>&1 || true

build_release
start_server "$WORK" || fail "the release server did not start (log: $WORK/server.log)"
echo "generated-client: server at $SERVER_URL"
curl -fsS "$SERVER_URL/openapi.json" -o "$WORK/openapi.json" || fail "GET /openapi.json failed"

echo "generated-client: openapi-python-client generate from the live /openapi.json"
# The venv's bin on PATH lets the generator run its ruff post-hooks.
set +e
PATH="$PWD/$VENV/bin:$PATH" COLUMNS=200 "$VENV/bin/openapi-python-client" generate \
  --path "$WORK/openapi.json" --meta setup --output-path "$WORK/portcullis-client" \
  --overwrite >"$WORK/generate.log" 2>&1
rc=$?
set -e
cat "$WORK/generate.log"
if [ "$rc" -ne 0 ]; then
  fail "openapi-python-client could not generate a client from /openapi.json (exit $rc); see its messages above"
fi
if grep -qi 'warning' "$WORK/generate.log"; then
  echo "generated-client: WARNING: the generator warned about /openapi.json (above); parts of the client may be missing"
fi

echo "generated-client: installing the generated package into $VENV"
"$VENV/bin/pip" install -q --disable-pip-version-check --no-deps --no-build-isolation \
  "$WORK/portcullis-client" || fail "the generated client does not install"

"$VENV/bin/python" .ci/clients/generated_client_smoke.py "$SERVER_URL" \
  || fail "the generated client could not register, log in and GET /users/me (server log: $WORK/server.log)"

stop_server
echo "generated-client: ok"
