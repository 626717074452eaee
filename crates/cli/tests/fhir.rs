//! FHIR R4 import and export end to end: the real binary, real JSON files, SQLite and
//! PostgreSQL. Hand-built Bundles cover every code of the mapping and every element crest
//! reads; a synthetic round trip (CSV → store → FHIR → new store) gives identical episodes;
//! malformed files are refused or reported in words with nothing half-stored; an independent
//! FHIR library (fhir.resources, R4 models) validates what crest writes.
#![allow(clippy::unwrap_used)]

use crest_core::{Col, Record};
use crest_ingest::fhir::mapping;
use crest_store::testing::{databases, scratch_dir, sqlite_db, TestDb};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;

struct Run {
    code: i32,
    out: String,
}

fn crest(db: &TestDb, args: &[&str]) -> Run {
    let o = Command::new(env!("CARGO_BIN_EXE_crest"))
        .arg("--db")
        .arg(&db.url)
        .args(args)
        .output()
        .unwrap();
    Run {
        code: o.status.code().unwrap_or(-1),
        out: format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    }
}

fn setup(db: &TestDb, dir: &Path, programmes: &str) {
    assert_eq!(crest(db, &["init"]).code, 0);
    let p = dir.join("programmes.csv");
    std::fs::write(&p, programmes).unwrap();
    let r = crest(db, &["programmes", "import", p.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.out);
}

const TWO: &str = "programme_code,name,nation,region,professions,offers\nP001,One,england,South London,nurse,mi\nP002,Two,wales,North Wales,,\n";

fn count(db: &TestDb) -> u64 {
    crest_store::open(&db.url)
        .unwrap()
        .count_episodes()
        .unwrap()
}

fn episode(db: &TestDb, id: &str) -> Record {
    crest_store::open(&db.url)
        .unwrap()
        .episode("P001", id)
        .unwrap()
        .unwrap_or_else(|| panic!("episode {id} was not stored"))
}

/// Valid synthetic NHS numbers (they start with 9), the `i`th.
fn nhs(i: u64) -> String {
    let mut n = 943_000_000 + i * 7;
    loop {
        let digits: Vec<u32> = n.to_string().bytes().map(|b| u32::from(b - b'0')).collect();
        if let Some(c) = crest_core::checks::nhs_check_digit(&digits) {
            return format!("{n}{c}");
        }
        n += 1;
    }
}

fn bundle(kind: &str, resources: Vec<Value>) -> Value {
    json!({
        "resourceType": "Bundle",
        "type": kind,
        "entry": resources.into_iter().map(|r| {
            let url = format!("urn:uuid:{}-{}", r["resourceType"].as_str().unwrap().to_lowercase(), r["id"].as_str().unwrap());
            json!({"fullUrl": url, "resource": r, "request": {"method": "POST", "url": r["resourceType"]}})
        }).collect::<Vec<_>>(),
    })
}

fn write_json(dir: &Path, name: &str, v: &Value) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, serde_json::to_vec_pretty(v).unwrap()).unwrap();
    p
}

fn patient(id: &str, nhs: &str) -> Value {
    json!({
        "resourceType": "Patient", "id": id,
        "identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": nhs}],
        "birthDate": "1958-03-02", "gender": "female",
    })
}

fn coded(system: &str, code: &str) -> Value {
    json!({"coding": [{"system": system, "code": code, "display": "ignored: crest never reads display text"}]})
}

fn text(r: &Record, c: Col) -> String {
    r.get(c).to_text()
}

