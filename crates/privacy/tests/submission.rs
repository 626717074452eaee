//! National submissions end to end on SQLite and PostgreSQL: a local store builds, the
//! national store receives. Opt-outs, minimisation, pseudonyms, tombstones, refusals, and
//! scans proving no identifier reaches a submission or the national store.
#![allow(clippy::unwrap_used)]

use crest_core::governance::Agreement;
use crest_core::{Date, Period};
use crest_ingest::{import_file, ImportOptions};
use crest_privacy::submission::{
    build, receive, BuildRequest, NdooCheck, NdooList, NDOO_MAX_AGE_DAYS,
};
use crest_privacy::{Key, SigningKey};
use crest_store::national::Received;
use crest_store::testing::{databases, scratch_dir, TestDb};
use crest_store::NationalStore;

fn d(s: &str) -> Date {
    Date::parse_iso(s).unwrap()
}

const TODAY: &str = "2025-06-01";

/// Identifiers of the synthetic patients: none may ever leave the local store.
const IDENTIFIERS: &[&str] = &[
    "9434765919",
    "943 476 5919",
    "9434765870",
    "943 476 5870",
    "9434765862",
    "943 476 5862",
    "Zanzibarson",
    "Quillon",
    "Yarrowby",
    "Tiberia",
    "1960-06-15",
    "15/06/1960",
    "1955-01-01",
    "SE1 7EH",
    "SE17EH",
    "HOSP-LOCAL-7731",
    "EPI-LOCAL-0001",
];

fn local(db: &TestDb) -> Box<dyn crest_store::Store> {
    let mut s = crest_store::open(&db.url).unwrap();
    s.migrate().unwrap();
    let progs: Vec<_> = [
        ["P001", "One", "england", "London", "nurse", "mi"],
        ["P002", "Two", "wales", "North", "nurse", "mi"],
    ]
    .into_iter()
    .map(|c| crest_core::Programme::parse(c).unwrap())
    .collect();
    s.upsert_programmes(&progs).unwrap();
    let f = scratch_dir("sub").join("e.csv");
    std::fs::write(
        &f,
        "programme_code,episode_id,nhs_number,local_patient_id,family_name,given_name,date_of_birth,postcode,sex,initiating_event,treatment,event_date,referral_date,status,national_opt_out,assessment1_date,a1_hads_anxiety\n\
         P001,EPI-LOCAL-0001,9434765919,HOSP-LOCAL-7731,Zanzibarson,Tiberia,1960-06-15,SE1 7EH,female,mi_nstemi,pci,2024-04-01,2024-04-03,referred,,2024-04-20,11\n\
         P001,E2,9434765870,,Quillon,,1955-01-01,,male,mi_stemi,pci,2024-05-01,2024-05-03,referred,true,,\n\
         P001,E3,9434765870,,Quillon,,1955-01-01,,male,heart_failure,medical,2024-09-01,2024-09-03,referred,,,\n\
         P001,E4,9434765862,,Yarrowby,,1955-01-01,,male,mi_stemi,pci,2024-06-01,2024-06-03,referred,,,\n\
         P002,X1,9434765919,,Zanzibarson,,1960-06-15,SE1 7EH,female,mi_nstemi,pci,2024-04-01,2024-04-05,referred,,,\n",
    )
    .unwrap();
    let sum = import_file(
        s.as_mut(),
        &f,
        &ImportOptions::new(d(TODAY)),
        None,
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(sum.imported, 5, "{:?}", sum.errors);
    s.put_agreement(&Agreement {
        id: "ncpcr-2025".into(),
        recipient: "National audit of cardiac rehabilitation".into(),
        legal_basis: "CAG 99/CAG/0001".into(),
        fields: None,
        opt_out_exempt: false,
        valid_from: d("2025-01-01"),
        valid_to: d("2025-12-31"),
    })
    .unwrap();
    s
}

/// A programme's signing key, the same for the same code.
fn signing(code: &str) -> &'static SigningKey {
    let mut secret = [7u8; 32];
    secret[..code.len()].copy_from_slice(code.as_bytes());
    Box::leak(Box::new(SigningKey::from_secret(code, secret)))
}

/// Registers the programmes' signing keys nationally.
fn register_keys(n: &mut NationalStore) {
    for p in ["P001", "P002"] {
        crest_privacy::signing::register(n, &signing(p).public_key(), p, (d("2000-01-01"), None))
            .unwrap();
    }
}

fn ndoo(dir: &std::path::Path, checked: &str, numbers: &[&str]) -> NdooCheck {
    let f = dir.join(format!("ndoo-{checked}.csv"));
    let mut text = String::from("nhs_number,checked_on\n");
    for n in numbers {
        text.push_str(&format!("{n},{checked}\n"));
    }
    std::fs::write(&f, text).unwrap();
    NdooCheck::read(&f, NdooList::OptedOut).unwrap()
}

fn request<'a>(
    programme: &'a str,
    key: &'a Key,
    ndoo: Option<&'a NdooCheck>,
    now: &str,
) -> BuildRequest<'a> {
    BuildRequest {
        programme,
        period: Period {
            from: d("2024-04-01"),
            to: d("2025-03-31"),
        },
        key,
        signing_key: signing(programme),
        ndoo,
        ndoo_max_age_days: NDOO_MAX_AGE_DAYS,
        today: d(TODAY),
        now: now.into(),
    }
}

