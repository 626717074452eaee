//! The app itself: its shared state (stores, pools, keys, caches), the router assembled from each area's own `routes()`, and serving.

pub(crate) mod access;
pub(crate) mod auth;
pub(crate) mod cache;
mod context;
mod error;
pub(crate) mod forms;
mod middleware;
pub(crate) mod ops;
mod respond;
mod router;
pub(crate) mod secrets;
pub(crate) mod security;
mod sign_in;
pub(crate) mod table;
pub mod uploads;

pub(crate) use context::*;
pub use error::WebError;
pub(crate) use error::*;
pub use middleware::RequestId;
pub(crate) use respond::*;
pub use router::{router, serve};
pub(crate) use sign_in::*;

use cache::{PageCache, VersionCache};
use crest_core::Date;
use crest_store::Store;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// Idle connections, reused by the next request instead of opening a new one.
pub(crate) struct Pool<T>(Mutex<Vec<T>>);

impl<T> Pool<T> {
    pub(crate) fn new(first: Vec<T>) -> Pool<T> {
        Pool(Mutex::new(first))
    }

    /// An idle connection, or a new one from `open`.
    pub(crate) fn take<E>(&self, open: impl FnOnce() -> Result<T, E>) -> Result<T, E> {
        let idle = self.0.lock().unwrap_or_else(|e| e.into_inner()).pop();
        idle.map_or_else(open, Ok)
    }

