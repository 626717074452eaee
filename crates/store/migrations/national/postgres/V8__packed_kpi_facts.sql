-- Frozen: a released migration is never edited. A schema change (a dataset change included)
-- is a new file with the next version.
-- Each programme's KPI facts packed (22 bytes an episode, crest_core::KpiEpisode::encode), so
-- the national KPIs read a few bytes per episode instead of a row, as the local store does.
-- `changes` counts writes to the programme's episodes (kept by the triggers below, once per
-- statement, so a COPY of thousands of rows costs one update); the facts are packed again when
-- it differs from `packed_changes`.
CREATE TABLE national_kpi_facts (programme_code TEXT PRIMARY KEY, facts BYTEA NOT NULL DEFAULT '\x', changes BIGINT NOT NULL DEFAULT 1, packed_changes BIGINT NOT NULL DEFAULT 0);
INSERT INTO national_kpi_facts (programme_code) SELECT DISTINCT programme_code FROM national_episodes;
CREATE FUNCTION national_kpi_facts_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP <> 'INSERT' THEN
    UPDATE national_kpi_facts SET changes = changes + 1
      WHERE programme_code IN (SELECT programme_code FROM changed_old);
  END IF;
  IF TG_OP <> 'DELETE' THEN
    INSERT INTO national_kpi_facts (programme_code) SELECT DISTINCT programme_code FROM changed_new
      ON CONFLICT (programme_code) DO UPDATE SET changes = national_kpi_facts.changes + 1;
  END IF;
  RETURN NULL;
END
$$;
CREATE TRIGGER national_kpi_facts_insert AFTER INSERT ON national_episodes
  REFERENCING NEW TABLE AS changed_new FOR EACH STATEMENT EXECUTE FUNCTION national_kpi_facts_changed();
CREATE TRIGGER national_kpi_facts_update AFTER UPDATE ON national_episodes
  REFERENCING OLD TABLE AS changed_old NEW TABLE AS changed_new FOR EACH STATEMENT EXECUTE FUNCTION national_kpi_facts_changed();
CREATE TRIGGER national_kpi_facts_delete AFTER DELETE ON national_episodes
  REFERENCING OLD TABLE AS changed_old FOR EACH STATEMENT EXECUTE FUNCTION national_kpi_facts_changed();