/// Every byte of the national store, as text, for the identifier scan.
fn national_text(db: &TestDb) -> String {
    if db.backend == "postgres" {
        let mut c = postgres::Client::connect(&db.url, postgres::NoTls).unwrap();
        let mut out = String::new();
        for t in ["programmes", "national_submissions", "national_episodes"] {
            for r in c.query(&format!("SELECT t::text FROM {t} t"), &[]).unwrap() {
                out.push_str(&r.get::<_, String>(0));
            }
        }
        out
    } else {
        let path = db.url.trim_start_matches("sqlite:");
        let mut bytes = std::fs::read(path).unwrap();
        bytes.extend(std::fs::read(format!("{path}-wal")).unwrap_or_default());
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

#[test]
fn submissions_leave_out_opt_outs_carry_no_identifiers_and_link_patients() {
    let (sub_key, national_key) = (Key::from_secret([1; 32]), Key::from_secret([2; 32]));
    for (ldb, ndb) in databases().into_iter().zip(databases()) {
        let dir = scratch_dir("sub-run");
        let mut s = local(&ldb);

        // Fail closed: an English programme needs a recent opt-out check result.
        let err = build(
            s.as_mut(),
            &request("P001", &sub_key, None, "2025-06-01T10:00:00Z"),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("National Data Opt-out applies") && err.contains("attach"),
            "{err}"
        );
        let stale = ndoo(&dir, "2025-04-01", &["9434765862"]);
        let err = build(
            s.as_mut(),
            &request("P001", &sub_key, Some(&stale), "2025-06-01T10:00:00Z"),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("61 days old"), "{err}");

        let fresh = ndoo(&dir, "2025-05-20", &["943 476 5862"]);
        let p1 = build(
            s.as_mut(),
            &request("P001", &sub_key, Some(&fresh), "2025-06-01T10:00:00Z"),
        )
        .unwrap();
        assert_eq!(p1.sent, ["EPI-LOCAL-0001"], "{}", ldb.backend);
        assert_eq!(
            (p1.left_out_own_request, p1.left_out_ndoo),
            (2, 1),
            "both of the patient's episodes"
        );
        s.record_sent("P001", &p1.sent, &p1.withdrawn).unwrap();
        // Wales: no National Data Opt-out.
        let p2 = build(
            s.as_mut(),
            &request("P002", &sub_key, None, "2025-06-01T10:00:00Z"),
        )
        .unwrap();
        assert_eq!(p2.sent, ["X1"]);

        // Minimised and pseudonymised: no identifier in either file, age instead of birth date.
        for b in [&p1, &p2] {
            let text = String::from_utf8(b.bytes.clone()).unwrap();
            for id in IDENTIFIERS {
                assert!(!text.contains(id), "{id} in a submission: {text}");
            }
            assert!(
                text.contains("\"age_at_event\":63") || text.contains("\"age_at_event\":64"),
                "{text}"
            );
            assert!(text.contains(
                &sub_key.patient_key(&crest_core::NhsNumber::parse("9434765919").unwrap())
            ));
            assert_eq!(b.manifest["key_id"], sub_key.id());
        }

        // The national side.
        let mut n = NationalStore::open(&ndb.url).unwrap();
        assert_eq!(
            n.migrate().unwrap(),
            crest_store::national::NATIONAL_SCHEMA_VERSION
        );
        assert_eq!(n.migrate().unwrap(), 0);
        let cols = n.columns().unwrap();
        for banned in [
            "nhs_number",
            "family_name",
            "given_name",
            "date_of_birth",
            "postcode",
            "local_patient_id",
            "episode_id",
        ] {
            assert!(
                !cols.iter().any(|c| c.ends_with(&format!(".{banned}"))),
                "{banned} in {cols:?}"
            );
        }
        assert!(cols.contains(&"national_episodes.age_at_event".to_string()));
        let err = receive(
            &mut n,
            &p1.bytes,
            &sub_key,
            &national_key,
            "2025-06-02T09:00:00Z",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("not registered"), "{err}");
        n.upsert_programmes(&s.programmes().unwrap()).unwrap();
        let err = receive(&mut n, &p1.bytes, &sub_key, &national_key, "now")
            .unwrap_err()
            .to_string();
        assert!(err.contains("has no signing key registered"), "{err}");
        register_keys(&mut n);

        // Refusals store nothing.
        let mut tampered = p1.bytes.clone();
        let last = tampered.len() - 3;
        tampered[last] ^= 1;
        let err = receive(&mut n, &tampered, &sub_key, &national_key, "now")
            .unwrap_err()
            .to_string();
        assert!(err.contains("checksum"), "{err}");
        let err = receive(
            &mut n,
            &p1.bytes,
            &Key::from_secret([9; 32]),
            &national_key,
            "now",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("keyed with"), "{err}");
        let err = receive(
            &mut n,
            &p1.bytes[..p1.bytes.len() - 10],
            &sub_key,
            &national_key,
            "now",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("checksum"), "truncated: {err}");
        let text = String::from_utf8(p1.bytes.clone()).unwrap();
        let wrong_version =
            text.replacen("\"dataset_version\":\"1\"", "\"dataset_version\":\"0\"", 1);
        let err = receive(
            &mut n,
            wrong_version.as_bytes(),
            &sub_key,
            &national_key,
            "now",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("dataset version 0"), "{err}");
        let wrong_programme = text.replacen(
            "\"programme_code\":\"P001\"",
            "\"programme_code\":\"P002\"",
            1,
        );
        // P001's own file relabelled as P002's: its signature is P001's, so it is refused.
        let err = receive(
            &mut n,
            wrong_programme.as_bytes(),
            &sub_key,
            &national_key,
            "now",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("signature does not verify against programme P002"),
            "{err}"
        );
        // Re-signed by P001 with P002 named: P001's key is not P002's.
        let mut relabelled: serde_json::Value =
            serde_json::from_str(wrong_programme.lines().next().unwrap()).unwrap();
        let lines: Vec<serde_json::Value> = wrong_programme
            .lines()
            .skip(1)
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        relabelled["created_at"] = "2025-06-03T00:00:00Z".into();
        let err = receive(
            &mut n,
            &forged_by("P001", &relabelled, &lines),
            &sub_key,
            &national_key,
            "now",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("signature does not verify against programme P002"),
            "{err}"
        );
        // An unsigned file is refused.
        let unsigned = text.replacen(",\"signature\":\"", ",\"signature_was\":\"", 1);
        let err = receive(&mut n, unsigned.as_bytes(), &sub_key, &national_key, "now")
            .unwrap_err()
            .to_string();
        assert!(err.contains("not signed"), "{err}");
        // Neither key's secret is ever in a submission.
        for k in [&sub_key, &national_key] {
            let file = k.to_file_text();
            let secret = file
                .lines()
                .find_map(|l| l.strip_prefix("secret: "))
                .unwrap();
            assert!(!text.contains(secret));
        }
        assert!(
            n.episodes(None).unwrap().is_empty(),
            "refusals stored nothing"
        );

        let got = receive(
            &mut n,
            &p1.bytes,
            &sub_key,
            &national_key,
            "2025-06-02T09:00:00Z",
        )
        .unwrap();
        assert_eq!(
            got,
            Received::Stored {
                episodes: 1,
                replaced: 0,
                deleted: 0
            },
            "{}",
            ndb.backend
        );
        assert_eq!(
            receive(
                &mut n,
                &p1.bytes,
                &sub_key,
                &national_key,
                "2025-06-02T09:05:00Z"
            )
            .unwrap(),
            Received::AlreadyReceived
        );
        receive(
            &mut n,
            &p2.bytes,
            &sub_key,
            &national_key,
            "2025-06-02T09:10:00Z",
        )
        .unwrap();
        let eps = n.episodes(None).unwrap();
        assert_eq!(eps.len(), 2);
        // Re-keyed nationally: the submitted keys are not what is stored; the patient links.
        let submitted = sub_key.patient_key(&crest_core::NhsNumber::parse("9434765919").unwrap());
        assert!(eps
            .iter()
            .all(|e| e.patient_key == national_key.rekey(&submitted)));
        assert!(!national_text(&ndb).contains(&submitted));
        // The KPI facts read back nationally are the local ones, for what was sent.
        let progs = s.programmes().unwrap();
        let (from, to) = (d("2024-04-01"), d("2025-03-31"));
        let national_facts = n.kpi_episodes(from, to, &progs).unwrap();
        let mut local_facts = s.kpi_episodes(from, to, &progs).unwrap();
        local_facts.retain(|e| e.programme == 1 || e.referral_date == d("2024-04-03"));
        local_facts.sort_by_key(|e| (e.programme, e.referral_date));
        let mut national_sorted = national_facts.clone();
        national_sorted.sort_by_key(|e| (e.programme, e.referral_date));
        assert_eq!(national_sorted, local_facts, "{}", ndb.backend);
        let dups = n.cross_programme_duplicates(None).unwrap();
        assert_eq!(dups.len(), 1);
        assert_eq!(dups[0].programmes, ["P001", "P002"]);
        // What a receipt reports: the duplicates involving the programme received.
        for p in ["P001", "P002"] {
            assert_eq!(n.cross_programme_duplicates(Some(p)).unwrap(), dups, "{p}");
        }
        assert!(n
            .cross_programme_duplicates(Some("P999"))
            .unwrap()
            .is_empty());
        assert_eq!(
            eps[0].record.get(crest_core::Col::A1HadsAnxiety).clone(),
            if eps[0].record.text(crest_core::Col::ProgrammeCode) == Some("P001") {
                crest_core::Value::Int(11)
            } else {
                crest_core::Value::Null
            }
        );

        // The patient withdraws: the next submission tombstones the episode; it leaves the
        // national store, replacing the older submission in one go.
        let mut e1 = s.episode("P001", "EPI-LOCAL-0001").unwrap().unwrap();
        e1.set(
            crest_core::Col::NationalOptOut,
            crest_core::Value::Bool(true),
        );
        let mut tx = s.begin().unwrap();
        tx.update(&e1).unwrap();
        tx.commit().unwrap();
        let again = build(
            s.as_mut(),
            &request("P001", &sub_key, Some(&fresh), "2025-06-03T10:00:00Z"),
        )
        .unwrap();
        assert_eq!(
            (again.sent.len(), again.withdrawn.as_slice()),
            (0, ["EPI-LOCAL-0001".to_string()].as_slice())
        );
        s.record_sent("P001", &again.sent, &again.withdrawn)
            .unwrap();
        let got = receive(
            &mut n,
            &again.bytes,
            &sub_key,
            &national_key,
            "2025-06-03T11:00:00Z",
        )
        .unwrap();
        assert_eq!(
            got,
            Received::Stored {
                episodes: 0,
                replaced: 1,
                deleted: 0
            }
        );
        assert!(n.episodes(Some("P001")).unwrap().is_empty());
        // The first submission sent again changes nothing.
        let err = receive(&mut n, &p1.bytes, &sub_key, &national_key, "later");
        assert!(matches!(err, Ok(Received::AlreadyReceived)));

        // Nothing identifying anywhere in the national store.
        let all = national_text(&ndb);
        for id in IDENTIFIERS {
            assert!(
                !all.contains(id),
                "{id} in the national store ({})",
                ndb.backend
            );
        }
    }
}

#[test]
fn no_agreement_in_force_means_no_submission() {
    let key = Key::from_secret([1; 32]);
    for db in databases() {
        let mut s = local(&db);
        let mut a = s.agreements().unwrap().remove(0);
        a.valid_to = d("2025-05-31");
        s.put_agreement(&a).unwrap();
        let err = build(s.as_mut(), &request("P002", &key, None, "now"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("no data sharing agreement is in force on 2025-06-01"),
            "{err}"
        );
        // Only approved fields leave.
        a.valid_to = d("2025-12-31");
        a.fields = Some(vec![
            "referral_date".into(),
            "sex".into(),
            "initiating_event".into(),
            "treatment".into(),
            "event_date".into(),
            "status".into(),
        ]);
        s.put_agreement(&a).unwrap();
        let b = build(s.as_mut(), &request("P002", &key, None, "now")).unwrap();
        let text = String::from_utf8(b.bytes).unwrap();
        assert!(
            !text.contains("age_at_event") && text.contains("\"sex\":\"female\""),
            "{text}"
        );
    }
}

/// A new national store with the local store's programmes registered.
fn national_store(ndb: &TestDb, s: &mut dyn crest_store::Store) -> NationalStore {
    let mut n = NationalStore::open(&ndb.url).unwrap();
    n.migrate().unwrap();
    n.upsert_programmes(&s.programmes().unwrap()).unwrap();
    register_keys(&mut n);
    n
}

/// Builds a programme's submission, records it as sent and receives it nationally, as a
/// programme and the audit would in turn.
fn submit(
    s: &mut dyn crest_store::Store,
    n: &mut NationalStore,
    req: &BuildRequest,
    national_key: &Key,
    received_at: &str,
) -> (crest_privacy::submission::Built, Received) {
    let built = build(s, req).unwrap();
    s.record_sent(req.programme, &built.sent, &built.withdrawn)
        .unwrap();
    let got = receive(n, &built.bytes, req.key, national_key, received_at).unwrap();
    (built, got)
}

/// An episode whose referral moved into the next period arrives in that period's submission
/// while the older period's submission still holds it: it is held once, under the newer one,
/// and replacing the older period's submission later leaves it alone. (On PostgreSQL the
/// receipt first tries a straight copy, which meets the held key and falls back to merging.)
#[test]
fn an_episode_moving_period_is_held_once_under_its_newest_submission() {
    let (sub_key, national_key) = (Key::from_secret([1; 32]), Key::from_secret([2; 32]));
    for (ldb, ndb) in databases().into_iter().zip(databases()) {
        let dir = scratch_dir("sub-move");
        let mut s = local(&ldb);
        let nobody = ndoo(&dir, "2025-05-20", &["9000000009"]);
        let mut n = national_store(&ndb, s.as_mut());
        let this_year = |now: &str| request("P001", &sub_key, Some(&nobody), now);
        let next_year = |now: &str| BuildRequest {
            period: Period {
                from: d("2025-04-01"),
                to: d("2026-03-31"),
            },
            ..this_year(now)
        };

        let (first, _) = submit(
            s.as_mut(),
            &mut n,
            &this_year("2025-06-01T10:00:00Z"),
            &national_key,
            "2025-06-01T11:00:00Z",
        );
        assert_eq!(first.sent, ["E4", "EPI-LOCAL-0001"], "{}", ldb.backend);

        // A store made before national migrations 5 and 6 keeps its episodes through them.
        ndb.execute_raw(if ndb.backend == "postgres" {
            "CREATE INDEX national_episodes_submission ON national_episodes (submission); \
             ALTER TABLE national_episodes ADD FOREIGN KEY (submission) REFERENCES national_submissions (sha256); \
             ALTER TABLE api_tokens DROP COLUMN expires_at; ALTER TABLE api_tokens DROP COLUMN revoked_at; \
             DROP TABLE research_projects; DROP TRIGGER national_kpi_facts_insert ON national_episodes; \
             DROP TRIGGER national_kpi_facts_update ON national_episodes; \
             DROP TRIGGER national_kpi_facts_delete ON national_episodes; \
             DROP FUNCTION national_kpi_facts_changed(); DROP TABLE national_kpi_facts; \
             DROP TABLE programme_signing_keys; DROP TABLE expected_patients; \
             DELETE FROM crest_national_migrations WHERE version >= 5"
        } else {
            "CREATE INDEX national_episodes_submission ON national_episodes (submission); \
             ALTER TABLE api_tokens DROP COLUMN expires_at; ALTER TABLE api_tokens DROP COLUMN revoked_at; \
             DROP TABLE research_projects; DROP TRIGGER national_kpi_facts_insert; DROP TRIGGER national_kpi_facts_update; \
             DROP TRIGGER national_kpi_facts_delete; DROP TABLE national_kpi_facts; \
             DROP TABLE programme_signing_keys; DROP TABLE expected_patients; \
             DELETE FROM crest_national_migrations WHERE version >= 5"
        });
        drop(n);
        let mut n = NationalStore::open(&ndb.url).unwrap();
        assert_eq!(n.migrate().unwrap(), 6);
        register_keys(&mut n);
        assert_facts_are_the_rows(&mut n);
        assert_eq!(
            n.episodes(Some("P001")).unwrap().len(),
            2,
            "{}",
            ndb.backend
        );
        assert_eq!(
            ndb.query_i64(if ndb.backend == "postgres" {
                "SELECT count(*) FROM pg_indexes WHERE indexname = 'national_episodes_submission'"
            } else {
                "SELECT count(*) FROM sqlite_master WHERE name = 'national_episodes_submission'"
            }),
            0
        );

        // E4's referral was mis-keyed: it belongs to the next year.
        let mut e4 = s.episode("P001", "E4").unwrap().unwrap();
        e4.set(
            crest_core::Col::ReferralDate,
            crest_core::Value::Date(d("2025-04-03")),
        );
        let mut tx = s.begin().unwrap();
        tx.update(&e4).unwrap();
        tx.commit().unwrap();
        let (moved, got) = submit(
            s.as_mut(),
            &mut n,
            &next_year("2025-06-02T10:00:00Z"),
            &national_key,
            "2025-06-02T11:00:00Z",
        );
        assert_eq!(moved.sent, ["E4"]);
        assert_eq!(
            got,
            Received::Stored {
                episodes: 1,
                replaced: 0,
                deleted: 0
            },
            "{}",
            ndb.backend
        );
        let held = n.episodes(Some("P001")).unwrap();
        assert_eq!(held.len(), 2, "E4 held once ({})", ndb.backend);
        let e4_key = national_key.rekey(&sub_key.episode_key("P001", "E4"));
        let e4_held = held.iter().find(|e| e.episode_key == e4_key).unwrap();
        assert_eq!(
            e4_held.record.date(crest_core::Col::ReferralDate),
            Some(d("2025-04-03"))
        );
        assert_eq!(
            ndb.query_i64(&format!(
                "SELECT count(*) FROM national_episodes WHERE episode_key = '{e4_key}' AND submission = '{}'",
                hex::encode(<sha2::Sha256 as sha2::Digest>::digest(
                    &moved.bytes[..moved.bytes.iter().position(|b| *b == b'\n').unwrap()]
                ))
            )),
            1
        );

        // A corrected submission for the first year replaces that year's rows only.
        let (again, got) = submit(
            s.as_mut(),
            &mut n,
            &this_year("2025-06-03T10:00:00Z"),
            &national_key,
            "2025-06-03T11:00:00Z",
        );
        assert_eq!(again.sent, ["EPI-LOCAL-0001"]);
        assert_eq!(
            got,
            Received::Stored {
                episodes: 1,
                replaced: 1,
                deleted: 0
            }
        );
        assert_eq!(
            n.episodes(Some("P001")).unwrap().len(),
            2,
            "{}",
            ndb.backend
        );
        // Every row belongs to a submission still held as current.
        assert_eq!(
            ndb.query_i64(
                "SELECT count(*) FROM national_episodes WHERE submission NOT IN \
                 (SELECT sha256 FROM national_submissions WHERE current_for IS NOT NULL)"
            ),
            0,
            "{}",
            ndb.backend
        );
        assert_facts_are_the_rows(&mut n);
    }
}

/// The national store's packed KPI facts are exactly its rows' (after episodes were replaced,
/// moved between submissions or deleted): the KPIs never read a stale copy.
fn assert_facts_are_the_rows(n: &mut NationalStore) {
    let programmes = n.programmes().unwrap();
    let (from, to) = (d("2000-01-01"), d("2099-12-31"));
    let mut packed = n.kpi_episodes(from, to, &programmes).unwrap();
    let mut rows: Vec<crest_core::KpiEpisode> = n
        .episodes(None)
        .unwrap()
        .iter()
        .filter_map(|e| {
            let code = e.record.text(crest_core::Col::ProgrammeCode)?;
            let p = programmes.iter().position(|p| p.code == code)?;
            crest_core::KpiEpisode::of_record(&e.record, p)
        })
        .collect();
    let key =
        |e: &crest_core::KpiEpisode| (e.programme, e.referral_date, e.core_start, e.assessment1);
    packed.sort_by_key(key);
    rows.sort_by_key(key);
    assert!(!rows.is_empty());
    assert_eq!(packed, rows);
}

/// privacy.md, "Durability": a receipt's log entry is written in the receipt's transaction, so
/// with the national log unwritable nothing is stored.
#[test]
fn a_receipt_is_never_stored_without_its_log_entry() {
    let (sub_key, national_key) = (Key::from_secret([1; 32]), Key::from_secret([2; 32]));
    for (ldb, ndb) in databases().into_iter().zip(databases()) {
        let mut s = local(&ldb);
        let mut n = national_store(&ndb, s.as_mut());
        let b = build(
            s.as_mut(),
            &request("P002", &sub_key, None, "2025-06-01T10:00:00Z"),
        )
        .unwrap();
        ndb.execute_raw(if ndb.backend == "postgres" {
            "CREATE FUNCTION crest_test_no_log() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'the log is broken'; END $$ LANGUAGE plpgsql; \
             CREATE TRIGGER no_log BEFORE INSERT ON access_log FOR EACH ROW EXECUTE FUNCTION crest_test_no_log()"
        } else {
            "CREATE TRIGGER no_log BEFORE INSERT ON access_log BEGIN SELECT RAISE(ABORT, 'the log is broken'); END"
        });
        let got = crest_privacy::submission::receive_logged(
            &mut n,
            &b.bytes,
            (&sub_key, &national_key),
            ("analyst", "national_analyst"),
            "p002.jsonl",
        );
        assert!(got.is_err(), "{got:?}");
        assert!(
            n.episodes(None).unwrap().is_empty(),
            "{}: stored without a log entry",
            ndb.backend
        );
        ndb.execute_raw(if ndb.backend == "postgres" {
            "DROP TRIGGER no_log ON access_log"
        } else {
            "DROP TRIGGER no_log"
        });
        let got = crest_privacy::submission::receive_logged(
            &mut n,
            &b.bytes,
            (&sub_key, &national_key),
            ("analyst", "national_analyst"),
            "p002.jsonl",
        )
        .unwrap();
        assert!(matches!(got, Received::Stored { episodes: 1, .. }));
        let log = n.access_log(10).unwrap();
        assert_eq!(
            log[0].detail,
            "1 stored, 0 replaced, 0 deleted by tombstones"
        );
        assert_eq!(
            (log[0].username.as_str(), log[0].programme.as_str()),
            ("analyst", "P002")
        );
    }
}

/// A submission file with the given manifest and payload lines, its checksum and counts made
/// right: what an attacker holding the (widely held) submission key could send.
/// A file a programme makes by hand, signed with the key of the programme its manifest names
/// (P001's files in these tests: P001 holds its own key), over `lines` of its choosing.
fn forged(manifest: &serde_json::Value, lines: &[serde_json::Value]) -> Vec<u8> {
    let signer = manifest["programme_code"].as_str().unwrap().to_string();
    forged_by(&signer, manifest, lines)
}

/// [`forged`], signed with `signer`'s own key whatever the manifest says.
fn forged_by(signer: &str, manifest: &serde_json::Value, lines: &[serde_json::Value]) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    let mut payload = Vec::new();
    for l in lines {
        payload.extend_from_slice(l.to_string().as_bytes());
        payload.push(b'\n');
    }
    let mut m = manifest.clone();
    m["sha256"] = hex::encode(Sha256::digest(&payload)).into();
    m["counts"]["episodes"] = lines
        .iter()
        .filter(|l| l.get("tombstone").is_none())
        .count()
        .into();
    m["counts"]["tombstones"] = lines
        .iter()
        .filter(|l| l.get("tombstone").is_some())
        .count()
        .into();
    if let Some(o) = m.as_object_mut() {
        o.remove("signature");
    }
    m["signed_by"] = signing(signer).public_key().id().into();
    let mut bytes = signing(signer).sign_manifest(&m.to_string()).into_bytes();
    bytes.push(b'\n');
    bytes.extend(payload);
    bytes
}

/// privacy.md, "A submission only ever touches its own programme": P001's submission carrying
/// P002's episode keys (as tombstones, or as episode lines labelled P001) neither deletes nor
/// takes over P002's episodes; and P002 can always repair its data with a fresh build, even one
/// whose payload bytes were received before.
#[test]
fn a_submission_touches_only_its_own_programme() {
    let (sub_key, national_key) = (Key::from_secret([1; 32]), Key::from_secret([2; 32]));
    for (ldb, ndb) in databases().into_iter().zip(databases()) {
        let dir = scratch_dir("sub-scope");
        let mut s = local(&ldb);
        let nobody = ndoo(&dir, "2025-05-20", &["9000000009"]);
        let mut n = national_store(&ndb, s.as_mut());
        let (p1, _) = submit(
            s.as_mut(),
            &mut n,
            &request("P001", &sub_key, Some(&nobody), "2025-06-01T10:00:00Z"),
            &national_key,
            "2025-06-01T11:00:00Z",
        );
        let (p2, _) = submit(
            s.as_mut(),
            &mut n,
            &request("P002", &sub_key, None, "2025-06-01T10:00:00Z"),
            &national_key,
            "2025-06-01T11:00:00Z",
        );
        let before = n.episodes(Some("P002")).unwrap();
        assert_eq!(before.len(), 1);
        let text = String::from_utf8(p1.bytes.clone()).unwrap();
        let mut lines = text.lines();
        let mut manifest: serde_json::Value = serde_json::from_str(lines.next().unwrap()).unwrap();
        manifest["created_at"] = "2025-06-05T10:00:00Z".into();
        let p2_line: serde_json::Value = serde_json::from_str(
            String::from_utf8(p2.bytes.clone())
                .unwrap()
                .lines()
                .nth(1)
                .unwrap(),
        )
        .unwrap();
        let p2_key = sub_key.episode_key("P002", "X1");
        assert_eq!(p2_line["episode_key"], p2_key.as_str());

        // A tombstone carrying P002's key.
        let attack = forged(&manifest, &[serde_json::json!({ "tombstone": p2_key })]);
        let got = receive(
            &mut n,
            &attack,
            &sub_key,
            &national_key,
            "2025-06-05T11:00:00Z",
        );
        assert!(
            !matches!(got, Ok(Received::Stored { deleted, .. }) if deleted > 0),
            "{got:?} ({})",
            ndb.backend
        );
        assert_eq!(n.episodes(Some("P002")).unwrap(), before, "{}", ndb.backend);

        // P002's episode line relabelled as P001's.
        let mut relabelled = p2_line.clone();
        relabelled["programme_code"] = "P001".into();
        manifest["created_at"] = "2025-06-06T10:00:00Z".into();
        let attack = forged(&manifest, &[relabelled]);
        let _ = receive(
            &mut n,
            &attack,
            &sub_key,
            &national_key,
            "2025-06-06T11:00:00Z",
        );
        assert_eq!(
            n.episodes(Some("P002")).unwrap(),
            before,
            "P002's episode stays P002's ({})",
            ndb.backend
        );

        // A line for another programme is refused whole.
        let err = receive(
            &mut n,
            &forged(&manifest, std::slice::from_ref(&p2_line)),
            &sub_key,
            &national_key,
            "later",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("not from programme P001"), "{err}");

        // P002 repairs with a fresh build whose payload is byte for byte the one it sent
        // before: it is received, not answered "already received".
        let fresh = build(
            s.as_mut(),
            &request("P002", &sub_key, None, "2025-06-07T10:00:00Z"),
        )
        .unwrap();
        let payload = |b: &[u8]| b[b.iter().position(|x| *x == b'\n').unwrap()..].to_vec();
        assert_eq!(payload(&fresh.bytes), payload(&p2.bytes));
        let got = receive(
            &mut n,
            &fresh.bytes,
            &sub_key,
            &national_key,
            "2025-06-07T11:00:00Z",
        )
        .unwrap();
        assert_eq!(
            got,
            Received::Stored {
                episodes: 1,
                replaced: 1,
                deleted: 0
            },
            "{}",
            ndb.backend
        );
        // The same file again changes nothing.
        assert_eq!(
            receive(&mut n, &fresh.bytes, &sub_key, &national_key, "later").unwrap(),
            Received::AlreadyReceived
        );
        // Two programmes' empty submissions are two submissions, not one.
        let empty = |p: &str| {
            forged(
                &serde_json::json!({
                    "format": "crest-submission", "dataset_version": crest_core::dataset::DATASET_VERSION,
                    "programme_code": p, "period": {"from": "2023-04-01", "to": "2024-03-31"},
                    "key_id": sub_key.id(), "created_at": "2025-06-08T10:00:00Z", "counts": {}
                }),
                &[],
            )
        };
        for p in ["P001", "P002"] {
            let got = receive(&mut n, &empty(p), &sub_key, &national_key, "later").unwrap();
            assert!(matches!(got, Received::Stored { .. }), "{p}: {got:?}");
        }
    }
}

/// privacy.md, "Checked on receipt": a programme cannot put its own text or impossible values
/// into the national store (and so into the official publication). Every refused line is named
/// in one refusal, and nothing is stored.
#[test]
fn every_received_value_passes_the_dictionary_rules() {
    let (sub_key, national_key) = (Key::from_secret([1; 32]), Key::from_secret([2; 32]));
    for (ldb, ndb) in databases().into_iter().zip(databases()) {
        let dir = scratch_dir("sub-hostile");
        let mut s = local(&ldb);
        let nobody = ndoo(&dir, "2025-05-20", &["9000000009"]);
        let mut n = national_store(&ndb, s.as_mut());
        let built = build(
            s.as_mut(),
            &request("P001", &sub_key, Some(&nobody), "2025-06-01T10:00:00Z"),
        )
        .unwrap();
        let text = String::from_utf8(built.bytes).unwrap();
        let mut lines = text.lines();
        let mut manifest: serde_json::Value = serde_json::from_str(lines.next().unwrap()).unwrap();
        manifest["created_at"] = "2025-06-02T10:00:00Z".into();
        let good: serde_json::Value = serde_json::from_str(lines.next().unwrap()).unwrap();
        let hostile = [
            ("sex", serde_json::json!("<script>alert(1)</script>")),
            ("sex", serde_json::json!("javascript:alert(4)")),
            ("sex", serde_json::json!("fe\u{202e}male")),
            ("age_at_event", serde_json::json!(-40)),
            ("age_at_event", serde_json::json!(1_000_000_000_000_000i64)),
            ("event_date", serde_json::json!("9999-12-30")),
            ("a1_hads_anxiety", serde_json::json!(99)),
            ("initiating_event", serde_json::json!("made_up")),
        ];
        let mut attack_lines = Vec::new();
        for (i, (field, value)) in hostile.iter().enumerate() {
            let mut line = good.clone();
            line[*field] = value.clone();
            line["episode_key"] = sub_key.episode_key("P001", &format!("H{i}")).into();
            attack_lines.push(line);
        }
        let before = n.episodes(Some("P001")).unwrap().len();
        let err = receive(
            &mut n,
            &forged(&manifest, &attack_lines),
            &sub_key,
            &national_key,
            "2025-06-02T11:00:00Z",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("8 line(s) hold values the dataset does not allow"),
            "{}: {err}",
            ndb.backend
        );
        for (line_no, field) in hostile.iter().enumerate().map(|(i, (f, _))| (i + 2, f)) {
            assert!(
                err.contains(&format!("line {line_no}, field {field}")),
                "line {line_no} ({field}) not named: {err}"
            );
        }
        assert!(err.contains("in the future"), "{err}");
        assert!(err.contains("outside the allowed range"), "{err}");
        assert_eq!(
            n.episodes(Some("P001")).unwrap().len(),
            before,
            "{}",
            ndb.backend
        );
        // One bad line after more than a batch of good ones (PostgreSQL has begun copying by
        // then): refused in the same words, nothing stored.
        let mut many: Vec<serde_json::Value> = (0..600)
            .map(|i| {
                let mut line = good.clone();
                line["episode_key"] = sub_key.episode_key("P001", &format!("M{i}")).into();
                line
            })
            .collect();
        let mut bad = good.clone();
        bad["sex"] = "unknown-sex".into();
        bad["episode_key"] = sub_key.episode_key("P001", "BAD").into();
        many.push(bad);
        manifest["created_at"] = "2025-06-02T11:30:00Z".into();
        let err = receive(
            &mut n,
            &forged(&manifest, &many),
            &sub_key,
            &national_key,
            "2025-06-02T11:31:00Z",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("1 line(s) hold values the dataset does not allow")
                && err.contains("line 602"),
            "{}: {err}",
            ndb.backend
        );
        assert_eq!(
            n.episodes(Some("P001")).unwrap().len(),
            before,
            "{}",
            ndb.backend
        );
        // A value the dictionary allows, in another spelling, is stored as its code.
        let mut fine = good.clone();
        fine["sex"] = "Female".into();
        manifest["created_at"] = "2025-06-02T12:00:00Z".into();
        let got = receive(
            &mut n,
            &forged(&manifest, &[fine]),
            &sub_key,
            &national_key,
            "2025-06-02T13:00:00Z",
        )
        .unwrap();
        assert!(
            matches!(got, Received::Stored { episodes: 1, .. }),
            "{got:?}"
        );
        let held = n.episodes(Some("P001")).unwrap();
        assert!(
            held.iter()
                .all(|e| e.record.text(crest_core::Col::Sex) == Some("female")),
            "{}",
            ndb.backend
        );
    }
}

/// A payload that carries the same episode twice is refused, naming both lines, rather than
/// stored once and counted as two.
#[test]
fn an_episode_sent_twice_in_one_file_is_refused() {
    let (sub_key, national_key) = (Key::from_secret([1; 32]), Key::from_secret([2; 32]));
    for (ldb, ndb) in databases().into_iter().zip(databases()) {
        let dir = scratch_dir("sub-twice");
        let mut s = local(&ldb);
        let nobody = ndoo(&dir, "2025-05-20", &["9000000009"]);
        let mut n = national_store(&ndb, s.as_mut());
        let built = build(
            s.as_mut(),
            &request("P001", &sub_key, Some(&nobody), "2025-06-01T10:00:00Z"),
        )
        .unwrap();
        let text = String::from_utf8(built.bytes).unwrap();
        let mut lines = text.lines();
        let manifest: serde_json::Value = serde_json::from_str(lines.next().unwrap()).unwrap();
        let episode: serde_json::Value = serde_json::from_str(lines.next().unwrap()).unwrap();
        let err = receive(
            &mut n,
            &forged(&manifest, &[episode.clone(), episode]),
            &sub_key,
            &national_key,
            "2025-06-01T11:00:00Z",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("line 3: the same episode is on line 2 too"),
            "{}: {err}",
            ndb.backend
        );
        assert!(n.episodes(Some("P001")).unwrap().is_empty());
    }
}
