//! Progress of long work a person may watch (catch-up, rebuild-cache, backfill): a bar with
//! rate and ETA on a terminal; on anything else (a log file, a supervisor) a plain
//! `progress: …` line on stderr at most every few seconds, with the same figures.

use std::io::IsTerminal;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use indicatif::{ProgressDrawTarget, TermLike};

/// Most one log line per this long (the last state is printed by the caller's summary).
const LOG_EVERY: Duration = Duration::from_secs(5);

/// Whether progress is drawn as a bar (stderr is a terminal).
pub(crate) fn on_terminal() -> bool {
    std::io::stderr().is_terminal()
}

/// Where a progress bar draws: the terminal, or log lines.
pub(crate) fn target() -> ProgressDrawTarget {
    if on_terminal() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::term_like_with_hz(Box::new(LogLines::default()), 1)
    }
}

/// `template` for the target: as given on a terminal; without its bar otherwise.
pub(crate) fn template(template: &str) -> String {
    if on_terminal() {
        template.to_owned()
    } else {
        template.replace("[{bar:40}] ", "").replace("{bar:40}", "")
    }
}

/// A "terminal" that turns each redraw into a log line, at most every [`LOG_EVERY`].
#[derive(Debug, Default)]
struct LogLines {
    last: Mutex<Option<Instant>>,
}

impl LogLines {
    fn line(&self, s: &str) {
        let s = s.trim();
        if s.is_empty() {
            return;
        }
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        if last.is_none_or(|at| at.elapsed() >= LOG_EVERY) {
            *last = Some(Instant::now());
            eprintln!("progress: {s}");
        }
    }
}

impl TermLike for LogLines {
    fn width(&self) -> u16 {
        200
    }
    fn move_cursor_up(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn move_cursor_down(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn move_cursor_right(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn move_cursor_left(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn write_line(&self, s: &str) -> std::io::Result<()> {
        self.line(s);
        Ok(())
    }
    fn write_str(&self, s: &str) -> std::io::Result<()> {
        self.line(s);
        Ok(())
    }
    fn clear_line(&self) -> std::io::Result<()> {
        Ok(())
    }
    fn flush(&self) -> std::io::Result<()> {
        Ok(())
    }
}
