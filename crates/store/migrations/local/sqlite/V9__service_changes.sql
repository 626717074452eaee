-- Frozen: a released migration is never edited. A schema change (a dataset change included)
-- is a new file with the next version.
-- Service changes: a dated change to a programme's, a region's or the nation's services, drawn
-- on SPC charts (their limits are worked out afresh from its month) and compared before/after.
CREATE TABLE service_changes (id INTEGER PRIMARY KEY AUTOINCREMENT, scope TEXT NOT NULL, code TEXT NOT NULL, changed_on TEXT NOT NULL, text TEXT NOT NULL, recorded_by TEXT NOT NULL, recorded_at TEXT NOT NULL);
CREATE INDEX service_changes_scope ON service_changes (scope, code);
