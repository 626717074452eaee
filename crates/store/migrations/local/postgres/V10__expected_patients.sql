-- Frozen: a released migration is never edited. A schema change (a dataset change included)
-- is a new file with the next version.

-- Expected patients: how many people were eligible for cardiac rehabilitation per programme
-- (or region), calendar quarter and condition, as a count of hospital episodes gives it. Set
-- against referrals, they give case ascertainment. Aggregate counts: no person in them.
CREATE TABLE expected_patients (
    area_kind TEXT NOT NULL,
    area TEXT NOT NULL,
    quarter TEXT NOT NULL,
    condition TEXT NOT NULL,
    expected BIGINT NOT NULL,
    loaded_at TEXT NOT NULL,
    PRIMARY KEY (area_kind, area, quarter, condition)
);
