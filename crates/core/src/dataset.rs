//! The episode dataset, defined once.
//!
//! Every column of the import file is one [`Field`] in [`FIELDS`]; validation, the CSV/XLSX
//! template, the field reference (`crest dataset`), the store's columns and national
//! minimisation are all derived from this table. Add a column here and it appears everywhere.

/// Version of the dataset definition carried in files and submissions.
pub const DATASET_VERSION: &str = "1";

/// Where a field may travel.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Tier {
    /// Identifiable; never leaves the programme's store.
    Local,
    /// Sent to the national audit (after pseudonymisation/minimisation).
    National,
    /// Derived by the system, not imported; sent nationally.
    Derived,
}

impl Tier {
    /// The letter used in the dataset documentation.
    pub fn letter(self) -> &'static str {
        match self {
            Tier::Local => "L",
            Tier::National => "N",
            Tier::Derived => "D",
        }
    }
}

/// The group of columns a field belongs to, as the dataset documentation and forms show them.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Section {
    /// Identity and demographics.
    Identity,
    /// Initiating event and referral.
    Referral,
    /// Rehabilitation.
    Rehabilitation,
    /// Measures at assessment 1.
    Assessment1,
    /// Measures at assessment 2.
    Assessment2,
}

impl Section {
    /// Heading for documentation and forms.
    pub fn title(self) -> &'static str {
        match self {
            Section::Identity => "Identity and demographics",
            Section::Referral => "Initiating event and referral",
            Section::Rehabilitation => "Rehabilitation",
            Section::Assessment1 => "Measures at assessment 1",
            Section::Assessment2 => "Measures at assessment 2",
        }
    }
}

/// The steps of entering an episode, in the order of the patient's pathway; each field of the
/// dataset belongs to one (a form shows one step at a time, then a summary to check).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Who the patient is.
    Patient,
    /// What happened and how it was treated.
    EventAndTreatment,
    /// The referral to cardiac rehabilitation.
    Referral,
    /// The assessment before core rehabilitation and its measures.
    Assessment1,
    /// The start and delivery of core rehabilitation.
    CoreRehabilitation,
    /// The assessment at the end and its measures.
    Assessment2,
    /// Where the episode ended up.
    Outcome,
}

impl Step {
    /// Every step, in order.
    pub const ALL: [Step; 7] = [
        Step::Patient,
        Step::EventAndTreatment,
        Step::Referral,
        Step::Assessment1,
        Step::CoreRehabilitation,
        Step::Assessment2,
        Step::Outcome,
    ];

    /// Its heading.
    pub fn title(self) -> &'static str {
        match self {
            Step::Patient => "Patient",
            Step::EventAndTreatment => "Event and treatment",
            Step::Referral => "Referral",
            Step::CoreRehabilitation => "Core rehabilitation",
            Step::Assessment1 => "Assessment 1",
            Step::Assessment2 => "Assessment 2",
            Step::Outcome => "Outcome",
        }
    }

    /// Its place, from 1.
    pub fn number(self) -> usize {
        Step::ALL.iter().position(|s| *s == self).unwrap_or(0) + 1
    }
}

