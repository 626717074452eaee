-- Frozen: a released migration is never edited. A schema change (a dataset change included)
-- is a new file with the next version.

-- Each programme's KPI facts packed by month of referral (month 202404 is April 2024), so one
-- year's KPIs read that year's facts rather than every year the programme has sent: over ten
-- years, a tenth. kpi_facts keeps each programme's data version; its facts column is left
-- empty. Right after this migration crest packs every programme's facts again, by month.
CREATE TABLE kpi_month_facts (
    programme_code TEXT NOT NULL REFERENCES programmes (programme_code),
    month INTEGER NOT NULL,
    facts BLOB NOT NULL,
    PRIMARY KEY (programme_code, month)
);

CREATE INDEX kpi_month_facts_month ON kpi_month_facts (month);
