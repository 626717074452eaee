-- Frozen: a released migration is never edited. A schema change (a dataset change included)
-- is a new file with the next version.
CREATE TABLE users (username TEXT PRIMARY KEY, password_hash TEXT NOT NULL, role TEXT NOT NULL, programmes TEXT NOT NULL, disabled INTEGER NOT NULL);

CREATE TABLE sessions (token_hash TEXT PRIMARY KEY, username TEXT NOT NULL REFERENCES users (username), csrf TEXT NOT NULL, created BIGINT NOT NULL, seen BIGINT NOT NULL);

CREATE TABLE access_log (id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, username TEXT NOT NULL, role TEXT NOT NULL, programme TEXT NOT NULL, action TEXT NOT NULL, target TEXT NOT NULL, outcome TEXT NOT NULL, detail TEXT NOT NULL);
