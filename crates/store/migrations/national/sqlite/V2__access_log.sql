-- Frozen: a released migration is never edited. A schema change (a dataset change included)
-- is a new file with the next version.
CREATE TABLE access_log (id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, username TEXT NOT NULL, role TEXT NOT NULL, programme TEXT NOT NULL, action TEXT NOT NULL, target TEXT NOT NULL, outcome TEXT NOT NULL, detail TEXT NOT NULL, seq BIGINT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL);

CREATE UNIQUE INDEX IF NOT EXISTS access_log_seq ON access_log (seq);
