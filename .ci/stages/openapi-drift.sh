#!/usr/bin/env bash
# The OpenAPI document printed by `portcullis openapi` (what users save and
# feed to generators) must be the one the running server serves at
# /openapi.json. Compared as parsed JSON; a unified diff of the pretty-printed
# documents is shown when they differ.
set -euo pipefail
cd "$(dirname "$0")/../.."
. .ci/lib/server.sh

fail() { echo "openapi-drift: FAIL: $*" >&2; exit 1; }

WORK=target/ci/openapi-drift
rm -rf "$WORK"
mkdir -p "$WORK"
trap 'stop_server' EXIT

build_release
echo "openapi-drift: $PORTCULLIS_BIN openapi"
"$PORTCULLIS_BIN" openapi >"$WORK/cli.json" 2>"$WORK/cli.err" \
  || { cat "$WORK/cli.err" >&2; fail "'$PORTCULLIS_BIN openapi' failed"; }

start_server "$WORK" || fail "the release server did not start (log: $WORK/server.log)"
echo "openapi-drift: GET $SERVER_URL/openapi.json"
curl -fsS "$SERVER_URL/openapi.json" -o "$WORK/live.json" || fail "GET /openapi.json failed"
stop_server

echo "openapi-drift: comparing both documents as parsed JSON"
python3 - "$WORK/cli.json" "$WORK/live.json" <<'PY' || fail "'portcullis openapi' and the live /openapi.json differ (diff above)"
import difflib, json, sys
cli_path, live_path = sys.argv[1:3]
docs = []
for path in (cli_path, live_path):
    try:
        with open(path, encoding="utf-8") as f:
            docs.append(json.load(f))
    except ValueError as e:
        print(f"{path} is not JSON: {e}", file=sys.stderr)
        sys.exit(1)
cli, live = docs
if cli == live:
    print(f"openapi-drift: identical (OpenAPI {live.get('openapi')}, {len(live.get('paths', {}))} paths, "
          f"{len(live.get('components', {}).get('schemas', {}))} schemas)")
    sys.exit(0)
pretty = lambda d: json.dumps(d, indent=2, sort_keys=True, ensure_ascii=False).splitlines(keepends=True)
sys.stdout.writelines(difflib.unified_diff(pretty(cli), pretty(live),
                                           "portcullis openapi", "GET /openapi.json"))
sys.exit(1)
PY
echo "openapi-drift: ok"