#[test]
fn every_mapped_code_and_element_reaches_the_episode() {
    for db in databases() {
        let dir = scratch_dir("fhir-codes");
        setup(&db, &dir, TWO);
        let mut res = Vec::new();
        let mut expect: Vec<(String, Col, String)> = Vec::new();
        let mut n = 0u64;
        // One episode per initiating-event code: Condition → episode; the ServiceRequest names it.
        for e in mapping::entries()
            .iter()
            .filter(|e| e.resource == "Condition")
        {
            n += 1;
            let (p, c) = (format!("p{n}"), format!("c{n}"));
            res.push(patient(&p, &nhs(n)));
            res.push(json!({"resourceType": "Condition", "id": c, "code": coded(&e.system, &e.code),
                "subject": {"reference": format!("urn:uuid:patient-{p}")}, "onsetDateTime": "2024-04-01T10:00:00+01:00"}));
            res.push(json!({"resourceType": "ServiceRequest", "id": format!("s{n}"), "status": "active", "intent": "order",
                "subject": {"reference": format!("Patient/{p}")}, "authoredOn": "2024-04-04",
                "reasonReference": [{"reference": format!("Condition/{c}")}]}));
            expect.push((format!("cond-{c}"), Col::InitiatingEvent, e.value.clone()));
            expect.push((format!("cond-{c}"), Col::Treatment, "medical".into()));
            expect.push((format!("cond-{c}"), Col::Status, "referred".into()));
        }
        // One episode per treatment code, the Procedure placed by its date (no reference).
        for e in mapping::entries()
            .iter()
            .filter(|e| e.resource == "Procedure")
        {
            n += 1;
            let (p, c) = (format!("p{n}"), format!("c{n}"));
            res.push(patient(&p, &nhs(n)));
            res.push(json!({"resourceType": "Condition", "id": c, "code": coded("http://snomed.info/sct", "22298006"),
                "subject": {"reference": format!("Patient/{p}")}, "recordedDate": "2024-05-02"}));
            res.push(json!({"resourceType": "Procedure", "id": format!("pr{n}"), "status": "completed", "code": coded(&e.system, &e.code),
                "subject": {"reference": format!("Patient/{p}")}, "performedPeriod": {"start": "2024-05-03T09:00:00Z"}}));
            res.push(json!({"resourceType": "ServiceRequest", "id": format!("s{n}"), "status": "active", "intent": "order",
                "subject": {"reference": format!("Patient/{p}")}, "authoredOn": "2024-05-06"}));
            expect.push((format!("cond-{c}"), Col::Treatment, e.value.clone()));
            expect.push((format!("cond-{c}"), Col::EventDate, "2024-05-02".into()));
        }
        // The measures episode: every observation code, units converted, assessments by date.
        let (p, c) = ("pm", "cm");
        res.push(json!({
            "resourceType": "Patient", "id": p,
            "identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": nhs(900)},
                           {"system": "https://example.org/mrn", "value": "X1"}],
            "extension": [{"url": "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-EthnicCategory",
                "valueCodeableConcept": {"coding": [{"system": "https://fhir.hl7.org.uk/CodeSystem/UKCore-EthnicCategoryEngland", "code": "H"}]}}],
            "name": [{"use": "old", "family": "Former"}, {"use": "official", "family": "Okafor", "given": ["Ada", "Grace"]}],
            "address": [{"use": "old", "postalCode": "N1 1AA"}, {"use": "home", "postalCode": "se1 7eh"}],
            "gender": "other", "birthDate": "1951-11-30",
        }));
        res.push(json!({"resourceType": "Condition", "id": c, "code": coded("http://snomed.info/sct", "401314000"),
            "subject": {"reference": "Patient/pm"}, "onsetDateTime": "2024-03-10"}));
        res.push(json!({"resourceType": "ServiceRequest", "id": "sm", "status": "completed", "intent": "order",
            "subject": {"reference": "Patient/pm"}, "authoredOn": "2024-03-14T23:30:00Z"}));
        // A laboratory order before it, not linked to the condition: never taken as the referral.
        res.push(json!({"resourceType": "ServiceRequest", "id": "lab", "status": "completed", "intent": "order",
            "code": {"coding": [{"system": "http://loinc.org", "code": "2345-7"}]},
            "subject": {"reference": "Patient/pm"}, "authoredOn": "2024-03-11"}));
        res.push(json!({"resourceType": "EpisodeOfCare", "id": "em", "status": "finished",
            "patient": {"reference": "Patient/pm"}, "referralRequest": [{"reference": "ServiceRequest/sm"}],
            "period": {"start": "2024-04-02", "end": "2024-06-25"},
            "extension": [{"url": "https://crest-audit.org/fhir/StructureDefinition/delivery_mode", "valueCode": "home_based"}]}));
        let q = |v: f64, u: &str| json!({"value": v, "unit": u, "system": "http://unitsofmeasure.org", "code": u});
        let obs = |id: &str, date: &str, code: Value, value: (&str, Value)| {
            let mut o = json!({"resourceType": "Observation", "id": id, "status": "final", "code": code,
                "subject": {"reference": "Patient/pm"}, "effectiveDateTime": date});
            o[value.0] = value.1;
            o
        };
        let loinc = |c: &str| coded("http://loinc.org", c);
        let sct = |c: &str| coded("http://snomed.info/sct", c);
        let own = |m: &str| coded("https://crest-audit.org/fhir/CodeSystem/measure", m);
        // Assessment 1, before the core programme (two dates: the later one is the assessment).
        res.extend([
            obs(
                "w1",
                "2024-03-28",
                loinc("29463-7"),
                ("valueQuantity", q(154.0, "[lb_av]")),
            ),
            obs(
                "h1",
                "2024-03-28",
                loinc("8302-2"),
                ("valueQuantity", q(1.70, "m")),
            ),
            obs(
                "b1",
                "2024-03-28",
                loinc("39156-5"),
                ("valueQuantity", q(24.2, "kg/m2")),
            ),
            obs(
                "wc1",
                "2024-03-28",
                loinc("8280-0"),
                ("valueQuantity", q(38.0, "[in_i]")),
            ),
            obs(
                "ch1",
                "2024-03-29",
                loinc("14647-2"),
                ("valueQuantity", q(5.4, "mmol/L")),
            ),
            obs(
                "sm1",
                "2024-03-29",
                loinc("72166-2"),
                ("valueCodeableConcept", sct("77176002")),
            ),
            obs(
                "ha1",
                "2024-03-29",
                sct("401319005"),
                ("valueInteger", json!(9)),
            ),
            obs(
                "hd1",
                "2024-03-29",
                sct("401320004"),
                ("valueInteger", json!(7)),
            ),
            obs(
                "sw1",
                "2024-03-29",
                loinc("64098-7"),
                ("valueQuantity", q(420.0, "m")),
            ),
            obs(
                "is1",
                "2024-03-29",
                own("iswt_m"),
                ("valueQuantity", q(250.0, "m")),
            ),
            obs(
                "ac1",
                "2024-03-29",
                own("activity_minutes"),
                ("valueQuantity", q(90.0, "min/wk")),
            ),
            obs(
                "eq1",
                "2024-03-29",
                sct("736535009"),
                ("valueQuantity", json!({"value": 55})),
            ),
        ]);
        let mut bp1 = obs(
            "bp1",
            "2024-03-29",
            loinc("85354-9"),
            ("status", json!("final")),
        );
        bp1["component"] = json!([
            {"code": loinc("8480-6"), "valueQuantity": q(148.0, "mm[Hg]")},
            {"code": loinc("8462-4"), "valueQuantity": q(91.0, "mm[Hg]")},
        ]);
        res.push(bp1);
        // An older weight, further from the programme: not the one used.
        res.push(obs(
            "w0",
            "2024-03-15",
            loinc("29463-7"),
            ("valueQuantity", q(75.0, "kg")),
        ));
        // Assessment 2, after it; 23:30 UTC on 30 June is 1 July in London.
        res.push(obs(
            "w2",
            "2024-06-30T23:30:00Z",
            loinc("29463-7"),
            ("valueQuantity", q(68.2, "kg")),
        ));
        res.push(obs(
            "sm2",
            "2024-06-30T23:30:00Z",
            loinc("72166-2"),
            ("valueCodeableConcept", sct("517211000000106")),
        ));
        res.push(obs(
            "ha2",
            "2024-06-30T23:30:00Z",
            sct("401319005"),
            ("valueInteger", json!(5)),
        ));
        res.push(obs(
            "ch2",
            "2024-06-30T23:30:00Z",
            loinc("14647-2"),
            ("valueQuantity", q(158.0, "mg/dL")),
        ));
        // Something crest does not read at all.
        res.push(json!({"resourceType": "Medication", "id": "m1"}));
        res.push(json!({"resourceType": "AllergyIntolerance", "id": "a1", "patient": {"reference": "Patient/pm"}}));
        // Other ethnic category code systems, never and ex-smokers.
        n += 1;
        for (i, (system, code, letter, smoke, smoking)) in [
            (
                "https://fhir.hl7.org.uk/CodeSystem/UKCore-EthnicCategoryWales",
                "M",
                "M",
                "266919005",
                "never",
            ),
            // The retired census code system is not in the mapping: said, and left not known.
            (
                "https://fhir.hl7.org.uk/CodeSystem/UKCore-EthnicCategory",
                "CA",
                "",
                "8517006",
                "ex",
            ),
        ]
        .into_iter()
        .enumerate()
        {
            let k = n + i as u64;
            let (p, c) = (format!("p{k}"), format!("c{k}"));
            let mut pt = patient(&p, &nhs(k));
            pt["extension"] = json!([{"url": "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-EthnicCategory",
                "valueCodeableConcept": {"coding": [{"system": system, "code": code}]}}]);
            res.push(pt);
            res.push(
                json!({"resourceType": "Condition", "id": c, "code": sct("84114007"),
                "subject": {"reference": format!("Patient/{p}")}, "onsetDateTime": "2024-02-01"}),
            );
            res.push(json!({"resourceType": "ServiceRequest", "id": format!("s{k}"), "status": "active", "intent": "order",
                "subject": {"reference": format!("Patient/{p}")}, "authoredOn": "2024-02-03"}));
            let mut o = obs(
                &format!("o{k}"),
                "2024-02-05",
                loinc("72166-2"),
                ("valueCodeableConcept", sct(smoke)),
            );
            o["subject"] = json!({"reference": format!("Patient/{p}")});
            res.push(o);
            expect.push((format!("cond-{c}"), Col::Ethnicity, letter.into()));
            expect.push((format!("cond-{c}"), Col::A1Smoking, smoking.into()));
            expect.push((
                format!("cond-{c}"),
                Col::Assessment1Date,
                "2024-02-05".into(),
            ));
        }
        let file = write_json(&dir, "hospital.json", &bundle("transaction", res));
        let r = crest(
            &db,
            &["import", "--programme", "P001", file.to_str().unwrap()],
        );
        assert_eq!(r.code, 0, "{}: {}", db.backend, r.out);
        assert!(r.out.contains("0 rejected"), "{}", r.out);
        assert!(
            r.out.contains("https://fhir.hl7.org.uk/CodeSystem/UKCore-EthnicCategory|CA': this ethnic category is not an NHS Data Dictionary code crest knows"),
            "{}",
            r.out
        );
        assert!(
            r.out.contains("1 coded ServiceRequest(s) not linked to a Condition were not taken as the referral"),
            "{}",
            r.out
        );
        // Unknown resource types are counted, never an error.
        assert!(
            r.out.contains("2 resource(s) of types crest does not read were ignored: AllergyIntolerance (1), Medication (1)"),
            "{}",
            r.out
        );
        for (id, col, want) in &expect {
            assert_eq!(&text(&episode(&db, id), *col), want, "{id} {}", col.name());
        }
        // Hand-checked values of the measures episode (not read back from the mapping table).
        let m = episode(&db, "eoc-em");
        let want = [
            (Col::InitiatingEvent, "mi_nstemi"),
            (Col::EventDate, "2024-03-10"),
            (Col::ReferralDate, "2024-03-14"),
            (Col::Status, "completed"),
            (Col::DeliveryMode, "home_based"),
            (Col::CoreStartDate, "2024-04-02"),
            (Col::CoreEndDate, "2024-06-25"),
            (Col::Sex, "indeterminate"),
            (Col::Ethnicity, "H"),
            (Col::Postcode, "SE1 7EH"),
            (Col::FamilyName, "Okafor"),
            (Col::GivenName, "Ada Grace"),
            (Col::DateOfBirth, "1951-11-30"),
            (Col::Assessment1Date, "2024-03-29"),
            (Col::A1WeightKg, "69.85"),
            (Col::A1HeightCm, "170"),
            (Col::A1Bmi, "24.2"),
            (Col::A1WaistCm, "96.52"),
            (Col::A1SystolicBp, "148"),
            (Col::A1DiastolicBp, "91"),
            (Col::A1TotalCholesterol, "5.4"),
            (Col::A1Smoking, "current"),
            (Col::A1HadsAnxiety, "9"),
            (Col::A1HadsDepression, "7"),
            (Col::A1SixMwtM, "420"),
            (Col::A1IswtM, "250"),
            (Col::A1ActivityMinutes, "90"),
            (Col::A1Eq5dVas, "55"),
            (Col::Assessment2Date, "2024-07-01"),
            (Col::A2WeightKg, "68.2"),
            (Col::A2Smoking, "recent_quitter"),
            (Col::A2HadsAnxiety, "5"),
            (Col::A2TotalCholesterol, "4.09"),
        ];
        for (col, v) in want {
            assert_eq!(text(&m, col), v, "{} {}", db.backend, col.name());
        }
        // Re-importing the same bundle changes nothing.
        let r = crest(
            &db,
            &["import", "--programme", "P001", file.to_str().unwrap()],
        );
        assert!(r.out.contains(" 0 imported, 0 updated,"), "{}", r.out);
        assert!(r.out.contains("0 rejected"), "{}", r.out);
    }
}

