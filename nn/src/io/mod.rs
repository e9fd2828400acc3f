//! Array and model file I/O: NumPy `.npy`, safetensors, PyTorch `.pth`, and relprop's own
//! checkpoints.
//!
//! Four formats, one error type:
//!
//! - [`npy`]: single arrays as NumPy writes them (`np.save` / `np.load`), for inputs,
//!   labels and relevance maps exchanged with Python.
//! - [`safetensors`]: named tensors by PyTorch `state_dict` name, for importing reference
//!   weights and exporting trained ones.
//! - [`pth`]: PyTorch's own `torch.save` files, read by a restricted unpickler that runs
//!   no code from the file.
//! - [`checkpoint`]: relprop's own format, which also records the architecture name and
//!   training metadata and carries a CRC32 so a damaged file is refused, not half-loaded.
//!
//! Every loader treats its input as untrusted: it never panics, and it checks each
//! declared size against the bytes actually present before allocating, so a corrupt or
//! hostile file costs at most a small multiple of its own length in memory. All failures
//! are reported as [`IoError`], whose messages are written for the person who picked the
//! file. Every writer goes through [`write_atomic`], so an interrupted save leaves the
//! previous file intact.

mod array;
pub mod checkpoint;
mod crc;
pub mod npy;
pub mod pth;
pub mod safetensors;
mod write;

#[cfg(test)]
mod tests;

pub use self::array::Array;
pub(crate) use self::array::{checked_numel, declared_bytes};
pub use self::checkpoint::{Checkpoint, TrainingMeta};
pub use self::crc::{crc32, refresh_png_crcs};
pub use self::npy::{
    npy_f32_bytes, npy_i64_bytes, parse_npy, read_npy, read_tensor, write_npy_f32, write_npy_i64,
    NpyArray,
};
pub use self::pth::{parse_pth, read_pth};
pub use self::safetensors::{
    f32_params_from_bytes, load_f32_params, parse_safetensors, read_safetensors, safetensors_bytes,
    write_safetensors,
};
pub use self::write::{check_outputs, write_all_atomic, write_atomic};

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

/// Most dimensions an error message quotes from a file's shape.
const SHAPE_DIMS_SHOWN: usize = 8;

/// A shape as an error message quotes it: `[2, 3]`, or for a hostile header declaring
/// a million dimensions the first few and `... (1000000 dimensions)`, so that one bad
/// file cannot produce a megabyte of message.
pub fn shape_text(shape: &[usize]) -> String {
    if shape.len() <= SHAPE_DIMS_SHOWN {
        return format!("{shape:?}");
    }
    let head: Vec<String> = shape[..SHAPE_DIMS_SHOWN]
        .iter()
        .map(|d| d.to_string())
        .collect();
    format!("[{}, ... ({} dimensions)]", head.join(", "), shape.len())
}

