-- Frozen: a released migration is never edited. A schema change (a dataset change included)
-- is a new file with the next version.
DROP INDEX national_episodes_submission;

ALTER TABLE national_episodes DROP CONSTRAINT national_episodes_submission_fkey;
