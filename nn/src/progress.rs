//! Progress bars for long work, behind the `progress` feature (on by default).
//!
//! Without the feature every call is a no-op, so a library user can leave the terminal
//! crate out; the command-line tool turns it on.

/// A progress bar on stderr, hidden when asked to be quiet or when stderr is not a
/// terminal (logs and pipes stay clean).
pub struct Progress {
    #[cfg(feature = "progress")]
    bar: indicatif::ProgressBar,
}

impl Progress {
    /// A bar of `len` steps (a spinner when the length is unknown), showing `message`.
    pub fn new(len: Option<usize>, quiet: bool, message: &str) -> Self {
        #[cfg(feature = "progress")]
        {
            use std::io::IsTerminal;
            let bar = if quiet || !std::io::stderr().is_terminal() {
                indicatif::ProgressBar::hidden()
            } else {
                let bar = match len {
                    Some(n) => indicatif::ProgressBar::new(n as u64),
                    None => indicatif::ProgressBar::new_spinner(),
                };
                let template = "{bar:30} {pos}/{len} {msg} [{elapsed_precise}<{eta_precise}]";
                if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
                    bar.set_style(style);
                }
                bar
            };
            bar.set_message(message.to_string());
            Progress { bar }
        }
        #[cfg(not(feature = "progress"))]
        {
            let _ = (len, quiet, message);
            Progress {}
        }
    }

    /// One more step done.
    pub fn inc(&self) {
        #[cfg(feature = "progress")]
        self.bar.inc(1);
    }

    /// `done` steps done.
    pub fn set_position(&self, done: usize) {
        #[cfg(feature = "progress")]
        self.bar.set_position(done as u64);
        #[cfg(not(feature = "progress"))]
        let _ = done;
    }

    /// Replaces the message shown after the bar.
    pub fn set_message(&self, message: impl FnOnce() -> String) {
        #[cfg(feature = "progress")]
        self.bar.set_message(message());
        #[cfg(not(feature = "progress"))]
        let _ = message;
    }

    /// Leaves the bar where it stopped (the work failed).
    pub fn abandon(&self) {
        #[cfg(feature = "progress")]
        self.bar.abandon();
    }

    /// Removes the bar (the work is done).
    pub fn finish(&self) {
        #[cfg(feature = "progress")]
        self.bar.finish_and_clear();
    }
}
