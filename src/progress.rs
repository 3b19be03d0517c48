//! A progress bar on stderr that appears only for runs longer than a second, only on a terminal,
//! and never under `--json` (whose stdout must stay machine-readable).

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// Shows progress through virtual time once the run has taken a second of wall time.
pub struct VirtualTimeProgress {
    enabled: bool,
    started: Instant,
    bar: Option<ProgressBar>,
}

impl VirtualTimeProgress {
    /// A bar that may appear; `quiet` (as under `--json`) keeps it off.
    pub fn new(quiet: bool) -> Self {
        VirtualTimeProgress {
            enabled: !quiet && std::io::stderr().is_terminal(),
            started: Instant::now(),
            bar: None,
        }
    }

    /// Reports that virtual time reached `now_ms` of `end_ms`.
    pub fn update(&mut self, now_ms: u64, end_ms: u64) {
        if !self.enabled {
            return;
        }
        if self.bar.is_none() && self.started.elapsed() >= Duration::from_secs(1) {
            let bar = ProgressBar::new(end_ms);
            let style = ProgressStyle::with_template(
                "{spinner} virtual {pos}/{len} ms [{bar:40}] {elapsed_precise} eta {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style);
            self.bar = Some(bar);
        }
        if let Some(bar) = &self.bar {
            bar.set_position(now_ms);
        }
    }

    /// Removes the bar.
    pub fn finish(self) {
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}