/// The type of a field and its parsing rule.
#[derive(Copy, Clone, Debug, PartialEq)]
pub enum Kind {
    /// Free text up to `max` characters.
    Text {
        /// Maximum length in characters.
        max: usize,
    },
    /// Letters and digits identifying a registered programme.
    ProgrammeCode,
    /// Ten-digit NHS number with a Modulus 11 check digit.
    NhsNumber,
    /// UK postcode.
    Postcode,
    /// A calendar date (DD/MM/YYYY or YYYY-MM-DD).
    Date,
    /// One code from a list.
    Code(&'static [Code]),
    /// `;`-separated codes from a list.
    CodeList(&'static [Code]),
    /// Whole number with hard bounds, optional soft bounds and step.
    Int {
        /// Values outside these reject the row.
        hard: (i64, i64),
        /// Values outside these only warn.
        soft: Option<(i64, i64)>,
        /// The value must be a multiple of this.
        step: i64,
    },
    /// Decimal number with hard and optional soft bounds.
    Decimal {
        /// Values outside these reject the row.
        hard: (f64, f64),
        /// Values outside these only warn.
        soft: Option<(f64, f64)>,
    },
    /// Yes/no.
    Bool,
}

impl Kind {
    /// A short description of the accepted values, for the template notes and documentation.
    pub fn describe(&self) -> String {
        fn bounds<T: std::fmt::Display>(h: (T, T), s: Option<(T, T)>) -> String {
            match s {
                Some(s) => format!("{}–{} (warning outside {}–{})", h.0, h.1, s.0, s.1),
                None => format!("{}–{}", h.0, h.1),
            }
        }
        match self {
            Kind::Text { max } => format!("text, up to {max} characters"),
            Kind::ProgrammeCode => "code of a registered programme (letters and digits)".into(),
            Kind::NhsNumber => "10 digits; spaces or dashes allowed".into(),
            Kind::Postcode => "UK postcode, e.g. SE1 7EH".into(),
            Kind::Date => "date, DD/MM/YYYY or YYYY-MM-DD".into(),
            Kind::Code(codes) => format!("one of: {}", code_names(codes)),
            Kind::CodeList(codes) => format!("`;`-separated, from: {}", code_names(codes)),
            Kind::Int { hard, soft, step } if *step > 1 => {
                format!("whole number {}, multiple of {step}", bounds(*hard, *soft))
            }
            Kind::Int { hard, soft, .. } => format!("whole number {}", bounds(*hard, *soft)),
            Kind::Decimal { hard, soft } => format!("number {}", bounds(*hard, *soft)),
            Kind::Bool => "yes/no (true/false, 1/0); empty = no".into(),
        }
    }
}

fn code_names(codes: &[Code]) -> String {
    codes.iter().map(|c| c.code).collect::<Vec<_>>().join(", ")
}

/// One column of the dataset.
#[derive(Copy, Clone, Debug)]
pub struct Field {
    /// Which column this is.
    pub col: Col,
    /// Column name in files, the store and the API.
    pub name: &'static str,
    /// What people read: a question or plain noun phrase, e.g. "Date of referral".
    pub label: &'static str,
    /// Type and parsing rule.
    pub kind: Kind,
    /// Must be present in the header and filled in every row.
    pub required: bool,
    /// Where the value may travel.
    pub tier: Tier,
    /// Group of columns.
    pub section: Section,
    /// A hint for people: the unit, or the plain-English rule.
    pub help: &'static str,
}

impl Field {
    /// Whether the field is read from import files (derived fields are not).
    pub fn imported(&self) -> bool {
        self.tier != Tier::Derived
    }

    /// The codes of a coded field (empty for others).
    pub fn codes(&self) -> &'static [Code] {
        match self.kind {
            Kind::Code(codes) | Kind::CodeList(codes) => codes,
            _ => &[],
        }
    }

    /// The words for a code of this field, if it is one of its codes (any case).
    pub fn code_label(&self, code: &str) -> Option<&'static str> {
        self.codes()
            .iter()
            .find(|c| c.code.eq_ignore_ascii_case(code.trim()))
            .map(|c| c.label)
    }

    /// A stored value as people read it: codes as their labels (several joined with commas),
    /// yes/no, dates as "3 March 2025", numbers as written, and "Not known" when empty.
    pub fn display(&self, value: &crate::value::Value) -> String {
        use crate::value::Value;
        match value {
            Value::Null => "Not known".into(),
            Value::Date(d) => d.long(),
            Value::Bool(b) => if *b { "Yes" } else { "No" }.into(),
            Value::Text(t) => match self.kind {
                Kind::Code(_) => self.code_label(t).unwrap_or(t).to_string(),
                Kind::CodeList(_) => t
                    .split(';')
                    .map(|part| self.code_label(part).unwrap_or(part))
                    .collect::<Vec<_>>()
                    .join(", "),
                _ => t.clone(),
            },
            other => other.to_text(),
        }
    }