/// Synthetic episodes through CSV, the store, FHIR and a new store.
#[test]
fn ten_thousand_synthetic_episodes_survive_the_round_trip() {
    for db in databases() {
        let dir = scratch_dir("fhir-rt");
        let syn = dir.join("syn");
        let fhir_dir = dir.join("ndjson");
        let s = crest(
            &db,
            &[
                "synth",
                "--programmes",
                "6",
                "--episodes",
                "10000",
                "--seed",
                "7",
                "--from",
                "2023-04-01",
                "--to",
                "2024-03-31",
                "--out",
                syn.to_str().unwrap(),
                "--fhir",
                fhir_dir.to_str().unwrap(),
            ],
        );
        assert_eq!(s.code, 0, "{}", s.out);
        let programmes = std::fs::read_to_string(syn.join("programmes.csv")).unwrap();
        let codes: Vec<String> = programmes
            .lines()
            .skip(1)
            .map(|l| l.split(',').next().unwrap().to_string())
            .collect();
        setup(&db, &dir, &programmes);
        let r = crest(&db, &["import", syn.join("episodes.csv").to_str().unwrap()]);
        assert!(r.out.contains("10000 imported"), "{}", r.out);
        // Each programme exported as a FHIR Bundle, imported into a fresh store.
        let fresh = if db.backend == "sqlite" {
            sqlite_db()
        } else {
            crest_store::testing::postgres_db().unwrap()
        };
        setup(&fresh, &dir, &programmes);
        let mut bundles = Vec::new();
        for p in &codes {
            let out = dir.join(format!("{p}.json"));
            let r = crest(
                &db,
                &[
                    "export",
                    "--programme",
                    p,
                    "--format",
                    "fhir",
                    "--out",
                    out.to_str().unwrap(),
                ],
            );
            assert_eq!(r.code, 0, "{}", r.out);
            let r = crest(&fresh, &["import", out.to_str().unwrap()]);
            assert_eq!(r.code, 0, "{}", r.out);
            assert!(r.out.contains("0 rejected"), "{}", r.out);
            bundles.push(out);
        }
        assert_eq!(count(&fresh), 10_000);
        // The synthetic generator's own NDJSON (every programme at once, one file per type).
        let ndjson = sqlite_db();
        setup(&ndjson, &dir, &programmes);
        let r = crest(&ndjson, &["import", fhir_dir.to_str().unwrap()]);
        assert!(
            r.out.contains("10000 episode(s): 10000 imported"),
            "{}",
            r.out
        );
        for p in &codes {
            let csv = |d: &TestDb, name: &str| {
                let out = dir.join(format!("{p}-{name}.csv"));
                let r = crest(
                    d,
                    &["export", "--programme", p, "--out", out.to_str().unwrap()],
                );
                assert_eq!(r.code, 0, "{}", r.out);
                std::fs::read_to_string(out).unwrap()
            };
            let original = csv(&db, "a");
            assert!(original.lines().count() > 500);
            assert_eq!(
                original,
                csv(&fresh, "b"),
                "{} programme {p}: the bundle round trip changed episodes",
                db.backend
            );
            assert_eq!(
                original,
                csv(&ndjson, "c"),
                "programme {p}: the NDJSON round trip changed episodes"
            );
        }
        // Importing an export again changes nothing.
        let r = crest(&fresh, &["import", bundles[0].to_str().unwrap()]);
        assert!(r.out.contains(" 0 imported, 0 updated,"), "{}", r.out);
        // The exports are logged as exports.
        let log = crest_store::open(&db.url)
            .unwrap()
            .access_log(1000)
            .unwrap();
        let exports = log.iter().filter(|e| e.action == "export").count();
        // Each programme once as FHIR, once as CSV for the comparison.
        assert_eq!(exports, codes.len() * 2, "{exports} exports logged");
        if db.backend == "sqlite" {
            validate_with_fhir_resources(&[bundles[0].clone()]);
            let mut files: Vec<PathBuf> = std::fs::read_dir(&fhir_dir)
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect();
            files.sort();
            validate_with_fhir_resources(&files);
        }
    }
}

