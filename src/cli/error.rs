//! Command-line errors and exit codes: 2 for bad input, 1 for an internal failure.

use relprop::core::Error as CoreError;
use relprop::nn::io::IoError;
use std::fmt;

/// An error with the exit code it maps to.
#[derive(Debug)]
pub struct CliError {
    /// 2: the user's input was wrong; 1: something failed inside relprop; 141: stdout was
    /// closed by its reader.
    pub code: u8,
    /// One clear message for the user (empty: end quietly).
    pub message: String,
}

impl CliError {
    /// Bad input (exit code 2).
    pub fn input(message: impl Into<String>) -> Self {
        CliError {
            code: 2,
            message: message.into(),
        }
    }

    /// Standard output could not be written: a closed pipe ends the command quietly with
    /// status 141 (128 + SIGPIPE, what a shell shows for a writer whose reader left);
    /// anything else (a full disk) is exit 2.
    pub fn stdout(e: std::io::Error) -> Self {
        match e.kind() {
            std::io::ErrorKind::BrokenPipe => CliError {
                code: 141,
                message: String::new(),
            },
            _ => CliError::input(format!("cannot write to standard output: {e}")),
        }
    }

    /// Internal failure (exit code 1).
    pub fn internal(message: impl Into<String>) -> Self {
        CliError {
            code: 1,
            message: message.into(),
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<CoreError> for CliError {
    fn from(e: CoreError) -> Self {
        match e {
            // A failed backward walk is relprop's problem, not the user's.
            CoreError::Backward { .. } => CliError::internal(e.to_string()),
            _ => CliError::input(e.to_string()),
        }
    }
}

impl From<IoError> for CliError {
    fn from(e: IoError) -> Self {
        CliError::input(e.to_string())
    }
}

/// A bad file: the message starts with the file's path unless it already names it.
pub fn in_file(path: &std::path::Path, e: impl fmt::Display) -> CliError {
    let (shown, message) = (path.display().to_string(), e.to_string());
    if message.contains(&shown) {
        CliError::input(message)
    } else {
        CliError::input(format!("{shown}: {message}"))
    }
}

/// Result of a command.
pub type CliResult<T = ()> = Result<T, CliError>;
