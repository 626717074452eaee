-- Frozen: a released migration is never edited. A schema change (a dataset change included)
-- is a new file with the next version.
-- Each programme's KPI facts packed (22 bytes an episode, crest_core::KpiEpisode::encode), so
-- the national KPIs read a few bytes per episode instead of a row, as the local store does.
-- `changes` counts writes to the programme's episodes (kept by the triggers below, whichever
-- statement makes them); the facts are packed again when it differs from `packed_changes`.
CREATE TABLE national_kpi_facts (programme_code TEXT PRIMARY KEY, facts BLOB NOT NULL DEFAULT x'', changes BIGINT NOT NULL DEFAULT 1, packed_changes BIGINT NOT NULL DEFAULT 0);
INSERT INTO national_kpi_facts (programme_code) SELECT DISTINCT programme_code FROM national_episodes;
CREATE TRIGGER national_kpi_facts_insert AFTER INSERT ON national_episodes BEGIN
  INSERT INTO national_kpi_facts (programme_code) VALUES (NEW.programme_code)
    ON CONFLICT (programme_code) DO UPDATE SET changes = changes + 1;
END;
CREATE TRIGGER national_kpi_facts_update AFTER UPDATE ON national_episodes BEGIN
  UPDATE national_kpi_facts SET changes = changes + 1 WHERE programme_code = OLD.programme_code;
  INSERT INTO national_kpi_facts (programme_code) VALUES (NEW.programme_code)
    ON CONFLICT (programme_code) DO UPDATE SET changes = changes + 1;
END;
CREATE TRIGGER national_kpi_facts_delete AFTER DELETE ON national_episodes BEGIN
  UPDATE national_kpi_facts SET changes = changes + 1 WHERE programme_code = OLD.programme_code;
END;