/// The Python with fhir.resources 6.4 (R4 4.0.1 models): `CREST_FHIR_PYTHON`, else the venv
/// `.ci/run` makes.
fn fhir_python() -> Option<PathBuf> {
    let p = std::env::var("CREST_FHIR_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default())
                .join(".cache/crest-fhir-venv/bin/python")
        });
    p.exists().then_some(p)
}

fn validate_with_fhir_resources(files: &[PathBuf]) {
    let Some(python) = fhir_python() else {
        crest_store::testing::skip(
            "no FHIR validator (fhir.resources 6.4 in ~/.cache/crest-fhir-venv, as .ci/run installs it)",
            "CREST_REQUIRE_FHIR_VALIDATOR",
        );
        return;
    };
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fhir_validate.py");
    let o = Command::new(python)
        .arg(script)
        .args(files)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "fhir.resources refused crest's FHIR: {}{}",
        out,
        String::from_utf8_lossy(&o.stderr)
    );
    let counts: Value = serde_json::from_str(out.trim()).unwrap();
    for t in [
        "Patient",
        "Condition",
        "ServiceRequest",
        "EpisodeOfCare",
        "Observation",
        "Procedure",
    ] {
        assert!(
            counts[t].as_u64().unwrap_or(0) > 0,
            "no {t} validated: {out}"
        );
    }
    assert!(
        counts["patients_with_ethnic_category"].as_u64().unwrap() > 0,
        "{out}"
    );
}

