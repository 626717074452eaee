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
    Code(&'static [&'static str]),
    /// `;`-separated codes from a list.
    CodeList(&'static [&'static str]),
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
            Kind::Code(codes) => format!("one of: {}", codes.join(", ")),
            Kind::CodeList(codes) => format!("`;`-separated, from: {}", codes.join(", ")),
            Kind::Int { hard, soft, step } if *step > 1 => {
                format!("whole number {}, multiple of {step}", bounds(*hard, *soft))
            }
            Kind::Int { hard, soft, .. } => format!("whole number {}", bounds(*hard, *soft)),
            Kind::Decimal { hard, soft } => format!("number {}", bounds(*hard, *soft)),
            Kind::Bool => "yes/no (true/false, 1/0); empty = no".into(),
        }
    }
}

/// One column of the dataset.
#[derive(Copy, Clone, Debug)]
pub struct Field {
    /// Which column this is.
    pub col: Col,
    /// Column name in files, the store and the API.
    pub name: &'static str,
    /// Type and parsing rule.
    pub kind: Kind,
    /// Must be present in the header and filled in every row.
    pub required: bool,
    /// Where the value may travel.
    pub tier: Tier,
    /// Group of columns.
    pub section: Section,
    /// Unit or plain-English rule for users.
    pub help: &'static str,
}

