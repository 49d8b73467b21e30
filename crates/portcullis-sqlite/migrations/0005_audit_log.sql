-- Migration 5: the audit log and its MAC chain.
--
-- STRICT like every table; times are INTEGER unix seconds, UTC; user ids are
-- hyphenated lower-case TEXT, as in `users.id`. No foreign keys: an event
-- outlives the account it names, and the log's retention decides when it
-- goes.

CREATE TABLE audit_log (
    -- The position in the chain, from 1, without gaps; the rowid, so that
    -- reading the chain in order is a scan of the table itself.
    seq        INTEGER NOT NULL PRIMARY KEY,
    at         INTEGER NOT NULL,
    -- The event name (`AuditEvent::name`).
    event      TEXT    NOT NULL,
    -- Who acted and whom it is about, when anyone.
    actor_id   TEXT,
    subject_id TEXT,
    ip         TEXT,
    user_agent TEXT,
    request_id TEXT,
    -- The details object, as compact JSON text.
    details    TEXT    NOT NULL,
    -- HMAC-SHA256 over this row and the previous row's MAC.
    mac        BLOB    NOT NULL
) STRICT;

-- The listings: a user's events (as subject or actor), events by name, and
-- a time range, each newest first.
CREATE INDEX audit_log_subject_id ON audit_log (subject_id, seq);
CREATE INDEX audit_log_actor_id ON audit_log (actor_id, seq);
CREATE INDEX audit_log_event ON audit_log (event, seq);
CREATE INDEX audit_log_at ON audit_log (at);

-- The chain's ends: one row, created by the first append (an empty chain
-- has none). The head is the last event, sealed, so that removing events
-- from the end is detected; the checkpoint is the last event the latest
-- pruning deleted, sealed, where verification starts.
CREATE TABLE audit_chain (
    id              INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    head_seq        INTEGER,
    head_mac        BLOB,
    head_seal       BLOB,
    checkpoint_seq  INTEGER,
    checkpoint_mac  BLOB,
    checkpoint_at   INTEGER,
    checkpoint_seal BLOB,
    CHECK ((head_seq IS NULL) = (head_mac IS NULL) AND (head_seq IS NULL) = (head_seal IS NULL)),
    CHECK ((checkpoint_seq IS NULL) = (checkpoint_mac IS NULL)
       AND (checkpoint_seq IS NULL) = (checkpoint_at IS NULL)
       AND (checkpoint_seq IS NULL) = (checkpoint_seal IS NULL))
) STRICT;