    /// The step of episode entry this field is asked in.
    pub fn step(&self) -> Step {
        match (self.section, self.col) {
            (Section::Identity, _) => Step::Patient,
            (_, Col::ReferralDate | Col::ReferralSource | Col::Pathway) => Step::Referral,
            (Section::Referral, _) => Step::EventAndTreatment,
            (_, Col::CoreStartDate | Col::DeliveryMode) => Step::CoreRehabilitation,
            (_, Col::Assessment1Date) | (Section::Assessment1, _) => Step::Assessment1,
            (_, Col::Assessment2Date) | (Section::Assessment2, _) => Step::Assessment2,
            _ => Step::Outcome,
        }
    }

    /// Whether this is a measure taken at assessment `n` (1 or 2).
    pub fn assessment(&self) -> Option<u8> {
        match self.section {
            Section::Assessment1 => Some(1),
            Section::Assessment2 => Some(2),
            _ => None,
        }
    }
}

/// One code of a coded field, with the words people see for it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Code {
    /// The code in files, the store and the API, e.g. `mi_nstemi`.
    pub code: &'static str,
    /// What people read, e.g. "Heart attack (NSTEMI)".
    pub label: &'static str,
}

const fn c(code: &'static str, label: &'static str) -> Code {
    Code { code, label }
}

