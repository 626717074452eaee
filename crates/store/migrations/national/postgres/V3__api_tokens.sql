-- Frozen: a released migration is never edited. A schema change (a dataset change included)
-- is a new file with the next version.
CREATE TABLE api_tokens (token_hash TEXT PRIMARY KEY, programme_code TEXT NOT NULL REFERENCES programmes (programme_code), created_at TEXT NOT NULL);