#[test]
fn malformed_files_are_refused_or_reported_in_words() {
    for db in databases() {
        let dir = scratch_dir("fhir-bad");
        setup(&db, &dir, TWO);
        let refused = |name: &str, body: &str, says: &str| {
            let p = dir.join(name);
            std::fs::write(&p, body).unwrap();
            let r = crest(&db, &["import", "--programme", "P001", p.to_str().unwrap()]);
            assert_eq!(r.code, 1, "{name}: {}", r.out);
            assert!(
                r.out.contains("refused, nothing was stored"),
                "{name}: {}",
                r.out
            );
            assert!(
                r.out.contains(says),
                "{name} should say '{says}': {}",
                r.out
            );
            assert!(!r.out.contains("panicked"), "{}", r.out);
            assert_eq!(count(&db), 0, "{name}");
        };
        refused(
            "broken.json",
            "{\"resourceType\": \"Bundle\", \"type\": \"collection\", \"entry\": [",
            "is not valid JSON",
        );
        refused(
            "doc.json",
            &json!({"resourceType": "Bundle", "type": "document", "entry": []}).to_string(),
            "Bundle of type 'document'",
        );
        refused(
            "one.json",
            &serde_json::to_string_pretty(&patient("x", &nhs(1))).unwrap(),
            "holds one Patient resource, not a Bundle",
        );
        refused(
            "lines.ndjson",
            &format!("{}\n{{\"resourceType\": \"Observation\", \"id\": \"o1\", \"valueQuantity\": {{\"value\": \"heavy\"}}}}\nnot json\n", patient("x", &nhs(1))),
            "line 2 of lines.ndjson (Observation/o1) is not a FHIR resource of the shape crest reads",
        );
        refused(
            "array.json",
            "[{\"resourceType\": \"Patient\"}]",
            "is JSON but not a FHIR Bundle",
        );
        refused(
            "nothing.ndjson",
            &format!("{}\n", json!({"resourceType": "Medication", "id": "m"})),
            "holds no resources crest reads",
        );
        refused(
            "empty-episodes.ndjson",
            &format!("{}\n", patient("x", &nhs(1))),
            "holds no episodes",
        );

        // Reported per resource, in the same report as CSV rows; nothing half-stored.
        let sct = |c: &str| coded("http://snomed.info/sct", c);
        let p = |id: &str, n: u64| patient(id, &nhs(n));
        let cond = |id: &str, pat: &str, code: &str| {
            json!({"resourceType": "Condition", "id": id, "code": sct(code),
            "subject": {"reference": format!("Patient/{pat}")}, "onsetDateTime": "2024-04-01"})
        };
        let sr = |id: &str, pat: &str| {
            json!({"resourceType": "ServiceRequest", "id": id, "status": "active", "intent": "order",
            "subject": {"reference": format!("Patient/{pat}")}, "authoredOn": "2024-04-03"})
        };
        let mut no_nhs = p("nn", 2);
        no_nhs["identifier"] = json!([]);
        let mut twin = p("t2", 3);
        twin["birthDate"] = "1970-01-01".into();
        let res = vec![
            p("ok", 1),
            cond("c-ok", "ok", "22298006"),
            sr("s-ok", "ok"),
            // An unknown code: a warning naming the resource, never a guess.
            cond("c-unknown", "ok", "999999999"),
            no_nhs,
            cond("c-nn", "nn", "22298006"),
            sr("s-nn", "nn"),
            p("t1", 3),
            twin,
            cond("c-t1", "t1", "22298006"),
            sr("s-t1", "t1"),
            cond("c-ghost", "ghost", "22298006"),
            p("nd", 4),
            cond("c-nd", "nd", "22298006"),
            sr("s-nd", "nd"),
            json!({"resourceType": "Observation", "id": "o-nodate", "status": "final", "code": coded("http://loinc.org", "29463-7"),
                "subject": {"reference": "Patient/nd"}, "valueQuantity": {"value": 80, "unit": "kg", "code": "kg"}}),
            json!({"resourceType": "Observation", "id": "o-badunit", "status": "final", "code": coded("http://loinc.org", "29463-7"),
                "subject": {"reference": "Patient/ok"}, "effectiveDateTime": "2024-04-02", "valueQuantity": {"value": 80, "unit": "stone", "code": "[stone_av]"}}),
            // No EpisodeOfCare: the rehabilitation Encounter gives the core start (here before
            // the referral) and the status; FHIR has no place for the delivery mode.
            p("en", 5),
            cond("c-en", "en", "22298006"),
            sr("s-en", "en"),
            json!({"resourceType": "Encounter", "id": "e-en", "status": "in-progress", "class": {"code": "AMB"},
                "subject": {"reference": "Patient/en"}, "basedOn": [{"reference": "ServiceRequest/s-en"}],
                "period": {"start": "2024-04-02T10:00:00+01:00"}}),
        ];
        let file = write_json(&dir, "mixed.json", &bundle("searchset", res));
        let errors = dir.join("errors.csv");
        let r = crest(
            &db,
            &[
                "import",
                "--errors",
                errors.to_str().unwrap(),
                file.to_str().unwrap(),
            ],
        );
        assert_eq!(r.code, 1, "{}", r.out);
        assert!(r.out.contains("nothing was stored"), "{}", r.out);
        assert_eq!(count(&db), 0);
        for says in [
            "Condition/c-unknown: code http://snomed.info/sct|999999999 is not an initiating event in crest's mapping",
            "Patient/nn identifier (nhs_number): no NHS number",
            "have the same NHS number but different dates of birth",
            "Condition/c-ghost: its subject refers to Patient/ghost, which is not in the file",
            "Observation/o-nodate: no effectiveDateTime",
            "Observation/o-badunit valueQuantity (a1_weight_kg)",
            "cannot be converted to kg",
            "Encounter/e-en period.start (core_start_date)",
            "column delivery_mode",
        ] {
            assert!(r.out.contains(says), "should say '{says}': {}", r.out);
        }
        let e = std::fs::read_to_string(&errors).unwrap();
        assert!(e.contains("Patient/nn identifier (nhs_number)"), "{e}");
        // No identifier reaches the terminal in a message about a conflict.
        assert!(!r.out.contains(&nhs(3)), "{}", r.out);
        // With --skip-invalid only the good episode is stored.
        let r = crest(
            &db,
            &[
                "import",
                "--programme",
                "P001",
                "--skip-invalid",
                file.to_str().unwrap(),
            ],
        );
        assert!(r.out.contains("1 imported"), "{}", r.out);
        assert_eq!(count(&db), 1);
    }
}