/// Sex codes.
pub const SEX: &[Code] = &[
    c("male", "Male"),
    c("female", "Female"),
    c("indeterminate", "Indeterminate"),
    c("not_known", "Not known"),
];
/// NHS ethnic categories (the 2001 census letters), with their NHS Data Dictionary names.
pub const ETHNICITY: &[Code] = &[
    c("A", "White: British"),
    c("B", "White: Irish"),
    c("C", "White: any other White background"),
    c("D", "Mixed: White and Black Caribbean"),
    c("E", "Mixed: White and Black African"),
    c("F", "Mixed: White and Asian"),
    c("G", "Mixed: any other mixed background"),
    c("H", "Asian or Asian British: Indian"),
    c("J", "Asian or Asian British: Pakistani"),
    c("K", "Asian or Asian British: Bangladeshi"),
    c("L", "Asian or Asian British: any other Asian background"),
    c("M", "Black or Black British: Caribbean"),
    c("N", "Black or Black British: African"),
    c("P", "Black or Black British: any other Black background"),
    c("R", "Other ethnic groups: Chinese"),
    c("S", "Other ethnic groups: any other ethnic group"),
    c("Z", "Not stated"),
];
/// Initiating events.
pub const INITIATING_EVENT: &[Code] = &[
    c("mi_stemi", "Heart attack (STEMI)"),
    c("mi_nstemi", "Heart attack (NSTEMI)"),
    c("mi_unspecified", "Heart attack (type not known)"),
    c("unstable_angina", "Unstable angina"),
    c("stable_angina", "Stable angina"),
    c("heart_failure", "Heart failure"),
    c("cardiac_arrest", "Cardiac arrest"),
    c("arrhythmia", "Arrhythmia"),
    c("valve_disease", "Heart valve disease"),
    c("congenital", "Congenital heart disease"),
    c("other", "Other"),
];
/// Treatments.
pub const TREATMENT: &[Code] = &[
    c("medical", "Medicines only"),
    c("pci", "Stent or angioplasty (PCI)"),
    c("cabg", "Bypass surgery (CABG)"),
    c("valve_surgery", "Valve surgery or TAVI"),
    c("icd_crt", "ICD or CRT device"),
    c("pacemaker", "Pacemaker"),
    c("transplant_lvad", "Heart transplant or LVAD"),
    c("other_surgery", "Other heart surgery"),
];
/// Referral sources.
pub const REFERRAL_SOURCE: &[Code] = &[
    c("acute_trust", "Hospital (acute trust)"),
    c("gp", "GP"),
    c("community", "Community team"),
    c("self", "Self-referral"),
    c("private", "Private provider"),
    c("other", "Other"),
];
/// Local service lines.
pub const PATHWAY: &[Code] = &[
    c("standard", "Standard"),
    c("heart_failure", "Heart failure"),
    c("icd", "ICD"),
    c("angina", "Angina"),
    c("community_outreach", "Community outreach"),
    c("other", "Other"),
];
/// Comorbidity codes.
pub const COMORBIDITY: &[Code] = &[
    c("diabetes", "Diabetes"),
    c("hypertension", "High blood pressure"),
    c("hypercholesterolaemia", "High cholesterol"),
    c("copd", "COPD"),
    c("asthma", "Asthma"),
    c("arthritis", "Arthritis"),
    c("chronic_back_pain", "Chronic back pain"),
    c("stroke", "Stroke"),
    c("anxiety", "Anxiety"),
    c("depression", "Depression"),
    c("cancer", "Cancer"),
    c("claudication", "Claudication"),
    c("erectile_dysfunction", "Erectile dysfunction"),
    c("family_history", "Family history of heart disease"),
    c("other", "Other"),
];
/// Episode statuses.
pub const STATUS: &[Code] = &[
    c("referred", "Referred, waiting to start"),
    c("declined", "Declined"),
    c("did_not_start", "Did not start"),
    c("in_progress", "In core rehabilitation"),
    c("completed", "Completed"),
    c("dropped_out", "Dropped out"),
    c("died", "Died"),
    c("transferred", "Transferred to another programme"),
];
/// Reasons for not starting.
pub const NON_START_REASON: &[Code] = &[
    c("declined", "Did not want to take part"),
    c("not_contactable", "Could not be contacted"),
    c("clinical_unsuitable", "Not clinically suitable"),
    c("work_commitments", "Work commitments"),
    c("transport", "Transport"),
    c("other", "Other"),
];
/// Reasons for dropping out.
pub const DROPOUT_REASON: &[Code] = &[
    c("lost_interest", "Lost interest"),
    c("illness", "Illness"),
    c("work_commitments", "Work commitments"),
    c("transport", "Transport"),
    c("moved", "Moved away"),
    c("other", "Other"),
];
/// Delivery modes of core CR.
pub const DELIVERY_MODE: &[Code] = &[
    c("group_supervised", "Supervised group sessions"),
    c("home_based", "Home-based"),
    c("digital", "Digital (online or app)"),
    c("hybrid", "Hybrid (group and home or digital)"),
    c("one_to_one", "One-to-one"),
];
/// Smoking status.
pub const SMOKING: &[Code] = &[
    c("never", "Never smoked"),
    c("ex", "Ex-smoker"),
    c("recent_quitter", "Stopped in the last 6 months"),
    c("current", "Smokes now"),
];

