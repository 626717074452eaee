-- Frozen: a released migration is never edited. A schema change (a dataset change included)
-- is a new file with the next version.
CREATE TABLE programmes (programme_code TEXT PRIMARY KEY, name TEXT NOT NULL, nation TEXT NOT NULL, region TEXT NOT NULL, professions TEXT NOT NULL, offers TEXT NOT NULL);

CREATE TABLE national_submissions (sha256 TEXT PRIMARY KEY, programme_code TEXT NOT NULL REFERENCES programmes (programme_code), period_from TEXT NOT NULL, period_to TEXT NOT NULL, key_id TEXT NOT NULL, dataset_version TEXT NOT NULL, created_at TEXT NOT NULL, received_at TEXT NOT NULL, episodes BIGINT NOT NULL, tombstones BIGINT NOT NULL, current_for TEXT UNIQUE);

CREATE TABLE national_episodes (
    episode_key TEXT PRIMARY KEY,
    patient_key TEXT NOT NULL,
    submission TEXT NOT NULL REFERENCES national_submissions (sha256),
    programme_code TEXT NOT NULL,
    sex TEXT NOT NULL,
    ethnicity TEXT,
    imd_quintile BIGINT,
    age_at_event BIGINT,
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
    a1_weight_kg DOUBLE PRECISION,
    a1_height_cm DOUBLE PRECISION,
    a1_bmi DOUBLE PRECISION,
    a1_waist_cm DOUBLE PRECISION,
    a1_systolic_bp BIGINT,
    a1_diastolic_bp BIGINT,
    a1_total_cholesterol DOUBLE PRECISION,
    a1_smoking TEXT,
    a1_activity_minutes BIGINT,
    a1_iswt_m BIGINT,
    a1_six_mwt_m BIGINT,
    a1_hads_anxiety BIGINT,
    a1_hads_depression BIGINT,
    a1_eq5d_vas BIGINT,
    a2_weight_kg DOUBLE PRECISION,
    a2_height_cm DOUBLE PRECISION,
    a2_bmi DOUBLE PRECISION,
    a2_waist_cm DOUBLE PRECISION,
    a2_systolic_bp BIGINT,
    a2_diastolic_bp BIGINT,
    a2_total_cholesterol DOUBLE PRECISION,
    a2_smoking TEXT,
    a2_activity_minutes BIGINT,
    a2_iswt_m BIGINT,
    a2_six_mwt_m BIGINT,
    a2_hads_anxiety BIGINT,
    a2_hads_depression BIGINT,
    a2_eq5d_vas BIGINT
);

CREATE INDEX national_episodes_programme ON national_episodes (programme_code, referral_date);

CREATE INDEX national_episodes_submission ON national_episodes (submission);

CREATE INDEX national_episodes_patient ON national_episodes (patient_key, event_date);
