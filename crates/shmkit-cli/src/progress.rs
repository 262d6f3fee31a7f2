//! The progress bar of long transfers (`send`, `recv`), on standard error.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// `--progress` / `--no-progress`, shared by the commands that move data.
#[derive(Debug, clap::Args)]
pub struct ProgressArgs {
    /// Show a progress bar with bytes and rate on standard error (the
    /// default when standard error is a terminal).
    #[arg(long, overrides_with = "no_progress")]
    progress: bool,
    /// Never show the progress bar.
    #[arg(long)]
    no_progress: bool,
}

impl ProgressArgs {
    /// A bar for `total` bytes (a spinner when unknown), or a hidden one.
    pub fn bar(&self, total: Option<u64>, verb: &'static str) -> ProgressBar {
        let show = self.progress || (!self.no_progress && std::io::stderr().is_terminal());
        if !show {
            return ProgressBar::hidden();
        }
        let bar = match total {
            Some(n) => ProgressBar::with_draw_target(Some(n), ProgressDrawTarget::stderr()).with_style(
                ProgressStyle::with_template(
                    "{prefix} [{bar:30}] {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} {eta}",
                )
                .expect("a valid template")
                .progress_chars("=> "),
            ),
            None => ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()).with_style(
                ProgressStyle::with_template("{prefix} {spinner} {binary_bytes} {binary_bytes_per_sec} {elapsed}")
                    .expect("a valid template"),
            ),
        };
        bar.set_prefix(verb);
        bar
    }
}
