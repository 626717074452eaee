-- Frozen: a released migration is never edited. A schema change (a dataset change included)
-- is a new file with the next version.
ALTER TABLE access_log ADD COLUMN seq BIGINT NOT NULL DEFAULT 0;

ALTER TABLE access_log ADD COLUMN prev_hash TEXT NOT NULL DEFAULT '';

ALTER TABLE access_log ADD COLUMN hash TEXT NOT NULL DEFAULT '';