const WEIGHT: Kind = Kind::Decimal {
    hard: (25.0, 350.0),
    soft: Some((40.0, 200.0)),
};
const HEIGHT: Kind = Kind::Decimal {
    hard: (100.0, 230.0),
    soft: Some((140.0, 210.0)),
};
const BMI: Kind = Kind::Decimal {
    hard: (10.0, 90.0),
    soft: Some((15.0, 60.0)),
};
const WAIST: Kind = Kind::Decimal {
    hard: (40.0, 250.0),
    soft: Some((60.0, 160.0)),
};
const SYSTOLIC: Kind = Kind::Int {
    hard: (60, 280),
    soft: Some((80, 220)),
    step: 1,
};
const DIASTOLIC: Kind = Kind::Int {
    hard: (30, 160),
    soft: Some((40, 120)),
    step: 1,
};
const CHOLESTEROL: Kind = Kind::Decimal {
    hard: (1.0, 20.0),
    soft: Some((2.0, 10.0)),
};
const ACTIVITY: Kind = Kind::Int {
    hard: (0, 5000),
    soft: Some((0, 1500)),
    step: 1,
};
const ISWT: Kind = Kind::Int {
    hard: (0, 1020),
    soft: None,
    step: 10,
};
const SIX_MWT: Kind = Kind::Int {
    hard: (0, 1000),
    soft: Some((50, 800)),
    step: 1,
};
const HADS: Kind = Kind::Int {
    hard: (0, 21),
    soft: None,
    step: 1,
};
const EQ5D: Kind = Kind::Int {
    hard: (0, 100),
    soft: None,
    step: 1,
};

macro_rules! dataset {
    ($( $col:ident = $name:literal, $label:literal, $kind:expr, $req:literal, $tier:ident, $section:ident, $help:literal; )*) => {
        /// A column of the dataset; `col as usize` indexes [`FIELDS`] and [`crate::Record`].
        #[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
        #[allow(missing_docs)]
        pub enum Col { $($col),* }

        /// The number of columns in the dataset.
        pub const FIELD_COUNT: usize = [$(stringify!($col)),*].len();

        /// Every column of the dataset, in file order.
        pub static FIELDS: &[Field] = &[ $( Field {
            col: Col::$col, name: $name, label: $label, kind: $kind, required: $req,
            tier: Tier::$tier, section: Section::$section, help: $help,
        } ),* ];
    };
}

