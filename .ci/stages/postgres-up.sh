#!/usr/bin/env bash
# The tests need a real PostgreSQL server (CONTRACT §5; README "Tests"): the
# one of PORTCULLIS_TEST_DATABASE_URL, by default the project machines'
# PostgreSQL 15 on 127.0.0.1:5432 with trust auth. Say which, and fail with
# how to provide one, before the test stage would fail on it test by test.
set -euo pipefail
URL="${PORTCULLIS_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
# Never print a password the URL may hold.
SHOWN=$(printf '%s' "$URL" | sed -E 's#(://[^:/@]+):[^@]*@#\1:***@#')
for _ in $(seq 1 20); do
  if version=$(psql "$URL" -XAtqc 'SHOW server_version' 2>/tmp/postgres-up.err); then
    echo "postgres-up: PostgreSQL $version at $SHOWN"
    # The tests create and drop a database each: the role must be allowed to.
    can_create=$(psql "$URL" -XAtqc "SELECT rolcreatedb OR rolsuper FROM pg_roles WHERE rolname = current_user")
    [ "$can_create" = t ] || { echo "postgres-up: FAIL: the role of $SHOWN cannot create databases" >&2; exit 1; }
    exit 0
  fi
  sleep 0.5
done
echo "postgres-up: FAIL: no PostgreSQL server at $SHOWN: $(cat /tmp/postgres-up.err)" >&2
echo "postgres-up: start PostgreSQL on 127.0.0.1:5432 with trust auth, or set PORTCULLIS_TEST_DATABASE_URL=postgres://user@host:port/db" >&2
exit 1
