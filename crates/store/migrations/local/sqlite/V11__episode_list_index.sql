-- Frozen: a released migration is never edited. A schema change (a dataset change included)
-- is a new file with the next version.

-- The KPIs read each programme's packed facts (kpi_facts), no longer the episodes table, so the
-- wide covering index for them is only work: a sixth of a ten-million-episode import's time.
-- A programme's episode list, sorted by referral date (the patients page's default), is what
-- reads episodes by referral date now, always within one programme.
DROP INDEX episodes_kpi;
CREATE INDEX episodes_programme_referral ON episodes (programme_code, referral_date);