    pub(crate) fn give_back(&self, conn: T) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(conn);
    }

    /// Connections open and idle.
    pub(crate) fn idle(&self) -> usize {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

/// The largest upload of episodes (CSV or XLSX) a programme may send.
pub const UPLOAD_LIMIT: usize = 100 << 20;
/// The largest national submission (web receive and the API); 100,000 episodes are about 70 MB.
pub const SUBMISSION_LIMIT: usize = 512 << 20;

/// How many large bodies (submissions) are read at once; the rest wait their turn.
pub(crate) const LARGE_BODIES_AT_ONCE: usize = 2;
/// The largest National Data Opt-out check result attached to a build.
pub const OPT_OUT_FILE_LIMIT: usize = 50 << 20;

/// Password hashes computed at once; further sign-ins queue (150 at once took 2 GiB before).
pub(crate) const CONCURRENT_HASHES: usize = 4;

/// Database connections (and the threads holding them) in use at once by one server.
pub(crate) const DB_CONNECTIONS: usize = 16;

/// A job of database work.
pub(crate) type Job = Box<dyn FnOnce() + Send>;

/// A fixed set of threads for database work: a burst of requests queues for them instead of
/// starting a thread each. Plain threads, not tokio's blocking pool: the PostgreSQL client
/// drives its own runtime, which must not be nested in ours.
pub(crate) struct Workers {
    pub(crate) queue: std::sync::mpsc::Sender<Job>,
}

impl Workers {
    pub(crate) fn new(threads: usize) -> Workers {
        let (queue, jobs) = std::sync::mpsc::channel::<Job>();
        let jobs = Arc::new(Mutex::new(jobs));
        for i in 0..threads {
            let jobs = jobs.clone();
            let _ = std::thread::Builder::new()
                .name(format!("crest-db-{i}"))
                .spawn(move || loop {
                    let job = match jobs.lock().unwrap_or_else(|e| e.into_inner()).recv() {
                        Ok(job) => job,
                        // The app is gone.
                        Err(_) => return,
                    };
                    // A job that panics answers nothing (its request gets a 500); the worker
                    // goes on.
                    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                });
        }
        Workers { queue }
    }

    /// Queues a job.
    pub(crate) fn run(&self, job: Job) {
        let _ = self.queue.send(job);
    }
}

/// Why the app could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The store cannot be opened, or its migrations were edited.
    #[error(transparent)]
    Store(#[from] crest_store::StoreError),
    /// The folder for uploads waiting for confirmation cannot be made.
    #[error("cannot create {path}: {source}")]
    Uploads {
        /// The folder.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// The shared state of the app.
pub struct App {
    pub(crate) db: String,
    pub(crate) pool: Pool<Box<dyn Store>>,
    /// Idle national-store connections (when this server has the national side).
    pub(crate) national_pool: Pool<crest_store::NationalStore>,
    /// The threads that run database work (each holds a connection while it works).
    pub(crate) workers: Workers,
    /// Password hashes allowed at once (each takes 19 MiB and a core for a while).
    pub(crate) hashing: tokio::sync::Semaphore,
    /// Trust `X-Forwarded-For` and mark cookies `Secure` (crest serve --behind-proxy).
    pub(crate) behind_proxy: std::sync::atomic::AtomicBool,
    pub(crate) uploads: PathBuf,
    pub(crate) today: fn() -> Date,
    pub(crate) dashboards: PageCache,
    /// The programme side's submission key, if this server builds national submissions.
    pub(crate) submission_key: std::sync::OnceLock<crest_privacy::Key>,
    /// The programmes' own signing keys, for submissions built on the web.
    pub(crate) signing_keys: std::sync::OnceLock<crest_privacy::SigningKeys>,
    /// Permits to read a large body (a submission), so a few callers at once cannot fill
    /// memory.
    pub(crate) large_bodies: tokio::sync::Semaphore,
    /// The server's key for security-code secrets at rest.
    pub(crate) secret_box: std::sync::OnceLock<secrets::SecretBox>,
    /// Where leads' submissions are sent: the national audit's address and this programme
    /// system's API token (`crest serve --send-to URL --send-token TOKEN`).
    pub(crate) send_to: std::sync::OnceLock<(String, String)>,
    /// The national side: its store's URL and the national key, if this server has one.
    pub(crate) national_db: std::sync::OnceLock<String>,
    pub(crate) national_key: std::sync::OnceLock<crest_privacy::Key>,
    pub(crate) national_pages: PageCache,
    pub(crate) national_reports: VersionCache<cache::NationalReport>,
    /// Aggregate answers: the published grid makes few periods, so most questions repeat.
    pub(crate) answers: VersionCache<crest_report::aggregates::Answer>,
    /// Every national episode's facts for aggregates, in memory (one entry).
    pub(crate) facts: VersionCache<crest_report::aggregates::Facts>,
    /// Security-code keys shown but not yet confirmed, by user: reloading the set-up page
    /// shows the same key, so an app set up from the first showing still works.
    pub(crate) pending_codes: std::sync::Mutex<std::collections::HashMap<String, String>>,
    /// What `/metrics` reports.
    pub(crate) metrics: ops::Metrics,
    /// Who besides the loopback address may read `/metrics`.
    pub(crate) metrics_access: std::sync::OnceLock<ops::MetricsAccess>,
    /// The last answer of `/readyz`, reused for a second.
    pub(crate) readiness: ops::Readiness,
}

impl App {
    /// An app over the store at `db` (`--db` syntax); uploads wait for confirmation in
    /// `uploads`.
    pub fn new(db: &str, uploads: PathBuf, today: fn() -> Date) -> Result<Arc<App>, StartError> {
        let mut store = crest_store::open(db)?;
        // A store whose applied migration was edited is refused before anything is served.
        store.check_migrations()?;
        uploads::prepare(&uploads).map_err(|source| StartError::Uploads {
            path: uploads.display().to_string(),
            source,
        })?;
        Ok(Arc::new(App {
            db: db.to_string(),
            pool: Pool::new(vec![store]),
            national_pool: Pool::new(Vec::new()),
            hashing: tokio::sync::Semaphore::new(CONCURRENT_HASHES),
            workers: Workers::new(DB_CONNECTIONS),
            behind_proxy: std::sync::atomic::AtomicBool::new(false),
            uploads,
            today,
            dashboards: Default::default(),
            submission_key: std::sync::OnceLock::new(),
            signing_keys: std::sync::OnceLock::new(),
            large_bodies: tokio::sync::Semaphore::new(LARGE_BODIES_AT_ONCE),
            secret_box: std::sync::OnceLock::new(),
            send_to: std::sync::OnceLock::new(),
            national_db: std::sync::OnceLock::new(),
            national_key: std::sync::OnceLock::new(),
            national_pages: Default::default(),
            national_reports: Default::default(),
            answers: Default::default(),
            facts: Default::default(),
            pending_codes: Default::default(),
            metrics: Default::default(),
            metrics_access: std::sync::OnceLock::new(),
            readiness: Default::default(),
        }))
    }

    /// Serves behind a proxy that terminates TLS: cookies are marked `Secure`, and the
    /// client's address for login throttling is the one the proxy appended to
    /// `X-Forwarded-For`.
    pub fn set_behind_proxy(&self, yes: bool) {
        self.behind_proxy
            .store(yes, std::sync::atomic::Ordering::Relaxed);
    }

    /// Opens `/metrics` to a monitoring server: by bearer token, or by address (the loopback
    /// address may always read it). Set once, as the server starts.
    pub fn set_metrics_access(&self, access: ops::MetricsAccess) {
        let _ = self.metrics_access.set(access);
    }

    /// The folder where uploads wait for confirmation.
    pub fn uploads_dir(&self) -> &std::path::Path {
        &self.uploads
    }

    /// Removes uploads waiting longer than `max_age` (from the store, which every server of a
    /// deployment shares), idle sign-in throttling records, and any scratch file a crash left
    /// behind; returns how many uploads went. `serve` does this every minute with
    /// [`uploads::MAX_AGE`].
    pub fn sweep_uploads(
        &self,
        max_age: std::time::Duration,
    ) -> Result<usize, crest_store::StoreError> {
        uploads::sweep(&self.uploads, max_age);
        crest_store::open(&self.db)?.sweep(
            now_secs() - max_age.as_secs() as i64,
            auth::now_ms() - auth::WINDOW_MS,
        )
    }

    /// Lets programme leads build national submissions with this key (once, at start-up).
    pub fn set_submission_key(&self, key: crest_privacy::Key) {
        let _ = self.submission_key.set(key);
    }

    /// Gives the server its programmes' signing keys, with which leads' submissions prove
    /// which programme built them.
    pub fn set_signing_keys(&self, keys: crest_privacy::SigningKeys) {
        let _ = self.signing_keys.set(keys);
    }

    /// Gives the server its own key (a crest key file), with which users' security-code
    /// secrets are sealed in the store (once, at start-up).
    pub fn set_server_key(&self, key: &crest_privacy::Key) {
        // A key of its own for this one purpose, derived from the server key.
        let derived = key.rekey("crest security-code secrets");
        let mut bytes = [0u8; 32];
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = u8::from_str_radix(derived.get(2 * i..2 * i + 2).unwrap_or("00"), 16).unwrap_or(0);
        }
        let _ = self.secret_box.set(secrets::SecretBox::new(bytes));
    }

    /// A user's stored security-code secret, opened (see `secrets::open`).
    pub(crate) fn code_secret(&self, username: &str, stored: &str) -> Option<String> {
        secrets::open(self.secret_box.get(), username, stored)
    }

    /// A security-code secret as it is to be stored (sealed when the server has a key).
    pub(crate) fn seal_code_secret(
        &self,
        username: &str,
        secret: &str,
    ) -> Result<String, WebError> {
        secrets::seal(self.secret_box.get(), username, secret).map_err(WebError::internal)
    }

    /// The signing key of a programme this server holds.
    pub(crate) fn signing_key(&self, programme: &str) -> Option<crest_privacy::SigningKey> {
        self.signing_keys.get()?.get(programme).cloned()
    }

    /// Lets leads send their submissions to the national audit at `url` (its address, e.g.
    /// `https://audit.example.nhs.uk`) with the API token it issued for this system. Plain
    /// `http://` is taken only for this machine (loopback), so submissions never cross a
    /// network unencrypted.
    pub fn set_send_to(&self, url: &str, token: &str) -> Result<(), crest_core::Invalid> {
        let url = url.trim().trim_end_matches('/');
        // Parsed as an address, never matched as text: the host exactly (not a prefix, not
        // what precedes an '@'), and no user name or password in it.
        let uri: axum::http::Uri = url.parse().map_err(|_| {
            crest_core::Invalid(format!("{url}: not a web address; give the national audit's address, e.g. https://audit.example.nhs.uk"))
        })?;
        let authority = uri.authority().map(|a| a.as_str()).unwrap_or("");
        if authority.contains('@') {
            return Err(format!(
                "{url}: the address may not carry a user name or password (before '@'); give the national audit's address alone"
            ).into());
        }
        let host = uri
            .host()
            .unwrap_or("")
            .trim_start_matches('[')
            .trim_end_matches(']');
        let loopback = matches!(host, "127.0.0.1" | "localhost" | "::1");
        let scheme = uri.scheme_str().unwrap_or("");
        if host.is_empty() || !(scheme == "https" || (scheme == "http" && loopback)) {
            return Err(format!(
                "{url}: the national audit's address must start with https:// (plain http only on this machine)"
            ).into());
        }
        let _ = self
            .send_to
            .set((url.to_string(), token.trim().to_string()));
        Ok(())
    }

    /// Serves the national side too, over the national store at `url` with its key (once, at
    /// start-up). The store must exist (`crest init --national`).
    pub fn set_national(
        &self,
        url: &str,
        key: crest_privacy::Key,
    ) -> Result<(), crest_store::StoreError> {
        let mut n = crest_store::NationalStore::open(url)?;
        n.check_migrations()?;
        n.submissions()?;
        let _ = self.national_db.set(url.to_string());
        let _ = self.national_key.set(key);
        Ok(())
    }

    /// Runs `f` with a store connection on a blocking thread.
    pub(crate) async fn db<T, F>(self: &Arc<Self>, f: F) -> Result<T, WebError>
    where
        T: Send + 'static,
        F: FnOnce(&mut dyn Store, &App) -> Result<T, WebError> + Send + 'static,
    {
        let app = self.clone();
        let (send, receive) = tokio::sync::oneshot::channel();
        self.metrics.queue_depth.inc();
        self.workers.run(Box::new(move || {
            app.metrics.queue_depth.dec();
            let mut store = match app.pool.take(|| crest_store::open(&app.db)) {
                Ok(s) => s,
                Err(e) => {
                    let _ = send.send(Err(WebError::internal(e)));
                    return;
                }
            };
            let out = f(store.as_mut(), &app);
            app.pool.give_back(store);
            let _ = send.send(out);
        }));
        receive.await.map_err(WebError::internal)?
    }
}

#[cfg(test)]
mod send_to_tests {
    use super::*;

    #[test]
    pub(crate) fn only_https_or_this_machine() {
        let dir = crest_store::testing::scratch_dir("send-to");
        let db = format!("sqlite:{}", dir.join("s.sqlite").display());
        let mut s = crest_store::open(&db).unwrap();
        s.migrate().unwrap();
        for url in [
            "http://localhost.example.org",
            "http://127.0.0.1.example.org/",
            "ftp://127.0.0.1",
            "http://audit.example.org",
            "http://localhost:x@127.0.0.2:8327",
            "http://[::1]@127.0.0.2:8327",
            "https://user:pass@audit.example.org",
            "not an address",
        ] {
            let app = App::new(&db, dir.join("uploads"), || {
                crest_core::Date::from_ymd(2025, 6, 1).unwrap()
            })
            .unwrap();
            assert!(app.set_send_to(url, "t").is_err(), "{url}");
        }
        for url in [
            "https://audit.example.org",
            "http://localhost:8080",
            "http://127.0.0.1:9/",
            "http://[::1]:80",
        ] {
            let app = App::new(&db, dir.join("uploads"), || {
                crest_core::Date::from_ymd(2025, 6, 1).unwrap()
            })
            .unwrap();
            assert!(app.set_send_to(url, "t").is_ok(), "{url}");
        }
    }
}