dataset! {
    ProgrammeCode = "programme_code", "Programme", Kind::ProgrammeCode, true, National, Identity,
        "The programme's code as registered in crest, for example P001";
    EpisodeId = "episode_id", "Episode ID", Kind::Text { max: 40 }, true, Local, Identity,
        "Your ID for this episode, unique in the programme (the new-episode form proposes the next one). In an upload, a row with an ID already held updates that episode";
    NhsNumber = "nhs_number", "NHS number", Kind::NhsNumber, true, Local, Identity,
        "10 digits, for example 943 476 5919";
    LocalPatientId = "local_patient_id", "Hospital number", Kind::Text { max: 20 }, false, Local, Identity,
        "The patient's number at your hospital, if you use one";
    FamilyName = "family_name", "Last name", Kind::Text { max: 100 }, false, Local, Identity, "Family name or surname";
    GivenName = "given_name", "First name", Kind::Text { max: 100 }, false, Local, Identity, "Given name";
    DateOfBirth = "date_of_birth", "Date of birth", Kind::Date, true, Local, Identity,
        "The patient must be 16 to 110 at the time of the event";
    Postcode = "postcode", "Postcode", Kind::Postcode, false, Local, Identity, "Where the patient lives, for example SE1 7EH";
    Sex = "sex", "Sex", Kind::Code(SEX), true, National, Identity, "As recorded in the patient's notes";
    Ethnicity = "ethnicity", "Ethnic group", Kind::Code(ETHNICITY), false, National, Identity,
        "As the patient describes it. Leave empty if not known";
    ImdQuintile = "imd_quintile", "Deprivation quintile", Kind::Int { hard: (1, 5), soft: None, step: 1 }, false, National, Identity,
        "1 (most deprived) to 5 (least deprived), from the postcode. Leave empty if not known";
    AgeAtEvent = "age_at_event", "Age at the event", Kind::Int { hard: (16, 110), soft: None, step: 1 }, false, Derived, Identity,
        "Worked out by crest from the date of birth; sent to the national audit instead of it";
    InitiatingEvent = "initiating_event", "What led to the referral", Kind::Code(INITIATING_EVENT), true, National, Referral,
        "The heart event or condition the patient was referred for";
    Treatment = "treatment", "Treatment for the event", Kind::Code(TREATMENT), true, National, Referral, "The main treatment the patient had";
    EventDate = "event_date", "Date of the event", Kind::Date, true, National, Referral, "When the heart event happened";
    DischargeDate = "discharge_date", "Date of discharge from hospital", Kind::Date, false, National, Referral, "On or after the date of the event";
    ReferralDate = "referral_date", "Date of referral to cardiac rehabilitation", Kind::Date, true, National, Referral,
        "On or after the date of the event. It decides which year the episode is reported in";
    ReferralSource = "referral_source", "Who referred the patient", Kind::Code(REFERRAL_SOURCE), false, National, Referral, "Where the referral came from";
    Pathway = "pathway", "Service line", Kind::Code(PATHWAY), false, National, Referral,
        "Your programme's service line. Leave empty for standard";
    Comorbidities = "comorbidities", "Other conditions", Kind::CodeList(COMORBIDITY), false, National, Referral,
        "Tick all that apply";
    Status = "status", "Where the patient is now", Kind::Code(STATUS), true, National, Rehabilitation,
        "Referred means still waiting to start";
    NonStartReason = "non_start_reason", "Why the patient did not start", Kind::Code(NON_START_REASON), false, National, Rehabilitation,
        "Needed when the patient declined or did not start";
    DropoutReason = "dropout_reason", "Why the patient dropped out", Kind::Code(DROPOUT_REASON), false, National, Rehabilitation,
        "Needed when the patient dropped out";
    DeliveryMode = "delivery_mode", "How core rehabilitation is delivered", Kind::Code(DELIVERY_MODE), false, National, Rehabilitation,
        "Needed once core rehabilitation has started";
    Assessment1Date = "assessment1_date", "Date of assessment 1", Kind::Date, false, National, Rehabilitation,
        "The assessment before core rehabilitation: no more than 30 days before referral, and on or before the start";
    CoreStartDate = "core_start_date", "Date core rehabilitation started", Kind::Date, false, National, Rehabilitation,
        "On or after referral. Needed once the patient is in core rehabilitation, has completed or has dropped out";
    CoreEndDate = "core_end_date", "Date core rehabilitation ended", Kind::Date, false, National, Rehabilitation,
        "On or after the start. Needed when the patient has completed or dropped out";
    Assessment2Date = "assessment2_date", "Date of assessment 2", Kind::Date, false, National, Rehabilitation,
        "The assessment at the end of core rehabilitation: after the start and after assessment 1";
    NationalOptOut = "national_opt_out", "Has the patient asked to be left out of the national audit?", Kind::Bool, false, Local, Rehabilitation,
        "If yes, this episode never leaves your programme";
    A1WeightKg = "a1_weight_kg", "Weight (kg)", WEIGHT, false, National, Assessment1, "In kilograms, for example 82.5";
    A1HeightCm = "a1_height_cm", "Height (cm)", HEIGHT, false, National, Assessment1, "In centimetres, for example 172";
    A1Bmi = "a1_bmi", "Body mass index (BMI)", BMI, false, National, Assessment1,
        "Leave empty and crest works it out from weight and height";
    A1WaistCm = "a1_waist_cm", "Waist (cm)", WAIST, false, National, Assessment1, "Waist circumference in centimetres";
    A1SystolicBp = "a1_systolic_bp", "Systolic blood pressure (mmHg)", SYSTOLIC, false, National, Assessment1, "The upper number";
    A1DiastolicBp = "a1_diastolic_bp", "Diastolic blood pressure (mmHg)", DIASTOLIC, false, National, Assessment1,
        "The lower number; below the systolic";
    A1TotalCholesterol = "a1_total_cholesterol", "Total cholesterol (mmol/L)", CHOLESTEROL, false, National, Assessment1,
        "For example 4.8";
    A1Smoking = "a1_smoking", "Smoking", Kind::Code(SMOKING), false, National, Assessment1, "What the patient says now";
    A1ActivityMinutes = "a1_activity_minutes", "Physical activity (minutes a week)", ACTIVITY, false, National, Assessment1,
        "Minutes a week of moderate physical activity";
    A1IswtM = "a1_iswt_m", "Shuttle walk test (metres)", ISWT, false, National, Assessment1, "Incremental shuttle walk test, in steps of 10 metres";
    A1SixMwtM = "a1_six_mwt_m", "Six-minute walk test (metres)", SIX_MWT, false, National, Assessment1, "Distance walked in six minutes";
    A1HadsAnxiety = "a1_hads_anxiety", "HADS anxiety score", HADS, false, National, Assessment1, "0 to 21; 8 or more suggests anxiety";
    A1HadsDepression = "a1_hads_depression", "HADS depression score", HADS, false, National, Assessment1, "0 to 21; 8 or more suggests depression";
    A1Eq5dVas = "a1_eq5d_vas", "EQ-5D health today (0 to 100)", EQ5D, false, National, Assessment1, "The patient's own rating of their health today";
    A2WeightKg = "a2_weight_kg", "Weight (kg)", WEIGHT, false, National, Assessment2, "In kilograms, for example 82.5";
    A2HeightCm = "a2_height_cm", "Height (cm)", HEIGHT, false, National, Assessment2, "In centimetres, for example 172";
    A2Bmi = "a2_bmi", "Body mass index (BMI)", BMI, false, National, Assessment2,
        "Leave empty and crest works it out from weight and height";
    A2WaistCm = "a2_waist_cm", "Waist (cm)", WAIST, false, National, Assessment2, "Waist circumference in centimetres";
    A2SystolicBp = "a2_systolic_bp", "Systolic blood pressure (mmHg)", SYSTOLIC, false, National, Assessment2, "The upper number";
    A2DiastolicBp = "a2_diastolic_bp", "Diastolic blood pressure (mmHg)", DIASTOLIC, false, National, Assessment2,
        "The lower number; below the systolic";
    A2TotalCholesterol = "a2_total_cholesterol", "Total cholesterol (mmol/L)", CHOLESTEROL, false, National, Assessment2,
        "For example 4.8";
    A2Smoking = "a2_smoking", "Smoking", Kind::Code(SMOKING), false, National, Assessment2, "What the patient says now";
    A2ActivityMinutes = "a2_activity_minutes", "Physical activity (minutes a week)", ACTIVITY, false, National, Assessment2,
        "Minutes a week of moderate physical activity";
    A2IswtM = "a2_iswt_m", "Shuttle walk test (metres)", ISWT, false, National, Assessment2, "Incremental shuttle walk test, in steps of 10 metres";
    A2SixMwtM = "a2_six_mwt_m", "Six-minute walk test (metres)", SIX_MWT, false, National, Assessment2, "Distance walked in six minutes";
    A2HadsAnxiety = "a2_hads_anxiety", "HADS anxiety score", HADS, false, National, Assessment2, "0 to 21; 8 or more suggests anxiety";
    A2HadsDepression = "a2_hads_depression", "HADS depression score", HADS, false, National, Assessment2, "0 to 21; 8 or more suggests depression";
    A2Eq5dVas = "a2_eq5d_vas", "EQ-5D health today (0 to 100)", EQ5D, false, National, Assessment2, "The patient's own rating of their health today";
}

