-- Frozen: a released migration is never edited. A schema change (a dataset change included)
-- is a new file with the next version.
-- What web servers used to keep on their own disk and in memory, so several can share one
-- database: uploads waiting for confirmation (removed once stored, cancelled or an hour old)
-- and sign-in throttling.
CREATE TABLE pending_uploads (
    token TEXT PRIMARY KEY,
    programme_code TEXT NOT NULL REFERENCES programmes (programme_code),
    name TEXT NOT NULL,
    created BIGINT NOT NULL,
    file BLOB NOT NULL,
    errors BLOB NOT NULL
);

CREATE TABLE sign_in_limits (
    key TEXT PRIMARY KEY,
    failures BIGINT NOT NULL,
    in_flight BIGINT NOT NULL,
    last_ms BIGINT NOT NULL,
    started_ms BIGINT NOT NULL
);
