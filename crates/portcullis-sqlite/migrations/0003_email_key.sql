-- Migration 3: the canonical email key.
--
-- `email` keeps the address as the user wrote it; `email_key` is the
-- domain's canonical form of it (`EmailAddress::canonical`: NFKC and
-- lower-case local part, Unicode form of the IDNA domain), and uniqueness is
-- decided on it. `COLLATE NOCASE` on `email` folds ASCII only, so it never
-- caught full-width letters, the Kelvin sign, decomposed accents or a
-- punycode spelling of the same domain.
--
-- The column cannot be declared NOT NULL by ALTER TABLE; the Rust hook that
-- runs after this script (src/migrations.rs) fills it for every existing
-- row, and every insert and email change writes it. NULLs would not collide
-- in the unique index, so none are left behind.

ALTER TABLE users ADD COLUMN email_key TEXT;

CREATE UNIQUE INDEX users_email_key ON users (email_key);
