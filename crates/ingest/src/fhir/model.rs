//! The parts of FHIR R4 resources crest reads, as serde types. Everything else in a resource
//! is skipped unread; one flat type serves every resource type crest maps, since each reads
//! only the elements its type has.

use serde::Deserialize;
use std::borrow::Cow;

/// Text as read: borrowed from the JSON where it has no escapes (most of it), so reading a
/// resource allocates little; owned where it has.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct S<'a>(pub Cow<'a, str>);

impl std::fmt::Display for S<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::ops::Deref for S<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for S<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = S<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("text")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<S<'de>, E> {
                Ok(S(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<S<'de>, E> {
                Ok(S(Cow::Owned(v.to_string())))
            }
            fn visit_string<E>(self, v: String) -> Result<S<'de>, E> {
                Ok(S(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

/// A `Coding`.
#[derive(Deserialize, Default, Debug, Clone)]
pub struct Coding<'a> {
    /// Code system URI.
    #[serde(borrow, default)]
    pub system: Option<S<'a>>,
    /// The code.
    #[serde(borrow, default)]
    pub code: Option<S<'a>>,
}

/// A `CodeableConcept`.
#[derive(Deserialize, Default, Debug, Clone)]
pub struct Concept<'a> {
    /// Its codings.
    #[serde(borrow, default)]
    pub coding: Vec<Coding<'a>>,
    /// Free text (never used to map: codes only).
    #[serde(borrow, default)]
    pub text: Option<S<'a>>,
}

/// A `Reference`.
#[derive(Deserialize, Default, Debug, Clone)]
pub struct Reference<'a> {
    /// `Type/id`, an absolute URL or a `urn:uuid:`.
    #[serde(borrow, default)]
    pub reference: Option<S<'a>>,
    /// A logical reference by identifier (the programme, in crest's own files).
    #[serde(borrow, default)]
    pub identifier: Option<Identifier<'a>>,
}

/// An `Identifier`.
#[derive(Deserialize, Default, Debug, Clone)]
pub struct Identifier<'a> {
    /// Its namespace.
    #[serde(borrow, default)]
    pub system: Option<S<'a>>,
    /// The value.
    #[serde(borrow, default)]
    pub value: Option<S<'a>>,
}

/// A `Period`.
#[derive(Deserialize, Default, Debug, Clone)]
pub struct Period<'a> {
    /// Start.
    #[serde(borrow, default)]
    pub start: Option<S<'a>>,
    /// End.
    #[serde(borrow, default)]
    pub end: Option<S<'a>>,
}

/// A `Quantity`.
#[derive(Deserialize, Default, Debug, Clone)]
pub struct Quantity<'a> {
    /// The number.
    #[serde(default)]
    pub value: Option<f64>,
    /// Unit as shown.
    #[serde(borrow, default)]
    pub unit: Option<S<'a>>,
    /// Unit system (UCUM).
    #[serde(borrow, default)]
    pub system: Option<S<'a>>,
    /// Coded unit.
    #[serde(borrow, default)]
    pub code: Option<S<'a>>,
}

/// An `Extension` (one level of nesting is enough for what crest reads).
#[derive(Deserialize, Default, Debug, Clone)]
#[serde(rename_all = "camelCase")]
pub struct Extension<'a> {
    /// What it is.
    #[serde(borrow, default)]
    pub url: S<'a>,
    /// The parts of a complex extension.
    #[serde(borrow, default)]
    pub extension: Vec<Extension<'a>>,
    /// A coded value.
    #[serde(borrow, default)]
    pub value_codeable_concept: Option<Concept<'a>>,
    /// A code.
    #[serde(borrow, default)]
    pub value_code: Option<S<'a>>,
    /// A string.
    #[serde(borrow, default)]
    pub value_string: Option<S<'a>>,
    /// A date.
    #[serde(borrow, default)]
    pub value_date: Option<S<'a>>,
    /// An integer.
    #[serde(default)]
    pub value_integer: Option<i64>,
    /// A yes/no.
    #[serde(default)]
    pub value_boolean: Option<bool>,
}

/// A `HumanName`.
#[derive(Deserialize, Default, Debug, Clone)]
pub struct HumanName<'a> {
    /// `official`, `usual`, …
    #[serde(borrow, rename = "use", default)]
    pub use_: Option<S<'a>>,
    /// Family name.
    #[serde(borrow, default)]
    pub family: Option<S<'a>>,
    /// Given names.
    #[serde(borrow, default)]
    pub given: Vec<S<'a>>,
}

/// An `Address`.
#[derive(Deserialize, Default, Debug, Clone)]
#[serde(rename_all = "camelCase")]
pub struct Address<'a> {
    /// `home`, `temp`, `old`, …
    #[serde(borrow, rename = "use", default)]
    pub use_: Option<S<'a>>,
    /// Postcode.
    #[serde(borrow, default)]
    pub postal_code: Option<S<'a>>,
    /// When it applied (an ended address is an old one).
    #[serde(borrow, default)]
    pub period: Option<Period<'a>>,
}

/// An Observation `component`.
#[derive(Deserialize, Default, Debug, Clone)]
#[serde(rename_all = "camelCase")]
pub struct Component<'a> {
    /// What it measures.
    #[serde(borrow, default)]
    pub code: Concept<'a>,
    /// Its quantity.
    #[serde(borrow, default)]
    pub value_quantity: Option<Quantity<'a>>,
}

