//! The parts of FHIR R4 resources crest reads, as serde types. Everything else in a resource
//! is skipped unread; one flat type serves every resource type crest maps, since each reads
//! only the elements its type has.

use serde::Deserialize;

/// A `Coding`.
#[derive(Deserialize, Default, Debug, Clone)]
pub struct Coding {
    /// Code system URI.
    #[serde(default)]
    pub system: Option<String>,
    /// The code.
    #[serde(default)]
    pub code: Option<String>,
}

/// A `CodeableConcept`.
#[derive(Deserialize, Default, Debug, Clone)]
pub struct Concept {
    /// Its codings.
    #[serde(default)]
    pub coding: Vec<Coding>,
    /// Free text (never used to map: codes only).
    #[serde(default)]
    pub text: Option<String>,
}

/// A `Reference`.
#[derive(Deserialize, Default, Debug, Clone)]
pub struct Reference {
    /// `Type/id`, an absolute URL or a `urn:uuid:`.
    #[serde(default)]
    pub reference: Option<String>,
    /// A logical reference by identifier (the programme, in crest's own files).
    #[serde(default)]
    pub identifier: Option<Identifier>,
}

/// An `Identifier`.
#[derive(Deserialize, Default, Debug, Clone)]
pub struct Identifier {
    /// Its namespace.
    #[serde(default)]
    pub system: Option<String>,
    /// The value.
    #[serde(default)]
    pub value: Option<String>,
}

/// A `Period`.
#[derive(Deserialize, Default, Debug, Clone)]
pub struct Period {
    /// Start.
    #[serde(default)]
    pub start: Option<String>,
    /// End.
    #[serde(default)]
    pub end: Option<String>,
}

/// A `Quantity`.
#[derive(Deserialize, Default, Debug, Clone)]
pub struct Quantity {
    /// The number.
    #[serde(default)]
    pub value: Option<f64>,
    /// Unit as shown.
    #[serde(default)]
    pub unit: Option<String>,
    /// Unit system (UCUM).
    #[serde(default)]
    pub system: Option<String>,
    /// Coded unit.
    #[serde(default)]
    pub code: Option<String>,
}

/// An `Extension` (one level of nesting is enough for what crest reads).
#[derive(Deserialize, Default, Debug, Clone)]
#[serde(rename_all = "camelCase")]
pub struct Extension {
    /// What it is.
    #[serde(default)]
    pub url: String,
    /// A coded value.
    #[serde(default)]
    pub value_codeable_concept: Option<Concept>,
    /// A code.
    #[serde(default)]
    pub value_code: Option<String>,
    /// A string.
    #[serde(default)]
    pub value_string: Option<String>,
    /// A date.
    #[serde(default)]
    pub value_date: Option<String>,
    /// An integer.
    #[serde(default)]
    pub value_integer: Option<i64>,
    /// A yes/no.
    #[serde(default)]
    pub value_boolean: Option<bool>,
}

/// A `HumanName`.
#[derive(Deserialize, Default, Debug, Clone)]
pub struct HumanName {
    /// `official`, `usual`, …
    #[serde(rename = "use", default)]
    pub use_: Option<String>,
    /// Family name.
    #[serde(default)]
    pub family: Option<String>,
    /// Given names.
    #[serde(default)]
    pub given: Vec<String>,
}

/// An `Address`.
#[derive(Deserialize, Default, Debug, Clone)]
#[serde(rename_all = "camelCase")]
pub struct Address {
    /// `home`, `temp`, `old`, …
    #[serde(rename = "use", default)]
    pub use_: Option<String>,
    /// Postcode.
    #[serde(default)]
    pub postal_code: Option<String>,
    /// When it applied (an ended address is an old one).
    #[serde(default)]
    pub period: Option<Period>,
}

/// An Observation `component`.
#[derive(Deserialize, Default, Debug, Clone)]
#[serde(rename_all = "camelCase")]
pub struct Component {
    /// What it measures.
    #[serde(default)]
    pub code: Concept,
    /// Its quantity.
    #[serde(default)]
    pub value_quantity: Option<Quantity>,
}

/// `EpisodeOfCare.diagnosis`.
#[derive(Deserialize, Default, Debug, Clone)]
pub struct Diagnosis {
    /// The condition.
    #[serde(default)]
    pub condition: Option<Reference>,
}

