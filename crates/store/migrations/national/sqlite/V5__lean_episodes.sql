-- Frozen: a released migration is never edited. A schema change (a dataset change included)
-- is a new file with the next version.
CREATE TABLE national_episodes_lean (
    episode_key TEXT PRIMARY KEY,
    patient_key TEXT NOT NULL,
    submission TEXT NOT NULL,
    programme_code TEXT NOT NULL,
    sex TEXT NOT NULL,
    ethnicity TEXT,
    imd_quintile INTEGER,
    age_at_event INTEGER,
    initiating_event TEXT NOT NULL,
    treatment TEXT NOT NULL,
    event_date TEXT NOT NULL,
    discharge_date TEXT,
    referral_date TEXT NOT NULL,
    referral_source TEXT,
    pathway TEXT,
    comorbidities TEXT,
    status TEXT NOT NULL,
    non_start_reason TEXT,
    dropout_reason TEXT,
    delivery_mode TEXT,
    assessment1_date TEXT,
    core_start_date TEXT,
    core_end_date TEXT,
    assessment2_date TEXT,
    a1_weight_kg REAL,
    a1_height_cm REAL,
    a1_bmi REAL,
    a1_waist_cm REAL,
    a1_systolic_bp INTEGER,
    a1_diastolic_bp INTEGER,
    a1_total_cholesterol REAL,
    a1_smoking TEXT,
    a1_activity_minutes INTEGER,
    a1_iswt_m INTEGER,
    a1_six_mwt_m INTEGER,
    a1_hads_anxiety INTEGER,
    a1_hads_depression INTEGER,
    a1_eq5d_vas INTEGER,
    a2_weight_kg REAL,
    a2_height_cm REAL,
    a2_bmi REAL,
    a2_waist_cm REAL,
    a2_systolic_bp INTEGER,
    a2_diastolic_bp INTEGER,
    a2_total_cholesterol REAL,
    a2_smoking TEXT,
    a2_activity_minutes INTEGER,
    a2_iswt_m INTEGER,
    a2_six_mwt_m INTEGER,
    a2_hads_anxiety INTEGER,
    a2_hads_depression INTEGER,
    a2_eq5d_vas INTEGER
);

INSERT INTO national_episodes_lean SELECT * FROM national_episodes;

DROP TABLE national_episodes;

ALTER TABLE national_episodes_lean RENAME TO national_episodes;

CREATE INDEX national_episodes_programme ON national_episodes (programme_code, referral_date);

CREATE INDEX national_episodes_patient ON national_episodes (patient_key, event_date);
