//! Printing to standard output without panicking.
//!
//! `println!` panics when stdout is closed or full (`relprop predict ... | head -1`,
//! `relprop info > /dev/full`). Every command prints through [`outln!`] and [`out!`]
//! instead: a write error returns from the command as a [`CliError`] (a closed pipe ends
//! it quietly with status 141, as a SIGPIPE would; any other write error is exit 2), and
//! the command's usual cleanup of partial outputs runs.

use super::error::{CliError, CliResult};
use std::io::Write;

/// Writes formatted text to stdout.
pub fn write_out(args: std::fmt::Arguments) -> CliResult {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_fmt(args)
        .and_then(|_| stdout.flush())
        .map_err(CliError::stdout)
}

/// `println!` for commands: returns a [`CliError`] from the enclosing function instead of
/// panicking when stdout cannot be written.
macro_rules! outln {
    () => {
        $crate::cli::out::write_out(format_args!("\n"))?
    };
    ($($arg:tt)*) => {
        $crate::cli::out::write_out(format_args!("{}\n", format_args!($($arg)*)))?
    };
}

/// `print!` for commands (see [`outln!`]).
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::cli::out::write_out(format_args!($($arg)*))?
    };
}
