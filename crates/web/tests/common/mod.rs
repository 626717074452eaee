//! Shared set-up for the web tests: a store with two programmes, an episode in each and a
//! user per role.
#![allow(dead_code, clippy::unwrap_used)]

use crest_store::testing::{scratch_dir, TestDb};
use crest_store::Role;
use std::sync::Arc;

/// Runs blocking store code off the async runtime (the PostgreSQL client runs its own).
pub fn sync<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| s.spawn(f).join().unwrap())
}

pub fn open(db: &TestDb) -> SyncStore {
    SyncStore(db.url.clone())
}

/// Store calls from async tests, each on its own thread.
pub struct SyncStore(String);

impl SyncStore {
    pub fn run<T: Send>(&self, f: impl FnOnce(&mut dyn crest_store::Store) -> T + Send) -> T {
        sync(|| f(crest_store::open(&self.0).unwrap().as_mut()))
    }
}

pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Runtime::new().unwrap()
}

pub fn today() -> crest_core::Date {
    crest_core::Date::from_ymd(2025, 6, 1).unwrap()
}

pub const PASSWORD: &str = "a-long-test-password";

/// A store with programmes P001 and P002, one episode in each, and a user per role.
pub fn setup(db: &TestDb) -> Arc<crest_web::App> {
    let mut s = crest_store::open(&db.url).unwrap();
    s.migrate().unwrap();
    let progs: Vec<crest_core::Programme> = [
        ["P001", "One", "england", "London", "nurse", "mi"],
        ["P002", "Two", "wales", "North", "", ""],
    ]
    .into_iter()
    .map(|c| crest_core::Programme::parse(c).unwrap())
    .collect();
    s.upsert_programmes(&progs).unwrap();
    let dir = scratch_dir("web");
    let f = dir.join("e.csv");
    std::fs::write(
        &f,
        "programme_code,episode_id,nhs_number,family_name,given_name,date_of_birth,sex,initiating_event,treatment,event_date,referral_date,status,assessment1_date,core_start_date,core_end_date,assessment2_date,a1_hads_anxiety,a2_hads_anxiety,delivery_mode\n\
         P001,E1,9434765919,Testperson,Ann,1960-06-15,female,mi_nstemi,pci,2024-04-01,2024-04-03,completed,2024-04-20,2024-05-01,2024-07-01,2024-07-05,12,6,group_supervised\n\
         P002,X1,9434765870,Otherperson,Bob,1955-01-01,male,mi_stemi,pci,2024-04-01,2024-04-03,completed,2024-04-20,2024-05-01,2024-07-01,2024-07-05,9,5,group_supervised\n",
    )
    .unwrap();
    let sum = crest_ingest::import_file(
        s.as_mut(),
        &f,
        &crest_ingest::ImportOptions::new(today()),
        None,
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(sum.imported, 2, "{:?}", sum.errors);
    for (name, role, p) in [
        ("lead", Role::ProgrammeLead, "P001"),
        ("staff", Role::ProgrammeStaff, "P001"),
        ("staff2", Role::ProgrammeStaff, "P002"),
        ("admin", Role::Admin, ""),
    ] {
        crest_web::add_user(s.as_mut(), name, role, &[p.to_string()], PASSWORD).unwrap();
    }
    crest_web::App::new(&db.url, dir.join("uploads"), today).unwrap()
}

/// A data sharing agreement in force through 2025 (every national field approved).
pub fn agreement(opt_out_exempt: bool) -> crest_core::governance::Agreement {
    crest_core::governance::Agreement {
        id: "ncpcr".into(),
        recipient: "National audit".into(),
        legal_basis: "CAG 99/CAG/0001".into(),
        fields: None,
        opt_out_exempt,
        valid_from: crest_core::Date::from_ymd(2025, 1, 1).unwrap(),
        valid_to: crest_core::Date::from_ymd(2025, 12, 31).unwrap(),
    }
}