/// `EpisodeOfCare.diagnosis`.
#[derive(Deserialize, Default, Debug, Clone)]
pub struct Diagnosis<'a> {
    /// The condition.
    #[serde(borrow, default)]
    pub condition: Option<Reference<'a>>,
}

/// One resource: the elements crest reads of Patient, Condition, Procedure, ServiceRequest,
/// EpisodeOfCare, Encounter and Observation. The larger elements are boxed: a million
/// resources pass through this type, and it is moved several times as it is parsed.
#[derive(Deserialize, Default, Debug, Clone)]
#[serde(rename_all = "camelCase")]
pub struct Resource<'a> {
    /// Its type.
    #[serde(borrow, default)]
    pub resource_type: S<'a>,
    /// Its logical id.
    #[serde(borrow, default)]
    pub id: Option<S<'a>>,
    /// Identifiers (Patient: NHS number; EpisodeOfCare: crest's episode id).
    #[serde(borrow, default)]
    pub identifier: Vec<Identifier<'a>>,
    /// Extensions.
    #[serde(borrow, default)]
    pub extension: Vec<Extension<'a>>,
    /// Patient.birthDate.
    #[serde(borrow, default)]
    pub birth_date: Option<S<'a>>,
    /// Patient.gender.
    #[serde(borrow, default)]
    pub gender: Option<S<'a>>,
    /// Patient.name.
    #[serde(borrow, default)]
    pub name: Vec<HumanName<'a>>,
    /// Patient.address.
    #[serde(borrow, default)]
    pub address: Vec<Address<'a>>,
    /// What the resource is about (Condition, Procedure, Observation, ServiceRequest, Encounter).
    #[serde(borrow, default)]
    pub code: Option<Box<Concept<'a>>>,
    /// The patient (Condition, Procedure, Observation, ServiceRequest, Encounter).
    #[serde(borrow, default)]
    pub subject: Option<Box<Reference<'a>>>,
    /// EpisodeOfCare.patient.
    #[serde(borrow, default)]
    pub patient: Option<Box<Reference<'a>>>,
    /// Status code.
    #[serde(borrow, default)]
    pub status: Option<S<'a>>,
    /// Condition.onsetDateTime.
    #[serde(borrow, default)]
    pub onset_date_time: Option<S<'a>>,
    /// Condition.recordedDate.
    #[serde(borrow, default)]
    pub recorded_date: Option<S<'a>>,
    /// Procedure.performedDateTime.
    #[serde(borrow, default)]
    pub performed_date_time: Option<S<'a>>,
    /// Procedure.performedPeriod.
    #[serde(borrow, default)]
    pub performed_period: Option<Box<Period<'a>>>,
    /// ServiceRequest.authoredOn.
    #[serde(borrow, default)]
    pub authored_on: Option<S<'a>>,
    /// EpisodeOfCare.period, Encounter.period.
    #[serde(borrow, default)]
    pub period: Option<Box<Period<'a>>>,
    /// Observation.effectiveDateTime.
    #[serde(borrow, default)]
    pub effective_date_time: Option<S<'a>>,
    /// Observation.effectivePeriod.
    #[serde(borrow, default)]
    pub effective_period: Option<Box<Period<'a>>>,
    /// Observation.valueQuantity.
    #[serde(borrow, default)]
    pub value_quantity: Option<Box<Quantity<'a>>>,
    /// Observation.valueCodeableConcept.
    #[serde(borrow, default)]
    pub value_codeable_concept: Option<Box<Concept<'a>>>,
    /// Observation.valueInteger.
    #[serde(default)]
    pub value_integer: Option<i64>,
    /// Observation.component.
    #[serde(borrow, default)]
    pub component: Vec<Component<'a>>,
    /// Procedure/ServiceRequest.reasonReference.
    #[serde(borrow, default)]
    pub reason_reference: Vec<Reference<'a>>,
    /// Observation/Encounter.basedOn.
    #[serde(borrow, default)]
    pub based_on: Vec<Reference<'a>>,
    /// Observation/Procedure.encounter (one reference).
    #[serde(borrow, default)]
    pub encounter: Option<Box<Reference<'a>>>,
    /// Encounter.episodeOfCare.
    #[serde(borrow, default)]
    pub episode_of_care: Vec<Reference<'a>>,
    /// EpisodeOfCare.referralRequest.
    #[serde(borrow, default)]
    pub referral_request: Vec<Reference<'a>>,
    /// EpisodeOfCare.diagnosis.
    #[serde(borrow, default)]
    pub diagnosis: Vec<Diagnosis<'a>>,
    /// EpisodeOfCare.managingOrganization (crest's files name the programme by identifier).
    #[serde(borrow, default)]
    pub managing_organization: Option<Box<Reference<'a>>>,
}

impl Resource<'_> {
    /// `Type/id`, as references name it.
    pub fn key(&self) -> String {
        let id = self.id.as_deref().unwrap_or("?");
        let mut k = String::with_capacity(self.resource_type.len() + 1 + id.len());
        k.push_str(&self.resource_type);
        k.push('/');
        k.push_str(id);
        k
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