impl Col {
    /// This column's definition.
    pub fn field(self) -> &'static Field {
        &FIELDS[self as usize]
    }

    /// The column name.
    pub fn name(self) -> &'static str {
        self.field().name
    }
}

/// Looks a column up by name (case-insensitive, surrounding spaces ignored).
pub fn field_by_name(name: &str) -> Option<&'static Field> {
    // An index by name: a FHIR import looks up every extension of every EpisodeOfCare, and a
    // scan of the whole dictionary for each was a measurable share of reading them.
    static BY_NAME: std::sync::OnceLock<std::collections::HashMap<&'static str, usize>> =
        std::sync::OnceLock::new();
    let index = BY_NAME.get_or_init(|| {
        FIELDS
            .iter()
            .enumerate()
            .map(|(i, f)| (f.name, i))
            .collect()
    });
    let name = name.trim();
    match index.get(name) {
        Some(&i) => Some(&FIELDS[i]),
        None => FIELDS.iter().find(|f| f.name.eq_ignore_ascii_case(name)),
    }
}

/// The dataset reference as Markdown (what `crest dataset` prints and `docs/dataset.md` holds).
pub fn reference_markdown() -> String {
    let mut out = String::from(
        "# crest episode dataset\n\n<!-- generated by `crest dataset`; do not edit by hand -->\n\n\
         Dataset version ",
    );
    out.push_str(DATASET_VERSION);
    out.push_str(
        ". One row per episode; columns in any order; header row required.\n\
         Tiers: **L** local only (identifiable), **N** sent to the national audit, **D** derived by crest.\n\
         Dates are DD/MM/YYYY or YYYY-MM-DD and never in the future. Codes are case-insensitive.\n\
         A measure given without its assessment date is an error.\n",
    );
    let mut section = None;
    for f in FIELDS {
        if section != Some(f.section) {
            section = Some(f.section);
            out.push_str(&format!(
                "\n## {}\n\n| column | label | required | tier | values | notes |\n|---|---|---|---|---|---|\n",
                f.section.title()
            ));
        }
        out.push_str(&format!(
            "| `{}` | {} | {} | {} | {} | {} |\n",
            f.name,
            f.label,
            if f.required { "yes" } else { "no" },
            f.tier.letter(),
            match f.kind {
                Kind::Code(codes) | Kind::CodeList(codes) => {
                    let list = codes
                        .iter()
                        .map(|c| format!("`{}` {}", c.code, c.label))
                        .collect::<Vec<_>>()
                        .join("<br>");
                    if matches!(f.kind, Kind::CodeList(_)) {
                        format!("several, separated by `;`:<br>{list}")
                    } else {
                        list
                    }
                }
                _ => f.kind.describe(),
            },
            f.help
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_index_the_table() {
        for (i, f) in FIELDS.iter().enumerate() {
            assert_eq!(f.col as usize, i, "{}", f.name);
            assert_eq!(
                field_by_name(&f.name.to_uppercase()).map(|g| g.name),
                Some(f.name)
            );
        }
        assert_eq!(Col::A2Eq5dVas.name(), "a2_eq5d_vas");
    }

    #[test]
    fn every_step_asks_something_and_follows_the_pathway() {
        for step in Step::ALL {
            assert!(
                FIELDS.iter().any(|f| f.imported() && f.step() == step),
                "{step:?}"
            );
        }
        assert_eq!(Col::ReferralDate.field().step(), Step::Referral);
        assert_eq!(Col::Comorbidities.field().step(), Step::EventAndTreatment);
        assert_eq!(Col::A1HadsAnxiety.field().step(), Step::Assessment1);
        assert_eq!(Col::Status.field().step(), Step::Outcome);
        assert_eq!(Col::NationalOptOut.field().step(), Step::Outcome);
        assert_eq!(Step::Outcome.number(), 7);
    }

    #[test]
    fn assessment_measures_pair_up() {
        let a1: Vec<&str> = FIELDS
            .iter()
            .filter(|f| f.assessment() == Some(1))
            .map(|f| &f.name[3..])
            .collect();
        let a2: Vec<&str> = FIELDS
            .iter()
            .filter(|f| f.assessment() == Some(2))
            .map(|f| &f.name[3..])
            .collect();
        assert_eq!(a1.len(), 14);
        assert_eq!(a1, a2);
    }
}