/// Everything that can go wrong reading or writing arrays, weights and checkpoints.
///
/// `what` fields name the format and the part of the file involved (for example
/// `"npy header"` or `"safetensors tensor `x`"`), so the message alone says where to look.
#[derive(Debug, Clone, PartialEq)]
pub enum IoError {
    /// The operating system refused a read, write, rename or sync.
    Io {
        /// The file that was being read or written.
        path: PathBuf,
        /// The OS error category, for callers that want to react to `NotFound` and the like.
        kind: std::io::ErrorKind,
        /// What was being done and the OS message.
        message: String,
    },
    /// The input ends before a part it declares.
    Truncated {
        /// The part that is cut short.
        what: String,
        /// Bytes that part needs.
        needed: u64,
        /// Bytes actually present.
        available: u64,
    },
    /// The leading bytes do not identify the expected format.
    BadMagic {
        /// The expected format.
        what: String,
    },
    /// The format version is one this build cannot read.
    UnsupportedVersion {
        /// The format.
        what: String,
        /// The version in the file.
        found: String,
        /// The versions this build reads.
        supported: String,
    },
    /// A checkpoint was written for a different model architecture.
    WrongArchitecture {
        /// The architecture the caller is loading into.
        expected: String,
        /// The architecture recorded in the file.
        found: String,
    },
    /// The model needs a parameter that the file does not hold.
    MissingParameter(String),
    /// The file holds a parameter that the model does not have.
    UnexpectedParameter(String),
    /// A parameter's stored shape differs from the model's.
    WrongShape {
        /// The parameter name.
        name: String,
        /// The shape the model expects.
        expected: Vec<usize>,
        /// The shape in the file.
        found: Vec<usize>,
    },
    /// An element type this loader cannot represent or was not asked for.
    UnsupportedDtype {
        /// The array or tensor concerned.
        what: String,
        /// The dtype as the file spells it (`>f4`, `BF16`, ...).
        dtype: String,
    },
    /// A declared size is beyond what can be addressed or what the format allows.
    TooLarge {
        /// The part whose size is declared.
        what: String,
        /// The declared size in bytes (saturating at `u128::MAX`).
        declared: u128,
        /// The largest size accepted here.
        limit: u128,
    },
    /// A format feature this build does not implement (Fortran order, ...).
    Unsupported {
        /// The format or part concerned.
        what: String,
        /// What is unsupported and how to avoid it.
        reason: String,
    },
    /// The bytes do not follow the format.
    Malformed {
        /// The format or part concerned.
        what: String,
        /// What is wrong.
        reason: String,
    },
    /// A stored parameter holds NaN or an infinity.
    NonFinite {
        /// The parameter name.
        name: String,
    },
}

impl IoError {
    /// Shorthand for [`IoError::Malformed`].
    pub fn malformed(what: impl Into<String>, reason: impl Into<String>) -> Self {
        IoError::Malformed {
            what: what.into(),
            reason: reason.into(),
        }
    }

    /// Shorthand for [`IoError::Truncated`].
    pub fn truncated(what: impl Into<String>, needed: usize, available: usize) -> Self {
        IoError::Truncated {
            what: what.into(),
            needed: needed as u64,
            available: available as u64,
        }
    }

    /// An OS error while working on `path`; `doing` says what (e.g. "reading").
    pub fn os(path: &Path, doing: &str, err: &std::io::Error) -> Self {
        IoError::Io {
            path: path.to_path_buf(),
            kind: err.kind(),
            message: format!("{doing}: {err}"),
        }
    }
}

impl fmt::Display for IoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IoError::Io { path, message, .. } => write!(f, "{}: {message}", path.display()),
            IoError::Truncated {
                what,
                needed,
                available,
            } => write!(
                f,
                "{what}: file is truncated: {needed} bytes are needed but only {available} remain"
            ),
            IoError::BadMagic { what } => {
                write!(f, "{what}: not a {what} file (the leading magic bytes are wrong)")
            }
            IoError::UnsupportedVersion {
                what,
                found,
                supported,
            } => write!(
                f,
                "{what}: format version {found} is not supported (this build reads {supported})"
            ),
            IoError::WrongArchitecture { expected, found } => write!(
                f,
                "checkpoint: written for architecture `{found}` but the model is `{expected}`"
            ),
            IoError::MissingParameter(name) => write!(
                f,
                "checkpoint: parameter {name} is missing (the model needs it, the file lacks it)"
            ),
            IoError::UnexpectedParameter(name) => write!(
                f,
                "checkpoint: parameter {name} is not part of the model (wrong file or architecture?)"
            ),
            IoError::WrongShape {
                name,
                expected,
                found,
            } => write!(
                f,
                "checkpoint: parameter {name} has shape {found:?} but the model expects {expected:?}"
            ),
            IoError::UnsupportedDtype { what, dtype } => {
                write!(f, "{what}: element type {dtype} is not supported here")
            }
            IoError::TooLarge {
                what,
                declared,
                limit,
            } => {
                let declared = if *declared == u128::MAX {
                    format!("more than {}", u128::MAX)
                } else {
                    declared.to_string()
                };
                write!(
                    f,
                    "{what}: declares {declared} bytes, more than the {limit} bytes allowed here"
                )
            }
            IoError::Unsupported { what, reason } => write!(f, "{what}: unsupported: {reason}"),
            IoError::Malformed { what, reason } => write!(f, "{what}: malformed file: {reason}"),
            IoError::NonFinite { name } => write!(
                f,
                "checkpoint: parameter {name} holds NaN or infinite values (the training diverged?)"
            ),
        }
    }
}

