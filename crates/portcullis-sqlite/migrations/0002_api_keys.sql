-- Migration 2: user-owned API keys.
--
-- STRICT like every table; times are INTEGER unix seconds, UTC.

CREATE TABLE api_keys (
    id           TEXT    NOT NULL PRIMARY KEY,
    user_id      TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         TEXT    NOT NULL,
    -- The first characters of the key, shown to its owner to tell keys apart.
    prefix       TEXT    NOT NULL,
    -- Only the hash of a key is ever stored. UNIQUE also gives the index
    -- that every authentication looks the key up through.
    key_hash     BLOB    NOT NULL UNIQUE,
    -- The granted scopes, space-separated (the ScopeSet display form).
    scope        TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    -- Written at most once a minute, so that most authentications only read.
    last_used_at INTEGER,
    -- NULL for a key that never expires.
    expires_at   INTEGER,
    -- NULL while the key is not revoked.
    revoked_at   INTEGER
) STRICT;

CREATE INDEX api_keys_user_id ON api_keys (user_id);
