//! Writing episodes as FHIR R4 resources with the same mapping the importer reads: a
//! `collection` Bundle (one file) or bulk-export NDJSON (one file per resource type). What
//! `crest import` reads back is the same episodes.

use super::mapping::{self, CREST, ETHNIC_CATEGORY, LOINC, NHS_NUMBER, UCUM};
use crest_core::{Col, Record, Value};
use serde_json::{json, Map, Value as Json};
use std::collections::HashMap;
use std::io::Write;

/// Fields written as crest's own extensions on the EpisodeOfCare: those FHIR has no standard
/// place for in the resources crest writes.
const EXTENSION_FIELDS: [Col; 12] = [
    Col::Status,
    Col::ReferralSource,
    Col::Pathway,
    Col::Comorbidities,
    Col::NonStartReason,
    Col::DropoutReason,
    Col::DeliveryMode,
    Col::NationalOptOut,
    Col::ImdQuintile,
    Col::DischargeDate,
    Col::Assessment1Date,
    Col::Assessment2Date,
];

/// The display of a dataset code (its label in the dictionary), for crest's own codings.
fn label(col: Col, code: &str) -> String {
    match col.field().kind {
        crest_core::dataset::Kind::Code(codes) | crest_core::dataset::Kind::CodeList(codes) => {
            codes
                .iter()
                .find(|c| c.code == code)
                .map_or(code.to_string(), |c| c.label.to_string())
        }
        _ => code.to_string(),
    }
}

fn coding(field: &str, col: Option<Col>, value: &str) -> Json {
    match mapping::export_code(field, value) {
        Some(e) => json!({"system": e.system, "code": e.code, "display": e.display}),
        None => json!({
            "system": mapping::crest_system(field),
            "code": value,
            "display": col.map_or(value.to_string(), |c| label(c, value)),
        }),
    }
}

fn reference(key: &str) -> Json {
    json!({ "reference": key })
}

fn text(r: &Record, col: Col) -> Option<String> {
    let v = r.get(col);
    (!v.is_null()).then(|| v.to_text())
}

/// Patient-level details: episodes with the same details share one Patient.
fn patient_details(r: &Record) -> Vec<String> {
    [
        Col::NhsNumber,
        Col::DateOfBirth,
        Col::Sex,
        Col::Postcode,
        Col::FamilyName,
        Col::GivenName,
        Col::LocalPatientId,
        Col::Ethnicity,
    ]
    .iter()
    .map(|c| r.get(*c).to_text())
    .collect()
}

fn patient(id: &str, r: &Record) -> Json {
    let mut p = Map::new();
    p.insert("resourceType".into(), json!("Patient"));
    p.insert("id".into(), json!(id));
    let mut ids = vec![json!({"system": NHS_NUMBER, "value": r.get(Col::NhsNumber).to_text()})];
    if let Some(l) = text(r, Col::LocalPatientId) {
        ids.push(json!({"system": mapping::crest_identifier("local-patient-id"), "value": l}));
    }
    p.insert("identifier".into(), Json::Array(ids));
    if let Some(e) = text(r, Col::Ethnicity) {
        p.insert(
            "extension".into(),
            json!([{
                "url": ETHNIC_CATEGORY,
                "valueCodeableConcept": {"coding": [{
                    "system": "https://fhir.hl7.org.uk/CodeSystem/UKCore-EthnicCategoryEngland",
                    "code": e,
                }]}
            }]),
        );
    }
    let (family, given) = (text(r, Col::FamilyName), text(r, Col::GivenName));
    if family.is_some() || given.is_some() {
        let mut n = Map::new();
        n.insert("use".into(), json!("official"));
        if let Some(f) = family {
            n.insert("family".into(), json!(f));
        }
        if let Some(g) = given {
            n.insert("given".into(), json!([g]));
        }
        p.insert("name".into(), json!([n]));
    }
    if let Some(s) = text(r, Col::Sex) {
        let g = match s.as_str() {
            "indeterminate" => "other",
            "not_known" => "unknown",
            g => g,
        };
        p.insert("gender".into(), json!(g));
    }
    if let Some(d) = text(r, Col::DateOfBirth) {
        p.insert("birthDate".into(), json!(d));
    }
    if let Some(pc) = text(r, Col::Postcode) {
        p.insert("address".into(), json!([{"use": "home", "postalCode": pc}]));
    }
    Json::Object(p)
}

