-- Frozen: a released migration is never edited. A schema change (a dataset change included)
-- is a new file with the next version.
CREATE TABLE outlier_cases (id TEXT PRIMARY KEY, programme_code TEXT NOT NULL REFERENCES programmes (programme_code), kpi TEXT NOT NULL, period_from TEXT NOT NULL, period_to TEXT NOT NULL, level TEXT NOT NULL, direction TEXT NOT NULL, finding TEXT NOT NULL, status TEXT NOT NULL, opened_at TEXT NOT NULL);

CREATE TABLE outlier_history (id INTEGER PRIMARY KEY AUTOINCREMENT, case_id TEXT NOT NULL REFERENCES outlier_cases (id), at TEXT NOT NULL, username TEXT NOT NULL, status TEXT NOT NULL, note TEXT NOT NULL);
