-- Frozen: a released migration is never edited. A schema change (a dataset change included)
-- is a new file with the next version.
-- Approved research projects: approved fields and researchers (`,`-separated), validity, the
-- k of k-anonymity, and the project's own secret for re-keying patient keys (so two projects'
-- extracts can never be linked).
CREATE TABLE research_projects (project_id TEXT PRIMARY KEY, title TEXT NOT NULL, approval TEXT NOT NULL, fields TEXT NOT NULL, researchers TEXT NOT NULL, valid_from TEXT NOT NULL, valid_to TEXT NOT NULL, k BIGINT NOT NULL, secret TEXT NOT NULL, created_at TEXT NOT NULL);
