//! Shared set-up for the web tests: a store with two programmes, an episode in each and a
//! user per role.
#![allow(dead_code, clippy::unwrap_used)]

pub mod http;

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

/// A commissioner `comm` for the region of the national store's first programme, and a
/// researcher `res`.
pub fn add_planners(db: &TestDb, ndb: &TestDb) {
    let region = sync(|| {
        crest_store::NationalStore::open(&ndb.url)
            .unwrap()
            .programmes()
            .unwrap()[0]
            .region
            .clone()
    });
    open(db).run(|s| {
        crest_web::add_user(s, "comm", Role::Commissioner, &[region], PASSWORD).unwrap();
        crest_web::add_user(s, "res", Role::Researcher, &[], PASSWORD).unwrap();
    });
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

/// The 2024/25 financial year.
pub fn fy2024() -> crest_core::Period {
    crest_core::Period {
        from: crest_core::Date::from_ymd(2024, 4, 1).unwrap(),
        to: crest_core::Date::from_ymd(2025, 3, 31).unwrap(),
    }
}

/// The synthetic data of [`synthetic_national`].
fn synthetic_config() -> crest_ingest::synth::Config {
    crest_ingest::synth::Config {
        programmes: 12,
        episodes: 4_000,
        seed: 11,
        period: fy2024(),
        today: today(),
    }
}

/// The expected patients the generator writes with [`synthetic_national`]'s episodes, loaded
/// into the national store at `ndb`.
pub fn load_expected(ndb: &TestDb) -> Vec<crest_core::expected::Expected> {
    let dir = scratch_dir("synthetic-expected");
    crest_ingest::synth::write(&dir, &synthetic_config()).unwrap();
    let rows = crest_ingest::expected::read_expected(&dir.join("expected.csv")).unwrap();
    let mut n = crest_store::NationalStore::open(&ndb.url).unwrap();
    n.load_expected(&rows).unwrap();
    rows
}

/// Twelve synthetic programmes (calibrated, so uptake varies and some are outliers) imported
/// into the local store at `db`, each submitted and received into the national store at `ndb`;
/// an `analyst` national analyst; and `app` serving both sides.
pub fn synthetic_national(app: &crest_web::App, db: &TestDb, ndb: &TestDb) {
    use crest_privacy::Key;
    let (sk, nk) = (Key::from_secret([3; 32]), Key::from_secret([4; 32]));
    let period = fy2024();
    let dir = scratch_dir("synthetic-national");
    crest_ingest::synth::write(&dir, &synthetic_config()).unwrap();
    let programmes =
        crest_ingest::programmes::read_programmes(&dir.join("programmes.csv")).unwrap();
    let mut n = crest_store::NationalStore::open(&ndb.url).unwrap();
    n.migrate().unwrap();
    n.upsert_programmes(&programmes).unwrap();
    let signing = register_signing_keys(&mut n, &programmes);
    let key = sk.clone();
    let signing_keys = signing.clone();
    let receipts: Vec<Vec<u8>> = open(db).run(move |s| {
        s.upsert_programmes(&programmes).unwrap();
        let sum = crest_ingest::import_file(
            s,
            &dir.join("episodes.csv"),
            &crest_ingest::ImportOptions::new(today()),
            None,
            &mut |_| {},
        )
        .unwrap();
        assert_eq!(sum.rejected, 0);
        crest_web::add_user(s, "analyst", Role::NationalAnalyst, &[], PASSWORD).unwrap();
        s.put_agreement(&agreement(true)).unwrap();
        programmes
            .iter()
            .map(|p| {
                let req = crest_privacy::submission::BuildRequest {
                    programme: &p.code,
                    period,
                    key: &key,
                    signing_key: signing_keys.get(&p.code).unwrap(),
                    ndoo: None,
                    ndoo_max_age_days: 30,
                    today: today(),
                    now: "2025-06-01T10:00:00Z".into(),
                };
                crest_privacy::submission::build(s, &req).unwrap().bytes
            })
            .collect()
    });
    for r in &receipts {
        crest_privacy::submission::receive(&mut n, r, &sk, &nk, "2025-06-01T11:00:00Z").unwrap();
    }
    drop(n);
    app.set_submission_key(sk);
    app.set_signing_keys(signing);
    app.set_national(&ndb.url, nk).unwrap();
}

/// A programme's signing key in tests, the same for the same code.
#[allow(dead_code)]
pub fn signing_key(code: &str) -> crest_privacy::SigningKey {
    let mut secret = [9u8; 32];
    secret[..code.len()].copy_from_slice(code.as_bytes());
    crest_privacy::SigningKey::from_secret(code, secret)
}

/// The signing keys of `setup`'s programmes, P001 and P002, as a programme's server holds them.
#[allow(dead_code)]
pub fn setup_signing_keys() -> crest_privacy::SigningKeys {
    let mut keys = crest_privacy::SigningKeys::default();
    keys.add(signing_key("P001"));
    keys.add(signing_key("P002"));
    keys
}

/// Every programme's signing key (as a server holds them) and its public key registered in
/// the national store `n`.
#[allow(dead_code)]
pub fn register_signing_keys(
    n: &mut crest_store::NationalStore,
    programmes: &[crest_core::Programme],
) -> crest_privacy::SigningKeys {
    let mut keys = crest_privacy::SigningKeys::default();
    for p in programmes {
        let k = signing_key(&p.code);
        crest_privacy::signing::register(
            n,
            &k.public_key(),
            &p.code,
            (crest_core::Date::from_ymd(2000, 1, 1).unwrap(), None),
        )
        .unwrap();
        keys.add(k);
    }
    keys
}

/// Serves the app on a free loopback port from a background runtime; returns its base URL.
#[allow(dead_code)]
pub fn serve(app: Arc<crest_web::App>) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(listener, crest_web::router(app)).await.unwrap();
        });
    });
    format!("http://{addr}")
}

/// A national audit's server for a test, served on loopback: its own store of users at
/// `nlocal`, the national store at `ndb` (programmes copied from the local store at `db`),
/// the submission key `[3; 32]` and national key `[4; 32]`, and an API token for P001's
/// system. Returns its base URL.
#[allow(dead_code)]
pub fn national_audit_server(db: &TestDb, nlocal: &TestDb, ndb: &TestDb, token: &str) -> String {
    use crest_privacy::Key;
    let national = setup(nlocal);
    let programmes = open(db).run(|s| s.programmes().unwrap());
    sync(|| {
        let mut n = crest_store::NationalStore::open(&ndb.url).unwrap();
        n.migrate().unwrap();
        n.upsert_programmes(&programmes).unwrap();
        register_signing_keys(&mut n, &programmes);
        n.add_api_token(
            token,
            "P001",
            "2025-01-01T00:00:00Z",
            "2099-01-01T00:00:00Z",
        )
        .unwrap();
    });
    national.set_submission_key(Key::from_secret([3; 32]));
    national
        .set_national(&ndb.url, Key::from_secret([4; 32]))
        .unwrap();
    serve(national)
}

/// A shared buffer a test's log subscriber writes the server's log into.
#[derive(Clone, Default)]
pub struct LogBuffer(pub std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for LogBuffer {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
