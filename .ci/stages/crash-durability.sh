#!/usr/bin/env bash
# Durability under a crash (contract: "a kill -9 at any moment loses no
# acknowledged write"): the release server with production argon2 takes 600
# concurrent registrations (64 connections at a time, stdlib-only client
# .ci/clients/crash_durability.py) and is SIGKILLed once half have been
# answered. It is restarted on the same data directory; every registration
# that was answered 201 must then log in (POST /auth/token), and SQLite's
# PRAGMA integrity_check must print ok. 503 answers are the hashing queue's
# documented back-pressure and count as not acknowledged.
set -euo pipefail
cd "$(dirname "$0")/../.."
. .ci/lib/server.sh

fail() { echo "crash-durability: FAIL: $*" >&2; exit 1; }

WORK=target/ci/crash-durability
COUNT=${CRASH_COUNT:-600}
rm -rf "$WORK"
mkdir -p "$WORK"
trap 'stop_server' EXIT

build_release
start_server "$WORK" || fail "the release server did not start (log: $WORK/server.log)"
echo "crash-durability: server at $SERVER_URL (pid $SERVER_PID); $COUNT registrations, 64 concurrent, SIGKILL after $((COUNT / 2)) answers"
python3 .ci/clients/crash_durability.py register "$SERVER_URL" "$SERVER_PID" "$WORK/acknowledged.json" \
  --count "$COUNT" --concurrency 64 --kill-after $((COUNT / 2)) \
  || fail "the registration load did not complete as planned"
wait "$SERVER_PID" 2>/dev/null || true   # bash may print "Killed": that is this SIGKILL
if kill -0 "$SERVER_PID" 2>/dev/null; then
  fail "the server (pid $SERVER_PID) is still running after SIGKILL"
fi
cp "$WORK/server.log" "$WORK/server-before-crash.log"

echo "crash-durability: restarting on the same data directory"
start_server "$WORK" || fail "the server did not restart on the crashed data directory (log: $WORK/server.log)"
python3 .ci/clients/crash_durability.py verify "$SERVER_URL" "$WORK/acknowledged.json" \
  || fail "registrations acknowledged with 201 were lost by the crash (see LOST lines above)"
stop_server

DB="$WORK/data/portcullis.db"
[ -f "$DB" ] || fail "no database at $DB"
echo "crash-durability: PRAGMA integrity_check on $DB"
if command -v sqlite3 >/dev/null; then
  integrity=$(sqlite3 "$DB" 'PRAGMA integrity_check')
else
  integrity=$(python3 -c 'import sqlite3,sys; print("\n".join(r[0] for r in sqlite3.connect(sys.argv[1]).execute("PRAGMA integrity_check")))' "$DB")
fi
echo "crash-durability: integrity_check: $integrity"
[ "$integrity" = ok ] || fail "PRAGMA integrity_check did not print ok"
python3 - "$DB" "$WORK/acknowledged.json" <<'PY'
import json, sqlite3, sys
db, ack = sys.argv[1:3]
summary = json.load(open(ack))
rows = sqlite3.connect(db).execute("SELECT count(*) FROM users WHERE username LIKE 'crash-%'").fetchone()[0]
acked = len(summary["created"])
print(f"crash-durability: users in the database {rows}: {acked} acknowledged + {rows - acked} "
      f"committed whose answer the crash cut off")
PY
echo "crash-durability: ok"
