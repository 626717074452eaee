-- Frozen: a released migration is never edited. A schema change (a dataset change included)
-- is a new file with the next version.
CREATE TABLE programmes (
            programme_code TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            nation TEXT NOT NULL,
            region TEXT NOT NULL,
            professions TEXT NOT NULL,
            offers TEXT NOT NULL
        );

CREATE TABLE episodes (
    programme_code TEXT NOT NULL,
    episode_id TEXT NOT NULL,
    nhs_number TEXT NOT NULL,
    local_patient_id TEXT,
    family_name TEXT,
    given_name TEXT,
    date_of_birth TEXT NOT NULL,
    postcode TEXT,
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
    national_opt_out BOOLEAN,
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
    a2_eq5d_vas BIGINT,
    PRIMARY KEY (programme_code, episode_id),
    FOREIGN KEY (programme_code) REFERENCES programmes (programme_code)
);

CREATE INDEX episodes_kpi ON episodes (referral_date, programme_code, core_start_date, core_end_date, assessment1_date, assessment2_date, status, initiating_event, treatment);

CREATE TABLE kpi_facts (
    programme_code TEXT PRIMARY KEY REFERENCES programmes (programme_code),
    facts BYTEA NOT NULL
);
