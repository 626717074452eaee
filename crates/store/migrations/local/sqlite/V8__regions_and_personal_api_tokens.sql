-- Frozen: a released migration is never edited. A schema change (a dataset change included)
-- is a new file with the next version.
-- Commissioners are bound to regions (`;`-separated region names). Personal API tokens: each
-- user's bearer tokens, stored as SHA-256 only, revocable and expiring.
ALTER TABLE users ADD COLUMN regions TEXT NOT NULL DEFAULT '';
CREATE TABLE user_tokens (token_hash TEXT PRIMARY KEY, id TEXT NOT NULL UNIQUE, username TEXT NOT NULL, label TEXT NOT NULL, created_at TEXT NOT NULL, expires_at TEXT NOT NULL, revoked_at TEXT);
CREATE INDEX user_tokens_user ON user_tokens (username);