/// One field as a sub-extension of crest's complex `episode` extension (its url is the
/// field's name, as FHIR names the parts of a complex extension).
fn extension(col: Col, v: &Value) -> Vec<Json> {
    let url = col.name();
    match v {
        Value::Null => vec![],
        Value::Date(d) => vec![json!({"url": url, "valueDate": d.to_string()})],
        Value::Int(i) => vec![json!({"url": url, "valueInteger": i})],
        Value::Bool(b) => vec![json!({"url": url, "valueBoolean": b})],
        Value::Text(s) if col == Col::Comorbidities => s
            .split(';')
            .filter(|c| !c.is_empty())
            .map(|c| json!({"url": url, "valueCode": c}))
            .collect(),
        other => vec![json!({"url": url, "valueCode": other.to_text()})],
    }
}

fn episode_status(status: &str) -> &'static str {
    match status {
        "referred" => "waitlist",
        "in_progress" => "active",
        "completed" | "died" | "transferred" => "finished",
        _ => "cancelled",
    }
}

fn measure_value(measure: &str, v: &Value) -> Option<Json> {
    let x = match v {
        Value::Int(i) => json!(i),
        Value::Num(x) => json!(x),
        _ => return None,
    };
    let (units, unitless) = mapping::units(measure);
    Some(if unitless && units[0].0.starts_with('{') {
        json!({"value": x})
    } else {
        json!({"value": x, "unit": units[0].0, "system": UCUM, "code": units[0].0})
    })
}

fn measure_code(measure: &str) -> Json {
    match mapping::export_code(measure, "") {
        Some(e) => json!({"coding": [{"system": e.system, "code": e.code, "display": e.display}]}),
        None => json!({"coding": [{
            "system": format!("{CREST}/CodeSystem/measure"),
            "code": measure,
            "display": crest_core::dataset::field_by_name(&format!("a1_{measure}")).map_or(measure, |f| f.label),
        }]}),
    }
}

/// Writes resources for `records` through `emit(resource_type, resource)`.
pub fn resources(
    records: &[Record],
    emit: &mut dyn FnMut(&str, Json) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let mut patients: HashMap<Vec<String>, String> = HashMap::new();
    for (n, r) in records.iter().enumerate() {
        let n = n + 1;
        let details = patient_details(r);
        let pid = match patients.get(&details) {
            Some(id) => id.clone(),
            None => {
                let id = format!("pat{}", patients.len() + 1);
                emit("Patient", patient(&id, r))?;
                patients.insert(details, id.clone());
                id
            }
        };
        let subject = reference(&format!("Patient/{pid}"));
        let (cond, sr, eoc) = (format!("c{n}"), format!("sr{n}"), format!("eoc{n}"));
        let event = r.get(Col::EventDate).to_text();
        emit(
            "Condition",
            json!({
                "resourceType": "Condition", "id": cond,
                "code": {"coding": [coding("initiating_event", Some(Col::InitiatingEvent), &r.get(Col::InitiatingEvent).to_text())]},
                "subject": subject, "onsetDateTime": event,
            }),
        )?;
        let treatment = r.get(Col::Treatment).to_text();
        if !treatment.is_empty() && treatment != "medical" {
            emit(
                "Procedure",
                json!({
                    "resourceType": "Procedure", "id": format!("pr{n}"), "status": "completed",
                    "code": {"coding": [coding("treatment", Some(Col::Treatment), &treatment)]},
                    "subject": subject, "performedDateTime": event,
                    "reasonReference": [reference(&format!("Condition/{cond}"))],
                }),
            )?;
        }
        let mut request = json!({
            "resourceType": "ServiceRequest", "id": sr, "status": "active", "intent": "order",
            "code": {"coding": [{"system": mapping::crest_system("service"), "code": "cardiac_rehabilitation", "display": "Referral to cardiac rehabilitation"}]},
            "subject": subject,
            "reasonReference": [reference(&format!("Condition/{cond}"))],
        });
        if let Some(d) = text(r, Col::ReferralDate) {
            request["authoredOn"] = json!(d);
        }
        emit("ServiceRequest", request)?;
        let mut care = json!({
            "resourceType": "EpisodeOfCare", "id": eoc,
            "identifier": [{"system": mapping::crest_identifier("episode"), "value": r.get(Col::EpisodeId).to_text()}],
            "status": episode_status(&r.get(Col::Status).to_text()),
            "patient": subject,
            "managingOrganization": {"identifier": {"system": mapping::crest_identifier("programme"), "value": r.get(Col::ProgrammeCode).to_text()}},
            "referralRequest": [reference(&format!("ServiceRequest/{sr}"))],
            "diagnosis": [{"condition": reference(&format!("Condition/{cond}"))}],
        });
        let mut period = Map::new();
        if let Some(d) = text(r, Col::CoreStartDate) {
            period.insert("start".into(), json!(d));
        }
        if let Some(d) = text(r, Col::CoreEndDate) {
            period.insert("end".into(), json!(d));
        }
        if !period.is_empty() {
            care["period"] = Json::Object(period);
        }
        let ext: Vec<Json> = EXTENSION_FIELDS
            .iter()
            .flat_map(|c| extension(*c, r.get(*c)))
            .collect();
        if !ext.is_empty() {
            care["extension"] =
                json!([{"url": mapping::crest_extension("episode"), "extension": ext}]);
        }
        emit("EpisodeOfCare", care)?;
        for slot in [1u8, 2] {
            let date_col = if slot == 1 {
                Col::Assessment1Date
            } else {
                Col::Assessment2Date
            };
            let Some(date) = text(r, date_col) else {
                continue;
            };
            let col = |m: &str| {
                crest_core::dataset::field_by_name(&format!("a{slot}_{m}")).map(|f| f.col)
            };
            // The assessment dates travel on the EpisodeOfCare, and an Observation dated on one
            // is of that assessment; only when both assessments fall on one day does an
            // Observation say which it is.
            let same_day = r.get(Col::Assessment1Date) == r.get(Col::Assessment2Date);
            let obs = |id: String, code: Json| {
                let mut o = json!({
                    "resourceType": "Observation", "id": id, "status": "final",
                    "code": code, "subject": subject, "effectiveDateTime": date,
                    "basedOn": [reference(&format!("ServiceRequest/{sr}"))],
                });
                if same_day {
                    o["extension"] = json!([{"url": mapping::crest_extension("assessment"), "valueInteger": slot}]);
                }
                o
            };
            let mut components = Vec::new();
            for m in ["systolic_bp", "diastolic_bp"] {
                if let Some(q) = col(m).and_then(|c| measure_value(m, r.get(c))) {
                    let e = mapping::export_code(m, "");
                    components.push(json!({
                        "code": {"coding": [{"system": LOINC, "code": e.map_or("", |e| e.code.as_str()), "display": e.map_or("", |e| e.display.as_str())}]},
                        "valueQuantity": q,
                    }));
                }
            }
            if !components.is_empty() {
                let mut o = obs(format!("o{n}-{slot}-bp"), measure_code("blood_pressure"));
                o["component"] = Json::Array(components);
                emit("Observation", o)?;
            }
            for m in super::facts::MEASURES {
                if m == "systolic_bp" || m == "diastolic_bp" {
                    continue;
                }
                let Some(c) = col(m) else { continue };
                let v = r.get(c);
                if v.is_null() {
                    continue;
                }
                let mut o = obs(
                    format!("o{n}-{slot}-{}", m.replace('_', "-")),
                    measure_code(m),
                );
                if m == "smoking" {
                    o["valueCodeableConcept"] =
                        json!({"coding": [coding("smoking", Some(c), &v.to_text())]});
                } else if let Some(q) = measure_value(m, v) {
                    o["valueQuantity"] = q;
                } else {
                    continue;
                }
                emit("Observation", o)?;
            }
        }
    }
    Ok(())
}

