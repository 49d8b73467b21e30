-- Migration 4: the access-token signing keys every node shares.
--
-- STRICT like every table; times are INTEGER unix seconds, UTC.

CREATE TABLE signing_keys (
    -- The key id in token headers and the JWKS.
    kid                TEXT    NOT NULL PRIMARY KEY,
    algorithm          TEXT    NOT NULL CHECK (algorithm IN ('EdDSA', 'ES256', 'HS256')),
    state              TEXT    NOT NULL CHECK (state IN ('next', 'current', 'retired')),
    created_at         INTEGER NOT NULL,
    -- When it began signing, or (next) the earliest time it may.
    signs_from         INTEGER NOT NULL,
    -- Retired keys only: when every token it signed has expired.
    retires_at         INTEGER,
    -- The raw public key; empty for HS256.
    public_key         BLOB    NOT NULL,
    -- The private key or HS256 secret, sealed by the master key (AES-GCM
    -- bound to the kid): this database alone yields no key.
    sealed_private_key BLOB    NOT NULL,
    CHECK ((state = 'retired') = (retires_at IS NOT NULL))
) STRICT;

-- Exactly one current and at most one next key, whatever a writer does:
-- the rotation's promises hold in the schema too.
CREATE UNIQUE INDEX signing_keys_one_current ON signing_keys (state) WHERE state = 'current';
CREATE UNIQUE INDEX signing_keys_one_next ON signing_keys (state) WHERE state = 'next';
