-- Migration 2: the audit log, one MAC chain of security events per
-- deployment, whichever node writes (the same tables and names as the
-- SQLite store's).
--
-- Times are BIGINT unix seconds, as in migration 1; ids UUIDs; MACs BYTEA.

CREATE TABLE audit_log (
    -- The event's position in the chain: from 1, without gaps. Assigned
    -- by the writer holding the chain head's row lock, never by a
    -- sequence (a sequence leaves gaps on rollback).
    seq        BIGINT NOT NULL PRIMARY KEY CONSTRAINT audit_log_seq_positive CHECK (seq > 0),
    at         BIGINT NOT NULL,
    -- AuditEvent::name.
    event      TEXT   NOT NULL,
    -- No foreign keys: the events of an account outlive its deletion.
    actor_id   UUID,
    subject_id UUID,
    ip         TEXT,
    user_agent TEXT,
    request_id TEXT,
    -- The details object, as JSON text exactly as MACed (not JSONB, which
    -- would reorder keys and change the bytes).
    details    TEXT   NOT NULL,
    -- HMAC over the entry and the previous entry's MAC.
    mac        BYTEA  NOT NULL
);

-- The listings: one user's events (as subject or as actor), events by
-- name, and by time; each newest first.
CREATE INDEX audit_log_subject_id ON audit_log (subject_id, seq);
CREATE INDEX audit_log_actor_id ON audit_log (actor_id, seq);
CREATE INDEX audit_log_event ON audit_log (event, seq);
CREATE INDEX audit_log_at ON audit_log (at);

-- The chain's ends, in one row: the sealed head (the last event) and the
-- sealed checkpoint of the last pruning. Every append locks this row
-- (SELECT … FOR UPDATE) as the last lock of its transaction, which is what
-- makes the writers of every node form one chain. The row is created by
-- the first append; an empty chain has none.
CREATE TABLE audit_chain (
    id              INTEGER NOT NULL PRIMARY KEY CONSTRAINT audit_chain_singleton CHECK (id = 1),
    -- NULL only between the first append's insert of the row and its
    -- update, inside that transaction.
    head_seq        BIGINT,
    head_mac        BYTEA,
    head_seal       BYTEA,
    -- NULL until the first pruning.
    checkpoint_seq  BIGINT,
    checkpoint_mac  BYTEA,
    checkpoint_at   BIGINT,
    checkpoint_seal BYTEA,
    CONSTRAINT audit_chain_head_whole CHECK (
        (head_seq IS NULL) = (head_mac IS NULL) AND (head_seq IS NULL) = (head_seal IS NULL)
    ),
    CONSTRAINT audit_chain_checkpoint_whole CHECK (
        (checkpoint_seq IS NULL) = (checkpoint_mac IS NULL)
        AND (checkpoint_seq IS NULL) = (checkpoint_at IS NULL)
        AND (checkpoint_seq IS NULL) = (checkpoint_seal IS NULL)
    )
);
