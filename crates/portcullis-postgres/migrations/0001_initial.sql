-- Migration 1: the whole schema, equivalent to the SQLite store's
-- migrations 1-4 (accounts, sessions, refresh tokens, API keys, the
-- canonical email key, the shared signing keys) plus the shared attempt
-- budgets. PostgreSQL had no deployed history before it, so it is one step.
--
-- Times are BIGINT unix seconds, UTC, exactly what the SQLite store keeps,
-- so that a copy between the two round-trips every value. Ids are UUIDs.

CREATE TABLE users (
    -- Only grows and is never reused: the stable creation order for keyset
    -- paging, and the order a copy inserts users in.
    pk            BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id            UUID    NOT NULL CONSTRAINT users_id_unique UNIQUE,
    -- As the domain normalised it (already lower case).
    username      TEXT    NOT NULL,
    -- `username` folded to ASCII lower case in Rust: uniqueness and lookup
    -- exactly as SQLite's COLLATE NOCASE, whatever the server's locale.
    username_key  TEXT    NOT NULL CONSTRAINT users_username_key_unique UNIQUE,
    -- As the user wrote it.
    email         TEXT    NOT NULL,
    -- EmailAddress::canonical: uniqueness is decided on it.
    email_key     TEXT    NOT NULL CONSTRAINT users_email_key_unique UNIQUE,
    full_name     TEXT,
    password_hash TEXT    NOT NULL,
    role          TEXT    NOT NULL CONSTRAINT users_role_check CHECK (role IN ('user', 'admin')),
    disabled      BOOLEAN NOT NULL DEFAULT FALSE,
    created_at    BIGINT  NOT NULL,
    updated_at    BIGINT  NOT NULL
);

-- The last-admin rule locks the enabled admins; this finds them.
CREATE INDEX users_enabled_admins ON users (id) WHERE role = 'admin' AND NOT disabled;

CREATE TABLE sessions (
    id           UUID   NOT NULL PRIMARY KEY,
    -- Creation order among sessions (the tie-break of the session cap, as
    -- SQLite's rowid), and the order a copy inserts them in.
    seq          BIGINT GENERATED ALWAYS AS IDENTITY CONSTRAINT sessions_seq_unique UNIQUE,
    user_id      UUID   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- The granted scopes, space-separated (the ScopeSet display form).
    scope        TEXT   NOT NULL,
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    -- NULL while the session is active.
    revoked_at   BIGINT,
    ip           TEXT,
    user_agent   TEXT
);

CREATE INDEX sessions_user_id ON sessions (user_id);

CREATE TABLE refresh_tokens (
    -- Only the hash of a refresh token is ever stored.
    token_hash BYTEA  NOT NULL PRIMARY KEY,
    session_id UUID   NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    -- NULL for the session's current token; set when it is rotated.
    used_at    BIGINT
);

CREATE INDEX refresh_tokens_session_id ON refresh_tokens (session_id);

CREATE TABLE api_keys (
    id           UUID   NOT NULL PRIMARY KEY,
    user_id      UUID   NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         TEXT   NOT NULL,
    -- The first characters of the key, shown to its owner to tell keys apart.
    prefix       TEXT   NOT NULL,
    -- Only the hash of a key is ever stored; UNIQUE is also the lookup index.
    key_hash     BYTEA  NOT NULL CONSTRAINT api_keys_key_hash_unique UNIQUE,
    -- The granted scopes, space-separated (the ScopeSet display form).
    scope        TEXT   NOT NULL,
    created_at   BIGINT NOT NULL,
    -- Written at most once a minute, so that most authentications only read.
    last_used_at BIGINT,
    -- NULL for a key that never expires.
    expires_at   BIGINT,
    -- NULL while the key is not revoked.
    revoked_at   BIGINT
);

CREATE INDEX api_keys_user_id ON api_keys (user_id);

CREATE TABLE signing_keys (
    -- The key id in token headers and the JWKS.
    kid                TEXT   NOT NULL PRIMARY KEY,
    algorithm          TEXT   NOT NULL CHECK (algorithm IN ('EdDSA', 'ES256', 'HS256')),
    state              TEXT   NOT NULL CHECK (state IN ('next', 'current', 'retired')),
    created_at         BIGINT NOT NULL,
    -- When it began signing, or (next) the earliest time it may.
    signs_from         BIGINT NOT NULL,
    -- Retired keys only: when every token it signed has expired.
    retires_at         BIGINT,
    -- The raw public key; empty for HS256.
    public_key         BYTEA  NOT NULL,
    -- The private key or HS256 secret, sealed by the master key (AES-GCM
    -- bound to the kid): this database alone yields no key.
    sealed_private_key BYTEA  NOT NULL,
    CHECK ((state = 'retired') = (retires_at IS NOT NULL))
);

-- Exactly one current and at most one next key, whatever a writer does:
-- the rotation's promises hold in the schema too.
CREATE UNIQUE INDEX signing_keys_one_current ON signing_keys (state) WHERE state = 'current';
CREATE UNIQUE INDEX signing_keys_one_next ON signing_keys (state) WHERE state = 'next';

-- The attempt budgets every node spends together (the generic cell rate
-- algorithm). UNLOGGED: not written to the WAL, so spending an attempt
-- costs no fsync, and the table is emptied after a crash (every budget
-- full again) and not replicated to standbys, which is acceptable for a
-- rate limit and not for anything else.
CREATE UNLOGGED TABLE attempt_budgets (
    -- The caller's opaque digest of what is limited.
    key     BYTEA   NOT NULL PRIMARY KEY,
    -- The theoretical arrival time, unix microseconds: the budget is full
    -- again once it is at or before now.
    tat     BIGINT  NOT NULL,
    -- Whether the last attempt was refused.
    refused BOOLEAN NOT NULL DEFAULT FALSE
);
