-- Frozen: a released migration is never edited. A schema change (a dataset change included)
-- is a new file with the next version.
-- The optional second factor at sign-in: each user's time-based one-time password secret
-- (empty when they have none), and settings an administrator chooses, such as the roles that
-- must use one.
ALTER TABLE users ADD COLUMN totp_secret TEXT NOT NULL DEFAULT '';
CREATE TABLE settings (name TEXT PRIMARY KEY, value TEXT NOT NULL);