/// The episodes as one FHIR `collection` Bundle, written as it goes.
pub fn bundle(records: &[Record], out: &mut dyn Write) -> std::io::Result<()> {
    out.write_all(br#"{"resourceType":"Bundle","type":"collection","entry":["#)?;
    let mut first = true;
    resources(records, &mut |t, res| {
        if !first {
            out.write_all(b",")?;
        }
        first = false;
        let key = format!("{t}/{}", res["id"].as_str().unwrap_or(""));
        serde_json::to_writer(
            &mut *out,
            &json!({"fullUrl": format!("{CREST}/{key}"), "resource": res}),
        )?;
        Ok(())
    })?;
    out.write_all(b"]}\n")?;
    Ok(())
}

/// The episodes as bulk-export NDJSON: one file per resource type in `dir` (`Patient.ndjson`,
/// …). Returns the files written.
pub fn ndjson(
    records: &[Record],
    dir: &std::path::Path,
) -> std::io::Result<Vec<std::path::PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut files: HashMap<String, std::io::BufWriter<std::fs::File>> = HashMap::new();
    let mut paths = Vec::new();
    resources(records, &mut |t, res| {
        let w = match files.get_mut(t) {
            Some(w) => w,
            None => {
                let p = dir.join(format!("{t}.ndjson"));
                paths.push(p.clone());
                files.insert(
                    t.to_string(),
                    std::io::BufWriter::new(std::fs::File::create(&p)?),
                );
                files
                    .get_mut(t)
                    .ok_or_else(|| std::io::Error::other("file vanished"))?
            }
        };
        serde_json::to_writer(&mut *w, &res)?;
        w.write_all(b"\n")
    })?;
    for (_, mut w) in files {
        w.flush()?;
    }
    paths.sort();
    Ok(paths)
}