/// One resource: the elements crest reads of Patient, Condition, Procedure, ServiceRequest,
/// EpisodeOfCare, Encounter and Observation.
#[derive(Deserialize, Default, Debug, Clone)]
#[serde(rename_all = "camelCase")]
pub struct Resource {
    /// Its type.
    #[serde(default)]
    pub resource_type: String,
    /// Its logical id.
    #[serde(default)]
    pub id: Option<String>,
    /// Identifiers (Patient: NHS number; EpisodeOfCare: crest's episode id).
    #[serde(default)]
    pub identifier: Vec<Identifier>,
    /// Extensions.
    #[serde(default)]
    pub extension: Vec<Extension>,
    /// Patient.birthDate.
    #[serde(default)]
    pub birth_date: Option<String>,
    /// Patient.gender.
    #[serde(default)]
    pub gender: Option<String>,
    /// Patient.name.
    #[serde(default)]
    pub name: Vec<HumanName>,
    /// Patient.address.
    #[serde(default)]
    pub address: Vec<Address>,
    /// What the resource is about (Condition, Procedure, Observation, ServiceRequest, Encounter).
    #[serde(default)]
    pub code: Option<Concept>,
    /// The patient (Condition, Procedure, Observation, ServiceRequest, Encounter).
    #[serde(default)]
    pub subject: Option<Reference>,
    /// EpisodeOfCare.patient.
    #[serde(default)]
    pub patient: Option<Reference>,
    /// Status code.
    #[serde(default)]
    pub status: Option<String>,
    /// Condition.onsetDateTime.
    #[serde(default)]
    pub onset_date_time: Option<String>,
    /// Condition.recordedDate.
    #[serde(default)]
    pub recorded_date: Option<String>,
    /// Procedure.performedDateTime.
    #[serde(default)]
    pub performed_date_time: Option<String>,
    /// Procedure.performedPeriod.
    #[serde(default)]
    pub performed_period: Option<Period>,
    /// ServiceRequest.authoredOn.
    #[serde(default)]
    pub authored_on: Option<String>,
    /// EpisodeOfCare.period, Encounter.period.
    #[serde(default)]
    pub period: Option<Period>,
    /// Observation.effectiveDateTime.
    #[serde(default)]
    pub effective_date_time: Option<String>,
    /// Observation.effectivePeriod.
    #[serde(default)]
    pub effective_period: Option<Period>,
    /// Observation.valueQuantity.
    #[serde(default)]
    pub value_quantity: Option<Quantity>,
    /// Observation.valueCodeableConcept.
    #[serde(default)]
    pub value_codeable_concept: Option<Concept>,
    /// Observation.valueInteger.
    #[serde(default)]
    pub value_integer: Option<i64>,
    /// Observation.component.
    #[serde(default)]
    pub component: Vec<Component>,
    /// Procedure/ServiceRequest.reasonReference.
    #[serde(default)]
    pub reason_reference: Vec<Reference>,
    /// Observation/Encounter.basedOn.
    #[serde(default)]
    pub based_on: Vec<Reference>,
    /// Observation/Procedure.encounter (one reference).
    #[serde(default)]
    pub encounter: Option<Reference>,
    /// Encounter.episodeOfCare.
    #[serde(default)]
    pub episode_of_care: Vec<Reference>,
    /// EpisodeOfCare.referralRequest.
    #[serde(default)]
    pub referral_request: Vec<Reference>,
    /// EpisodeOfCare.diagnosis.
    #[serde(default)]
    pub diagnosis: Vec<Diagnosis>,
    /// EpisodeOfCare.managingOrganization (crest's files name the programme by identifier).
    #[serde(default)]
    pub managing_organization: Option<Reference>,
}

impl Resource {
    /// `Type/id`, as references name it.
    pub fn key(&self) -> String {
        format!(
            "{}/{}",
            self.resource_type,
            self.id.as_deref().unwrap_or("?")
        )
    }
}

/// Just enough of a resource to name it when the rest cannot be read.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Named {
    /// Its type.
    #[serde(default)]
    pub resource_type: Option<String>,
    /// Its id.
    #[serde(default)]
    pub id: Option<serde_json::Value>,
}
