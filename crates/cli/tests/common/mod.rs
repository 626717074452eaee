//! Shared by the command-line tests: running the real binary.
#![allow(dead_code, clippy::unwrap_used)]

/// Runs `crest --db URL ARGS…`; its exit code and everything it printed.
pub fn crest(url: &str, args: &[&str]) -> (i32, String) {
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_crest"))
        .arg("--db")
        .arg(url)
        .args(args)
        .output()
        .unwrap();
    (
        o.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    )
}