impl std::error::Error for IoError {}

/// The largest file the array and weight loaders read (1 GiB): an endless input such as
/// `/dev/zero` or a FIFO is refused at this size instead of read without bound.
pub const MAX_FILE_BYTES: u64 = 1 << 30;

/// Reads a whole file of at most [`MAX_FILE_BYTES`], for a format whose first `prefix` bytes `check` can judge: a stream that
/// does not start like the format (`/dev/zero` given as weights) is refused after those
/// bytes instead of being read up to the limit first.
pub(crate) fn read_bytes_checked(
    path: &Path,
    prefix: usize,
    check: impl FnOnce(&[u8]) -> Result<(), IoError>,
) -> Result<Vec<u8>, IoError> {
    read_capped_checked(path, MAX_FILE_BYTES, prefix, check)
}

/// Opens a file for reading; a folder is refused with a clear message.
pub(crate) fn open_readable(path: &Path) -> Result<(fs::File, fs::Metadata), IoError> {
    let file = fs::File::open(path).map_err(|e| IoError::os(path, "reading", &e))?;
    let meta = file
        .metadata()
        .map_err(|e| IoError::os(path, "reading", &e))?;
    if meta.is_dir() {
        return Err(IoError::malformed(
            path.display().to_string(),
            "this is a folder, not a file",
        ));
    }
    Ok((file, meta))
}

/// Reads from `file` until `bytes` holds `len` bytes or the file ends.
pub(crate) fn fill_to(
    file: &mut impl std::io::Read,
    bytes: &mut Vec<u8>,
    len: usize,
    path: &Path,
) -> Result<(), IoError> {
    use std::io::Read;
    let need = len.saturating_sub(bytes.len()) as u64;
    file.take(need)
        .read_to_end(bytes)
        .map_err(|e| IoError::os(path, "reading", &e))?;
    Ok(())
}

/// Reads a whole file of at most `limit` bytes: a regular file's size is checked before
/// reading, anything else (a FIFO, a device) is read up to the limit and refused past it.
pub fn read_capped(path: &Path, limit: u64) -> Result<Vec<u8>, IoError> {
    read_capped_checked(path, limit, 0, |_| Ok(()))
}

/// [`read_capped`], with `check` run on the first `prefix` bytes (fewer when the file is
/// shorter) before the rest is read.
fn read_capped_checked(
    path: &Path,
    limit: u64,
    prefix: usize,
    check: impl FnOnce(&[u8]) -> Result<(), IoError>,
) -> Result<Vec<u8>, IoError> {
    let too_large = |declared: u128| IoError::TooLarge {
        what: path.display().to_string(),
        declared,
        limit: limit.into(),
    };
    let (mut file, meta) = open_readable(path)?;
    if meta.is_file() && meta.len() > limit {
        return Err(too_large(meta.len().into()));
    }
    let mut bytes = Vec::new();
    fill_to(&mut file, &mut bytes, prefix, path)?;
    check(&bytes)?;
    let cap = usize::try_from(limit.saturating_add(1)).unwrap_or(usize::MAX);
    fill_to(&mut file, &mut bytes, cap, path)?;
    if bytes.len() as u64 > limit {
        return Err(too_large(u128::from(limit) + 1));
    }
    Ok(bytes)
}
