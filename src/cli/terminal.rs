//! What long commands show a person on a terminal: a progress bar (indicatif
//! draws nothing when stderr is a pipe or a file) and a summary table at the
//! end (only when stdout is a terminal). Scripts reading a pipe get the plain
//! lines the commands always printed, and nothing else.

use crate::pool::Progress;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::time::Duration;

/// A bar on stderr, drawn only on a terminal.
pub struct Bar(ProgressBar);

impl Bar {
    pub fn new(what: &str) -> Self {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("{spinner} {msg} {human_pos}{len_text} [{elapsed}]")
                .unwrap_or_else(|_| ProgressStyle::default_spinner())
                .with_key(
                    "len_text",
                    |state: &indicatif::ProgressState, out: &mut dyn std::fmt::Write| {
                        if let Some(len) = state.len() {
                            let _ = write!(out, " of {len}");
                        }
                    },
                ),
        );
        bar.set_message(what.to_owned());
        bar.enable_steady_tick(Duration::from_millis(120));
        Self(bar)
    }

    pub fn finish(&self) {
        self.0.finish_and_clear();
    }
}

impl Progress for Bar {
    fn set_length(&self, steps: u64) {
        self.0.set_length(steps);
    }
    fn advance(&self, steps: u64) {
        self.0.inc(steps);
    }
    fn say(&self, what: &str) {
        self.0.set_message(what.to_owned());
    }
}

/// Prints [`summary`] when stdout is a terminal.
pub fn print_summary(title: &str, rows: &[(&str, String)]) {
    use std::io::IsTerminal as _;
    if std::io::stdout().is_terminal() {
        print!("{}", summary(title, rows));
    }
}

/// Two aligned columns under a title, for the end of a command.
pub fn summary(title: &str, rows: &[(&str, String)]) -> String {
    let width = rows
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0);
    let mut out = format!("{title}\n");
    for (key, value) in rows {
        out.push_str(&format!("  {key:<width$}  {value}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_align_their_values() {
        assert_eq!(
            summary(
                "reclaim",
                &[("run", "7".into()), ("reclaimed", "12".into())]
            ),
            "reclaim\n  run        7\n  reclaimed  12\n"
        );
    }
}