impl Field {
    /// Whether the field is read from import files (derived fields are not).
    pub fn imported(&self) -> bool {
        self.tier != Tier::Derived
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

/// Sex codes.
pub const SEX: &[&str] = &["male", "female", "indeterminate", "not_known"];
/// NHS ethnic category letters.
pub const ETHNICITY: &[&str] = &[
    "A", "B", "C", "D", "E", "F", "G", "H", "J", "K", "L", "M", "N", "P", "R", "S", "Z",
];
/// Initiating events.
pub const INITIATING_EVENT: &[&str] = &[
    "mi_stemi",
    "mi_nstemi",
    "mi_unspecified",
    "unstable_angina",
    "stable_angina",
    "heart_failure",
    "cardiac_arrest",
    "arrhythmia",
    "valve_disease",
    "congenital",
    "other",
];
/// Treatments.
pub const TREATMENT: &[&str] = &[
    "medical",
    "pci",
    "cabg",
    "valve_surgery",
    "icd_crt",
    "pacemaker",
    "transplant_lvad",
    "other_surgery",
];
/// Referral sources.
pub const REFERRAL_SOURCE: &[&str] =
    &["acute_trust", "gp", "community", "self", "private", "other"];
/// Local service lines.
pub const PATHWAY: &[&str] = &[
    "standard",
    "heart_failure",
    "icd",
    "angina",
    "community_outreach",
    "other",
];
/// Comorbidity codes.
pub const COMORBIDITY: &[&str] = &[
    "diabetes",
    "hypertension",
    "hypercholesterolaemia",
    "copd",
    "asthma",
    "arthritis",
    "chronic_back_pain",
    "stroke",
    "anxiety",
    "depression",
    "cancer",
    "claudication",
    "erectile_dysfunction",
    "family_history",
    "other",
];
/// Episode statuses.
pub const STATUS: &[&str] = &[
    "referred",
    "declined",
    "did_not_start",
    "in_progress",
    "completed",
    "dropped_out",
    "died",
    "transferred",
];
/// Reasons for not starting.
pub const NON_START_REASON: &[&str] = &[
    "declined",
    "not_contactable",
    "clinical_unsuitable",
    "work_commitments",
    "transport",
    "other",
];
/// Reasons for dropping out.
pub const DROPOUT_REASON: &[&str] = &[
    "lost_interest",
    "illness",
    "work_commitments",
    "transport",
    "moved",
    "other",
];
/// Delivery modes of core CR.
pub const DELIVERY_MODE: &[&str] = &[
    "group_supervised",
    "home_based",
    "digital",
    "hybrid",
    "one_to_one",
];
/// Smoking status.
pub const SMOKING: &[&str] = &["never", "ex", "recent_quitter", "current"];

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
    ($( $col:ident = $name:literal, $kind:expr, $req:literal, $tier:ident, $section:ident, $help:literal; )*) => {
        /// A column of the dataset; `col as usize` indexes [`FIELDS`] and [`crate::Record`].
        #[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
        #[allow(missing_docs)]
        pub enum Col { $($col),* }

        /// The number of columns in the dataset.
        pub const FIELD_COUNT: usize = [$(stringify!($col)),*].len();

        /// Every column of the dataset, in file order.
        pub static FIELDS: &[Field] = &[ $( Field {
            col: Col::$col, name: $name, kind: $kind, required: $req,
            tier: Tier::$tier, section: Section::$section, help: $help,
        } ),* ];
    };
}

dataset! {
    ProgrammeCode = "programme_code", Kind::ProgrammeCode, true, National, Identity,
        "The programme's code as registered in crest, e.g. P001";
    EpisodeId = "episode_id", Kind::Text { max: 40 }, true, Local, Identity,
        "Your own id for this episode, unique within the programme; re-importing the same id updates it";
    NhsNumber = "nhs_number", Kind::NhsNumber, true, Local, Identity,
        "The patient's NHS number";
    LocalPatientId = "local_patient_id", Kind::Text { max: 20 }, false, Local, Identity,
        "Hospital number";
    FamilyName = "family_name", Kind::Text { max: 100 }, false, Local, Identity, "Surname";
    GivenName = "given_name", Kind::Text { max: 100 }, false, Local, Identity, "First name";
    DateOfBirth = "date_of_birth", Kind::Date, true, Local, Identity,
        "Not in the future; age at the event must be 16–110 (warning outside 18–100)";
    Postcode = "postcode", Kind::Postcode, false, Local, Identity, "Postcode of residence";
    Sex = "sex", Kind::Code(SEX), true, National, Identity, "Sex";
    Ethnicity = "ethnicity", Kind::Code(ETHNICITY), false, National, Identity,
        "NHS ethnic category letter: A B C White; D E F G Mixed; H J K L Asian or Asian British; M N P Black or Black British; R S Other; Z not stated; empty = not known";
    ImdQuintile = "imd_quintile", Kind::Int { hard: (1, 5), soft: None, step: 1 }, false, National, Identity,
        "Deprivation quintile of residence, 1 = most deprived; empty = unknown";
    AgeAtEvent = "age_at_event", Kind::Int { hard: (16, 110), soft: None, step: 1 }, false, Derived, Identity,
        "Age in years at the initiating event, derived from date of birth; sent nationally instead of it";
    InitiatingEvent = "initiating_event", Kind::Code(INITIATING_EVENT), true, National, Referral,
        "The event that led to referral";
    Treatment = "treatment", Kind::Code(TREATMENT), true, National, Referral, "Treatment for the event";
    EventDate = "event_date", Kind::Date, true, National, Referral, "Date of the initiating event";
    DischargeDate = "discharge_date", Kind::Date, false, National, Referral, "On or after the event date";
    ReferralDate = "referral_date", Kind::Date, true, National, Referral,
        "On or after the event date; decides the reporting period";
    ReferralSource = "referral_source", Kind::Code(REFERRAL_SOURCE), false, National, Referral, "Who referred";
    Pathway = "pathway", Kind::Code(PATHWAY), false, National, Referral,
        "Local service line; empty = standard";
    Comorbidities = "comorbidities", Kind::CodeList(COMORBIDITY), false, National, Referral,
        "Other conditions";
    Status = "status", Kind::Code(STATUS), true, National, Rehabilitation,
        "Where the episode stands now (referred = still waiting)";
    NonStartReason = "non_start_reason", Kind::Code(NON_START_REASON), false, National, Rehabilitation,
        "Required when status is declined or did_not_start";
    DropoutReason = "dropout_reason", Kind::Code(DROPOUT_REASON), false, National, Rehabilitation,
        "Required when status is dropped_out";
    DeliveryMode = "delivery_mode", Kind::Code(DELIVERY_MODE), false, National, Rehabilitation,
        "Required once core CR has started";
    Assessment1Date = "assessment1_date", Kind::Date, false, National, Rehabilitation,
        "No earlier than 30 days before referral; on or before the core start date";
    CoreStartDate = "core_start_date", Kind::Date, false, National, Rehabilitation,
        "On or after referral; required for in_progress, completed and dropped_out; empty for referred, declined and did_not_start";
    CoreEndDate = "core_end_date", Kind::Date, false, National, Rehabilitation,
        "On or after core start; required for completed and dropped_out";
    Assessment2Date = "assessment2_date", Kind::Date, false, National, Rehabilitation,
        "On or after core start and assessment 1";
    NationalOptOut = "national_opt_out", Kind::Bool, false, Local, Rehabilitation,
        "The patient asked not to be included in the national audit; such episodes never leave the programme";
    A1WeightKg = "a1_weight_kg", WEIGHT, false, National, Assessment1, "Weight, kg";
    A1HeightCm = "a1_height_cm", HEIGHT, false, National, Assessment1, "Height, cm";
    A1Bmi = "a1_bmi", BMI, false, National, Assessment1,
        "Body mass index, kg/m²; worked out from weight and height when empty, checked against them (±1) when given";
    A1WaistCm = "a1_waist_cm", WAIST, false, National, Assessment1, "Waist circumference, cm";
    A1SystolicBp = "a1_systolic_bp", SYSTOLIC, false, National, Assessment1, "Systolic blood pressure, mmHg";
    A1DiastolicBp = "a1_diastolic_bp", DIASTOLIC, false, National, Assessment1,
        "Diastolic blood pressure, mmHg; below systolic";
    A1TotalCholesterol = "a1_total_cholesterol", CHOLESTEROL, false, National, Assessment1,
        "Total cholesterol, mmol/L";
    A1Smoking = "a1_smoking", Kind::Code(SMOKING), false, National, Assessment1, "Smoking status";
    A1ActivityMinutes = "a1_activity_minutes", ACTIVITY, false, National, Assessment1,
        "Minutes a week of moderate physical activity";
    A1IswtM = "a1_iswt_m", ISWT, false, National, Assessment1, "Incremental shuttle walk test, metres";
    A1SixMwtM = "a1_six_mwt_m", SIX_MWT, false, National, Assessment1, "Six-minute walk test, metres";
    A1HadsAnxiety = "a1_hads_anxiety", HADS, false, National, Assessment1, "HADS anxiety score";
    A1HadsDepression = "a1_hads_depression", HADS, false, National, Assessment1, "HADS depression score";
    A1Eq5dVas = "a1_eq5d_vas", EQ5D, false, National, Assessment1, "EQ-5D visual analogue scale";
    A2WeightKg = "a2_weight_kg", WEIGHT, false, National, Assessment2, "Weight, kg";
    A2HeightCm = "a2_height_cm", HEIGHT, false, National, Assessment2, "Height, cm";
    A2Bmi = "a2_bmi", BMI, false, National, Assessment2,
        "Body mass index, kg/m²; worked out from weight and height when empty, checked against them (±1) when given";
    A2WaistCm = "a2_waist_cm", WAIST, false, National, Assessment2, "Waist circumference, cm";
    A2SystolicBp = "a2_systolic_bp", SYSTOLIC, false, National, Assessment2, "Systolic blood pressure, mmHg";
    A2DiastolicBp = "a2_diastolic_bp", DIASTOLIC, false, National, Assessment2,
        "Diastolic blood pressure, mmHg; below systolic";
    A2TotalCholesterol = "a2_total_cholesterol", CHOLESTEROL, false, National, Assessment2,
        "Total cholesterol, mmol/L";
    A2Smoking = "a2_smoking", Kind::Code(SMOKING), false, National, Assessment2, "Smoking status";
    A2ActivityMinutes = "a2_activity_minutes", ACTIVITY, false, National, Assessment2,
        "Minutes a week of moderate physical activity";
    A2IswtM = "a2_iswt_m", ISWT, false, National, Assessment2, "Incremental shuttle walk test, metres";
    A2SixMwtM = "a2_six_mwt_m", SIX_MWT, false, National, Assessment2, "Six-minute walk test, metres";
    A2HadsAnxiety = "a2_hads_anxiety", HADS, false, National, Assessment2, "HADS anxiety score";
    A2HadsDepression = "a2_hads_depression", HADS, false, National, Assessment2, "HADS depression score";
    A2Eq5dVas = "a2_eq5d_vas", EQ5D, false, National, Assessment2, "EQ-5D visual analogue scale";
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
    let name = name.trim();
    FIELDS.iter().find(|f| f.name.eq_ignore_ascii_case(name))
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
                "\n## {}\n\n| column | required | tier | values | notes |\n|---|---|---|---|---|\n",
                f.section.title()
            ));
        }
        out.push_str(&format!(
            "| `{}` | {} | {} | {} | {} |\n",
            f.name,
            if f.required { "yes" } else { "no" },
            f.tier.letter(),
            f.kind.describe(),
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
