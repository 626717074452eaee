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
    national_opt_out INTEGER,
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
    a2_eq5d_vas INTEGER,
    FOREIGN KEY (programme_code) REFERENCES programmes (programme_code)
);

CREATE UNIQUE INDEX episodes_key ON episodes (programme_code, episode_id);

CREATE INDEX episodes_kpi ON episodes (referral_date, programme_code, core_start_date, core_end_date, assessment1_date, assessment2_date, status, initiating_event, treatment);

CREATE TABLE kpi_facts (
    programme_code TEXT PRIMARY KEY REFERENCES programmes (programme_code),
    facts BLOB NOT NULL
);
