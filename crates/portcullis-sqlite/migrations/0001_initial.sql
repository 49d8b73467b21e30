-- Migration 1: accounts, login sessions and refresh tokens.
--
-- Every table is STRICT, so a value of the wrong type is refused instead of
-- silently stored. Times are INTEGER unix seconds, UTC.

CREATE TABLE users (
    -- A monotonically increasing key: the stable order for cursor pagination.
    pk            INTEGER PRIMARY KEY AUTOINCREMENT,
    id            TEXT    NOT NULL UNIQUE,
    username      TEXT    NOT NULL COLLATE NOCASE UNIQUE,
    email         TEXT    NOT NULL COLLATE NOCASE UNIQUE,
    full_name     TEXT,
    password_hash TEXT    NOT NULL,
    role          TEXT    NOT NULL CHECK (role IN ('user', 'admin')),
    disabled      INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
) STRICT;

CREATE TABLE sessions (
    id           TEXT    NOT NULL PRIMARY KEY,
    user_id      TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- The granted scopes, space-separated (the ScopeSet display form).
    scope        TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    -- NULL while the session is active.
    revoked_at   INTEGER,
    ip           TEXT,
    user_agent   TEXT
) STRICT;

CREATE INDEX sessions_user_id ON sessions (user_id);

CREATE TABLE refresh_tokens (
    -- Only the hash of a refresh token is ever stored.
    token_hash BLOB    NOT NULL PRIMARY KEY,
    session_id TEXT    NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    -- NULL for the session's current token; set when it is rotated.
    used_at    INTEGER
) STRICT;

CREATE INDEX refresh_tokens_session_id ON refresh_tokens (session_id);
