//! A progress bar on stderr for long work, shown only when stderr is a terminal.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// A terminal progress bar; silent when stderr is not a terminal.
pub struct Progress {
    label: String,
    on: bool,
    started: Instant,
    last: Instant,
}

impl Progress {
    /// A bar labelled `label`.
    pub fn new(label: &str) -> Progress {
        let now = Instant::now();
        Progress {
            label: label.to_string(),
            on: std::io::stderr().is_terminal(),
            started: now,
            last: now,
        }
    }

    /// Shows `fraction` (0–1) done, at most ten times a second.
    pub fn set(&mut self, fraction: f64) {
        if !self.on || (self.last.elapsed() < Duration::from_millis(100) && fraction < 1.0) {
            return;
        }
        self.last = Instant::now();
        let width = 30;
        let done = ((fraction.clamp(0.0, 1.0)) * width as f64) as usize;
        let mut err = std::io::stderr();
        let _ = write!(
            err,
            "\r{} [{}{}] {:>3.0}% {:.0}s",
            self.label,
            "#".repeat(done),
            " ".repeat(width - done),
            fraction * 100.0,
            self.started.elapsed().as_secs_f64()
        );
        let _ = err.flush();
    }

    /// Clears the bar.
    pub fn finish(&mut self) {
        if self.on {
            let _ = write!(
                std::io::stderr(),
                "\r{}\r",
                " ".repeat(self.label.len() + 50)
            );
        }
    }
}
