//! External tensor data: byte ranges of files beside the model (`model.onnx.data`).
//!
//! A location is untrusted: it must stay inside the model's folder (no absolute paths,
//! no `..`, no symbolic link leading out), the range must lie within the file, and the
//! ranges read from one file may not add up to more than its size, so that a small model
//! cannot make the reader allocate the same large range many times over.

use super::proto::StringStringEntryProto;
use relprop_nn::io::IoError;
use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Component, Path, PathBuf};

/// One opened data file: its handle, size, and how many bytes were read from it so far.
struct DataFile {
    file: File,
    len: u64,
    read: u64,
}

/// Resolves and reads external data relative to the model's folder.
pub(crate) struct External {
    /// The model's folder as given; `None` when decoding bytes that have no folder.
    base: Option<PathBuf>,
    /// The folder canonicalized, once needed.
    canonical_base: Option<PathBuf>,
    /// Open files by canonical path, so that two spellings of a name share the budget.
    files: HashMap<PathBuf, DataFile>,
}

/// Where a tensor's bytes are, from its `external_data` entries.
struct Location<'a> {
    location: &'a str,
    offset: u64,
    length: Option<u64>,
}

fn parse_entries<'a>(
    entries: &'a [StringStringEntryProto],
    what: &str,
) -> Result<Location<'a>, IoError> {
    let (mut location, mut offset, mut length) = (None, None, None);
    for e in entries {
        let slot = match e.key.as_str() {
            "location" => {
                if location.replace(e.value.as_str()).is_some() {
                    return Err(duplicate(what, "location"));
                }
                continue;
            }
            "offset" => &mut offset,
            "length" => &mut length,
            // `checksum` and keys from newer versions do not affect where the bytes are.
            _ => continue,
        };
        let v: u64 = e.value.trim().parse().map_err(|_| {
            IoError::malformed(
                what,
                format!(
                    "external data {} `{}` is not a non-negative integer",
                    e.key, e.value
                ),
            )
        })?;
        if slot.replace(v).is_some() {
            return Err(duplicate(what, &e.key));
        }
    }
    let location = location
        .ok_or_else(|| IoError::malformed(what, "external data without a `location` entry"))?;
    Ok(Location {
        location,
        offset: offset.unwrap_or(0),
        length,
    })
}

fn duplicate(what: &str, key: &str) -> IoError {
    IoError::malformed(what, format!("external data names its {key} twice"))
}

impl External {
    /// External data is looked up in `base`; without one it is refused.
    pub(crate) fn new(base: Option<&Path>) -> External {
        External {
            base: base.map(Path::to_path_buf),
            canonical_base: None,
            files: HashMap::new(),
        }
    }

    /// Reads the range `entries` describe, which must be exactly `expected` bytes.
    pub(crate) fn read(
        &mut self,
        entries: &[StringStringEntryProto],
        expected: usize,
        what: &str,
    ) -> Result<Vec<u8>, IoError> {
        let loc = parse_entries(entries, what)?;
        let path = self.resolve(loc.location, what)?;
        let data = match self.files.entry(path.clone()) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => {
                let file = open_regular(&path, what)?;
                let len = file
                    .metadata()
                    .map_err(|err| {
                        IoError::os(&path, &format!("{what}: reading external data"), &err)
                    })?
                    .len();
                e.insert(DataFile { file, len, read: 0 })
            }
        };
        let part = format!("{what} external data `{}`", loc.location);
        if loc.offset > data.len {
            return Err(IoError::Truncated {
                what: part,
                needed: loc.offset,
                available: data.len,
            });
        }
        let length = loc.length.unwrap_or(data.len - loc.offset);
        let end = loc.offset.saturating_add(length);
        if end > data.len {
            return Err(IoError::Truncated {
                what: part,
                needed: end,
                available: data.len,
            });
        }
        if length != expected as u64 {
            return Err(IoError::malformed(
                part,
                format!("the range holds {length} bytes but the tensor needs {expected}"),
            ));
        }
        if data.read.saturating_add(length) > data.len {
            return Err(IoError::malformed(
                part,
                format!(
                    "the tensors read {} bytes from a file of {} (overlapping ranges)",
                    data.read.saturating_add(length),
                    data.len
                ),
            ));
        }
        data.read += length;
        let os =
            |e: std::io::Error| IoError::os(&path, &format!("{what}: reading external data"), &e);
        data.file.seek(SeekFrom::Start(loc.offset)).map_err(os)?;
        let mut bytes = Vec::with_capacity(expected);
        (&mut data.file)
            .take(length)
            .read_to_end(&mut bytes)
            .map_err(os)?;
        if bytes.len() != expected {
            // The file shrank after its size was taken.
            return Err(IoError::truncated(part, expected, bytes.len()));
        }
        Ok(bytes)
    }

    /// The canonical path of `location`, refused unless it is inside the model's folder.
    fn resolve(&mut self, location: &str, what: &str) -> Result<PathBuf, IoError> {
        let Some(base) = &self.base else {
            return Err(IoError::Unsupported {
                what: what.to_string(),
                reason: format!(
                    "its data is in the external file `{location}`, which can only be found \
                     when the model is read from a file (read_model), not decoded from bytes"
                ),
            });
        };
        let refuse = |why: &str| {
            IoError::malformed(
                what,
                format!("external data location `{location}` {why}; it must name a file in the model's folder"),
            )
        };
        let rel = Path::new(location);
        if location.is_empty() {
            return Err(refuse("is empty"));
        }
        if rel.is_absolute() || rel.has_root() {
            return Err(refuse("is an absolute path"));
        }
        if rel
            .components()
            .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
        {
            return Err(refuse("climbs out with `..`"));
        }
        if self.canonical_base.is_none() {
            let canonical = base.canonicalize().map_err(|e| {
                IoError::os(base, &format!("{what}: finding the model's folder"), &e)
            })?;
            self.canonical_base = Some(canonical);
        }
        let joined = base.join(rel);
        let canonical = joined
            .canonicalize()
            .map_err(|e| IoError::os(&joined, &format!("{what}: opening external data"), &e))?;
        match &self.canonical_base {
            Some(b) if canonical.starts_with(b) => Ok(canonical),
            _ => Err(refuse("leads outside the folder (through a symbolic link)")),
        }
    }
}

/// Opens `path` for reading if it is a regular file: a FIFO or device could block or
/// never end.
pub(crate) fn open_regular(path: &Path, what: &str) -> Result<File, IoError> {
    let not_regular = || IoError::Io {
        path: path.to_path_buf(),
        kind: std::io::ErrorKind::InvalidInput,
        message: format!("{what}: not a regular file (a directory, FIFO or device?)"),
    };
    let meta =
        std::fs::metadata(path).map_err(|e| IoError::os(path, &format!("{what}: opening"), &e))?;
    if !meta.is_file() {
        return Err(not_regular());
    }
    let file = File::open(path).map_err(|e| IoError::os(path, &format!("{what}: opening"), &e))?;
    // Checked again on the handle: the path may have been replaced in between.
    match file.metadata() {
        Ok(m) if m.is_file() => Ok(file),
        Ok(_) => Err(not_regular()),
        Err(e) => Err(IoError::os(path, &format!("{what}: opening"), &e)),
    }
}
