#!/usr/bin/env bash
# Durability under a crash (contract: "a kill -9 at any moment loses no
# acknowledged write"): the release server with production argon2 takes 600
# concurrent registrations (64 connections at a time, stdlib-only client
# .ci/clients/crash_durability.py) and is SIGKILLed once half have been
# answered. It is restarted on the same data directory; every registration
# that was answered 201 must then log in (POST /auth/token), and SQLite's
# PRAGMA integrity_check must print ok; `portcullis audit verify` must
# pass and every acknowledged registration (and the logins of the check)
# must have its audit event. 503 answers are the hashing queue's
# documented back-pressure and count as not acknowledged. Then the same on
# PostgreSQL (PORTCULLIS_DATABASE_URL on a fresh database of the test
# server).
set -euo pipefail
cd "$(dirname "$0")/../.."
. .ci/lib/server.sh

fail() { echo "crash-durability: FAIL: $*" >&2; exit 1; }

ROOT=target/ci/crash-durability
COUNT=${CRASH_COUNT:-600}
rm -rf "$ROOT"
mkdir -p "$ROOT"
trap 'stop_server' EXIT

# One pass: the load, the SIGKILL, the restart and the check that every 201
# logs in; WORK is the data directory, the rest are settings for the server.
crash_and_verify() {
  WORK="$1"
  shift
  mkdir -p "$WORK"
  start_server "$WORK" "$@" || fail "the release server did not start (log: $WORK/server.log)"
  echo "crash-durability: server at $SERVER_URL (pid $SERVER_PID); $COUNT registrations, 64 concurrent, SIGKILL after $((COUNT / 2)) answers"
  python3 .ci/clients/crash_durability.py register "$SERVER_URL" "$SERVER_PID" "$WORK/acknowledged.json" \
    --count "$COUNT" --concurrency 64 --kill-after $((COUNT / 2)) \
    || fail "the registration load did not complete as planned"
  wait "$SERVER_PID" 2>/dev/null || true   # bash may print "Killed": that is this SIGKILL
  if kill -0 "$SERVER_PID" 2>/dev/null; then
    fail "the server (pid $SERVER_PID) is still running after SIGKILL"
  fi
  cp "$WORK/server.log" "$WORK/server-before-crash.log"

  echo "crash-durability: restarting on the same store"
  start_server "$WORK" "$@" || fail "the server did not restart on the crashed store (log: $WORK/server.log)"
  python3 .ci/clients/crash_durability.py verify "$SERVER_URL" "$WORK/acknowledged.json" \
    || fail "registrations acknowledged with 201 were lost by the crash (see LOST lines above)"
  stop_server
  # The audit log (CONTRACT §8): its chain is whole after the crash, and
  # every acknowledged registration's event survived it (the event is in
  # the registration's transaction), as did every login just made.
  echo "crash-durability: portcullis audit verify"
  env PORTCULLIS_DATA_DIR="$WORK/data" "$@" "$PORTCULLIS_BIN" audit verify \
    || fail "the audit chain does not verify after the crash"
  env PORTCULLIS_DATA_DIR="$WORK/data" "$@" "$PORTCULLIS_BIN" audit export >"$WORK/audit.jsonl" \
    || fail "portcullis audit export failed"
  python3 - "$WORK/acknowledged.json" "$WORK/audit.jsonl" <<'PY' || fail "acknowledged changes are missing from the audit log"
import json, sys
created = [c["username"] for c in json.load(open(sys.argv[1]))["created"]]
events = [json.loads(line) for line in open(sys.argv[2])]
registered = {e["details"].get("username") for e in events if e["event"] == "user.registered"}
logins = sum(1 for e in events if e["event"] == "login.succeeded")
missing = [u for u in created if u not in registered]
for username in missing[:10]:
    print(f"crash-durability: no user.registered event for acknowledged {username}")
seqs = [e["seq"] for e in events]
assert seqs == list(range(1, len(seqs) + 1)), "the exported seqs have gaps"
print(f"crash-durability: audit log: {len(events)} events, {len(registered)} registrations "
      f"({len(created)} acknowledged), {logins} logins")
sys.exit(1 if missing or logins < len(created) else 0)
PY
}

acknowledged() {
  python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["created"]))' "$1/acknowledged.json"
}

build_release

echo "crash-durability: SQLite"
crash_and_verify "$ROOT/sqlite"
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
rows=$(python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("SELECT count(*) FROM users WHERE username LIKE '"'crash-%'"'").fetchone()[0])' "$DB")
acked=$(acknowledged "$WORK")
echo "crash-durability: users in the database $rows: $acked acknowledged + $((rows - acked)) committed whose answer the crash cut off"

# The same on PostgreSQL (CONTRACT §5: no acknowledged write lost), on a
# database of its own on the test server.
ADMIN_URL="${PORTCULLIS_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
PG_DB="portcullis_ci_crash_$$"
psql "$ADMIN_URL" -XAtqc "CREATE DATABASE $PG_DB" || fail "cannot create database $PG_DB (is PostgreSQL up? see the postgres-up stage)"
# The test server is on loopback and Debian's PostgreSQL offers TLS with its
# self-signed certificate, which the store would refuse: without an sslmode
# of its own the URL gets sslmode=disable, as the test support does.
PG_URL=$(python3 -c '
import sys, urllib.parse as u
p = u.urlsplit(sys.argv[1])
query = p.query if "sslmode=" in p.query else "&".join(filter(None, [p.query, "sslmode=disable"]))
print(u.urlunsplit(p._replace(path="/" + sys.argv[2], query=query)))' "$ADMIN_URL" "$PG_DB")
trap 'stop_server; psql "$ADMIN_URL" -XAtqc "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" >/dev/null 2>&1 || true' EXIT
echo "crash-durability: PostgreSQL"
crash_and_verify "$ROOT/postgres" PORTCULLIS_DATABASE_URL="$PG_URL"
rows=$(psql "$PG_URL" -XAtqc "SELECT count(*) FROM users WHERE username LIKE 'crash-%'")
acked=$(acknowledged "$WORK")
echo "crash-durability: users in the database $rows: $acked acknowledged + $((rows - acked)) committed whose answer the crash cut off"
[ "$rows" -ge "$acked" ] || fail "fewer users in PostgreSQL than acknowledged"
echo "crash-durability: ok"