fn peak_rss_mib(child: &mut std::process::Child) -> (std::process::ExitStatus, f64) {
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak_kib = 0u64;
    loop {
        if let Ok(s) = std::fs::read_to_string(&status_file) {
            if let Some(kib) = s
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            {
                peak_kib = peak_kib.max(kib);
            }
        }
        if let Some(status) = child.try_wait().unwrap() {
            return (status, peak_kib as f64 / 1024.0);
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// A 200 MB NDJSON file of resources crest does not map (a hospital's laboratory results,
/// say) around a few episodes: read as a stream, its size costs no memory; and a large file of
/// resources crest maps costs well under the file's size.
#[test]
fn a_200_mb_ndjson_file_is_streamed() {
    let dir = scratch_dir("fhir-big");
    let path = dir.join("export.ndjson");
    {
        use std::io::Write;
        let mut w = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        for i in 0..20u64 {
            writeln!(w, "{}", patient(&format!("p{i}"), &nhs(i))).unwrap();
            writeln!(w, "{}", json!({"resourceType": "Condition", "id": format!("c{i}"), "code": coded("http://snomed.info/sct", "22298006"),
                "subject": {"reference": format!("Patient/p{i}")}, "onsetDateTime": "2024-04-01"})).unwrap();
            writeln!(w, "{}", json!({"resourceType": "ServiceRequest", "id": format!("s{i}"), "status": "active", "intent": "order",
                "subject": {"reference": format!("Patient/p{i}")}, "authoredOn": "2024-04-03"})).unwrap();
        }
        let note = "x".repeat(400);
        let mut bytes = 0usize;
        let mut i = 0u64;
        while bytes < 200 << 20 {
            i += 1;
            let line = json!({"resourceType": "Observation", "id": format!("lab{i}"), "status": "final",
                "code": coded("http://loinc.org", "2345-7"), "subject": {"reference": format!("Patient/p{}", i % 20)},
                "effectiveDateTime": "2024-04-02", "valueQuantity": {"value": 5.1, "unit": "mmol/L"}, "note": [{"text": note}]})
            .to_string();
            bytes += line.len() + 1;
            writeln!(w, "{line}").unwrap();
        }
    }
    assert!(std::fs::metadata(&path).unwrap().len() >= 200 << 20);
    let db = sqlite_db();
    setup(&db, &dir, TWO);
    let mut child = Command::new(env!("CARGO_BIN_EXE_crest"))
        .args([
            "--db",
            &db.url,
            "import",
            "--programme",
            "P001",
            path.to_str().unwrap(),
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut out = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut out).unwrap();
        out
    });
    let (status, peak) = peak_rss_mib(&mut child);
    let out = reader.join().unwrap();
    assert!(status.success(), "{out}");
    assert!(out.contains("20 episode(s): 20 imported"), "{out}");
    assert!(
        out.contains("Observation(s) have codes crest does not map and were not used"),
        "{out}"
    );
    println!("peak memory {peak:.0} MiB for a 200 MiB NDJSON file");
    assert!(peak < 80.0, "peak memory {peak:.0} MiB for a 200 MiB file");
    let _ = std::fs::remove_file(&path);
}

/// Many warnings are summarised by dataset field, one example each, as for a CSV: a FHIR
/// warning names its resource, and the summary once listed every resource as a column of its
/// own ("Observation/w1 valueQuantity (a1_weight_kg): 1", 25 times over).
#[test]
fn many_warnings_are_summarised_by_field_naming_one_resource() {
    let db = sqlite_db();
    let dir = scratch_dir("fhir-warnings");
    setup(&db, &dir, TWO);
    let mut lines = Vec::new();
    for i in 1..=25 {
        let p = format!("Patient/p{i}");
        let c = format!("Condition/c{i}");
        lines.push(patient(&format!("p{i}"), &nhs(i)));
        lines.push(
            json!({"resourceType": "Condition", "id": format!("c{i}"), "subject": {"reference": p},
            "code": coded("http://snomed.info/sct", "401314000"), "onsetDateTime": "2025-01-10"}),
        );
        lines.push(json!({"resourceType": "ServiceRequest", "id": format!("s{i}"), "subject": {"reference": p},
            "reasonReference": [{"reference": c}], "authoredOn": "2025-01-20"}));
        lines.push(json!({"resourceType": "Observation", "id": format!("w{i}"), "subject": {"reference": p},
            "code": coded("http://loinc.org", "29463-7"), "effectiveDateTime": "2025-02-01",
            "valueQuantity": {"value": 39, "unit": "kg", "system": "http://unitsofmeasure.org", "code": "kg"}}));
    }
    let file = dir.join("warned.ndjson");
    let text: Vec<String> = lines.iter().map(Value::to_string).collect();
    std::fs::write(&file, text.join("\n") + "\n").unwrap();
    let r = crest(
        &db,
        &["import", "--programme", "P001", file.to_str().unwrap()],
    );
    assert_eq!(r.code, 0, "{}", r.out);
    assert!(r.out.contains("25 imported"), "{}", r.out);
    assert!(r.out.contains("25 warning(s) in 1 column(s)"), "{}", r.out);
    assert!(
        r.out.contains(
            "    a1_weight_kg: 25 (e.g. episode 1, Observation/w1 valueQuantity, value '39'"
        ),
        "{}",
        r.out
    );
}
