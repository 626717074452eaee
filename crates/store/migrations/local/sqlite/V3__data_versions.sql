-- Frozen: a released migration is never edited. A schema change (a dataset change included)
-- is a new file with the next version.
ALTER TABLE kpi_facts ADD COLUMN version BIGINT NOT NULL DEFAULT 1;
