//! Files holding identifiable data on the server's disk (privacy.md): an upload waits for
//! confirmation in the store (so any server of a deployment can confirm it); on disk there are
//! only the scratch files of the request working on it, readable only by crest (mode 0600 in a
//! 0700 folder) and removed before it answers. A sweep removes any a crash left behind.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// How long an upload waits for confirmation.
pub const MAX_AGE: Duration = Duration::from_secs(3600);

/// Makes the uploads folder readable only by crest, and sweeps what is too old.
pub(crate) fn prepare(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    sweep(dir, MAX_AGE);
    Ok(())
}

/// Creates `path` readable and writable only by crest (it must not exist yet).
pub(crate) fn create_private(path: &Path) -> std::io::Result<File> {
    let mut o = OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o.open(path)
}

/// The rejected-rows file of the upload at `path`.
pub(crate) fn errors_file(path: &Path) -> PathBuf {
    path.with_extension("errors.csv")
}

/// Writes `bytes` to a new private file at `path`.
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut f = create_private(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// Writes a request body to a new private file as it arrives; its size. Refused (and the file
/// removed) past `limit` bytes.
pub(crate) async fn stream_private(
    path: &Path,
    body: axum::body::Body,
    limit: usize,
) -> Result<u64, crate::app::WebError> {
    use crate::app::WebError;
    use http_body_util::BodyExt;
    use std::io::Write;
    let mut file = std::io::BufWriter::new(create_private(path).map_err(WebError::internal)?);
    let mut body = body;
    let mut size = 0u64;
    let outcome = loop {
        match body.frame().await {
            None => break Ok(()),
            Some(Err(e)) => {
                break Err(WebError::BadRequest(format!(
                    "The file could not be read: {e}"
                )))
            }
            Some(Ok(frame)) => {
                let Ok(chunk) = frame.into_data() else {
                    continue;
                };
                size += chunk.len() as u64;
                if size > limit as u64 {
                    break Err(WebError::TooLarge(format!(
                        "The file is larger than the limit of {} MB.",
                        limit >> 20
                    )));
                }
                if let Err(e) = file.write_all(&chunk) {
                    break Err(WebError::internal(e));
                }
            }
        }
    };
    let outcome = outcome.and_then(|()| {
        file.flush()
            .and_then(|()| file.get_ref().sync_all())
            .map_err(WebError::internal)
    });
    match outcome {
        Ok(()) => Ok(size),
        Err(e) => {
            drop(file);
            discard(path);
            Err(e)
        }
    }
}

fn age(t: SystemTime) -> Duration {
    SystemTime::now().duration_since(t).unwrap_or_default()
}

/// Removes an upload and its rejected-rows file.
pub(crate) fn discard(path: &Path) {
    let _ = std::fs::remove_file(path);
    let _ = std::fs::remove_file(errors_file(path));
}

/// Removes every file in `dir` older than `max_age`; returns how many.
pub fn sweep(dir: &Path, max_age: Duration) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for e in entries.flatten() {
        let old = e
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|t| age(t) >= max_age);
        if old && e.file_type().is_ok_and(|t| t.is_file()) && std::fs::remove_file(e.path()).is_ok()
        {
            removed += 1;
        }
    }
    if removed > 0 {
        tracing::info!(removed, "removed upload files over an hour old");
    }
    removed
}

/// A private scratch file in the uploads folder for one request's body, removed when the
/// request is done with it (whatever happens).
pub(crate) struct ScratchFile(pub(crate) std::path::PathBuf);

impl ScratchFile {
    pub(crate) fn new(app: &crate::app::App, what: &str) -> ScratchFile {
        ScratchFile(
            app.uploads_dir()
                .join(format!("{what}-{}", crate::app::auth::token())),
        )
    }
}

impl Drop for ScratchFile {
    fn drop(&mut self) {
        crate::app::uploads::discard(&self.0);
    }
}
