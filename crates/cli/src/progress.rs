//! A progress bar on stderr for long work, shown only when stderr is a terminal.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// A terminal progress bar; when stderr is not a terminal (a log, CI), a line every quarter
/// of long work instead.
pub struct Progress {
    label: String,
    on: bool,
    started: Instant,
    last: Instant,
    /// Quarters already written as lines (off a terminal).
    quarters: u8,
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
            quarters: 0,
        }
    }

    /// Shows `fraction` (0–1) done, at most ten times a second.
    pub fn set(&mut self, fraction: f64) {
        if !self.on {
            // A line per quarter, only for work long enough to wonder about (over 2 s).
            let quarter = (fraction.clamp(0.0, 1.0) * 4.0).floor() as u8;
            if quarter > self.quarters && self.started.elapsed() > Duration::from_secs(2) {
                self.quarters = quarter;
                eprintln!(
                    "{}: {}% done after {:.0} s",
                    self.label,
                    quarter as u32 * 25,
                    self.started.elapsed().as_secs_f64()
                );
            }
            return;
        }
        if self.last.elapsed() < Duration::from_millis(100) && fraction < 1.0 {
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
