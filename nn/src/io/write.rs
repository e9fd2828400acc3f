//! The one way relprop writes files: every output of a command is staged to a temporary
//! file beside its target, and only when all of them are complete are they moved into
//! place. A failed run therefore replaces nothing, and a reader never sees half a file.
//!
//! What is at the target decides how it is written:
//! - nothing, or a regular file: staged, then renamed over it (keeping its permissions);
//!   a read-only file is refused, never replaced (even by root, who could);
//! - a symbolic link: the file it points to is written, the link stays;
//! - a character device (`/dev/null`, a terminal): written through, never replaced;
//! - a directory, FIFO, socket or block device: refused with a clear error (a FIFO
//!   without a reader would block for ever).
//!
//! Temporary names stay within the 255-byte file-name limit, and outputs that are the
//! same file as one another or as an input are refused before any work.

use super::IoError;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// The longest file name most file systems accept, in bytes.
const NAME_MAX: usize = 255;

fn refuse(path: &Path, message: impl Into<String>) -> IoError {
    IoError::Io {
        path: path.to_path_buf(),
        kind: std::io::ErrorKind::InvalidInput,
        message: message.into(),
    }
}

/// Where and how one output is written.
enum Target {
    /// A regular file (existing or not) at this resolved path, with the permissions to keep.
    File(PathBuf, Option<fs::Permissions>),
    /// A character device, written through.
    Device(PathBuf),
}

/// Classifies `path` (see the module docs); errors for what is never written.
fn target(path: &Path) -> Result<Target, IoError> {
    if path.file_name().is_none() {
        return Err(refuse(path, "writing: the path does not name a file"));
    }
    // A link is followed: the file it points to is what the user means.
    let resolved = match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => {
            fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
        }
        _ => path.to_path_buf(),
    };
    match fs::metadata(&resolved) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let parent = match resolved.parent() {
                Some(p) if !p.as_os_str().is_empty() => p,
                _ => Path::new("."),
            };
            if !parent.is_dir() {
                return Err(IoError::Io {
                    path: path.to_path_buf(),
                    kind: std::io::ErrorKind::NotFound,
                    message: format!("writing: the folder {} does not exist", parent.display()),
                });
            }
            Ok(Target::File(resolved, None))
        }
        Err(e) => Err(IoError::os(path, "writing", &e)),
        Ok(m) if m.is_file() => {
            if m.permissions().readonly() {
                return Err(refuse(
                    path,
                    "writing: the file is read-only; relprop does not replace it",
                ));
            }
            Ok(Target::File(resolved, Some(m.permissions())))
        }
        Ok(m) if m.is_dir() => Err(refuse(path, "writing: this is a folder, not a file")),
        Ok(m) => special(path, resolved, &m),
    }
}

#[cfg(unix)]
fn special(path: &Path, resolved: PathBuf, m: &fs::Metadata) -> Result<Target, IoError> {
    use std::os::unix::fs::FileTypeExt;
    let t = m.file_type();
    if t.is_char_device() {
        Ok(Target::Device(resolved))
    } else if t.is_fifo() {
        Err(refuse(
            path,
            "writing: this is a FIFO; relprop writes regular files and devices",
        ))
    } else {
        Err(refuse(
            path,
            "writing: this is not a regular file or a character device",
        ))
    }
}

#[cfg(not(unix))]
fn special(path: &Path, _resolved: PathBuf, _m: &fs::Metadata) -> Result<Target, IoError> {
    Err(refuse(path, "writing: this is not a regular file"))
}

/// A temporary name beside `path` whose file name stays within [`NAME_MAX`] bytes.
fn temp_path(path: &Path) -> PathBuf {
    let n = TMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let suffix = format!(".tmp-{}-{n}", std::process::id());
    let name = path
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut keep = NAME_MAX.saturating_sub(suffix.len() + 1).min(name.len());
    while !name.is_char_boundary(keep) {
        keep -= 1;
    }
    path.with_file_name(format!(".{}{suffix}", &name[..keep]))
}

/// The file `path` names, for comparing outputs and inputs: resolved when it exists,
/// else its folder resolved joined with its name.
fn canonical(path: &Path) -> PathBuf {
    if let Ok(p) = fs::canonicalize(path) {
        return p;
    }
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    match (fs::canonicalize(parent), path.file_name()) {
        (Ok(p), Some(name)) => p.join(name),
        _ => path.to_path_buf(),
    }
}

/// What a path names: its canonical spelling and, when the file exists, its device and
/// inode, so that a hard link to an input counts as that input.
struct Identity {
    path: PathBuf,
    file: Option<(u64, u64)>,
}

impl Identity {
    fn of(path: &Path) -> Self {
        #[cfg(unix)]
        let file = {
            use std::os::unix::fs::MetadataExt;
            fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
        };
        #[cfg(not(unix))]
        let file = None;
        Identity {
            path: canonical(path),
            file,
        }
    }

    fn same(&self, other: &Identity) -> bool {
        self.path == other.path || (self.file.is_some() && self.file == other.file)
    }
}

/// Checks, before any long work, that every output can be written: each names a file in
/// an existing folder, none is read-only or a FIFO, and no output is an input or another
/// output. Character devices such as `/dev/null` may be named more than once.
pub fn check_outputs(outputs: &[&Path], inputs: &[&Path]) -> Result<(), IoError> {
    let inputs: Vec<Identity> = inputs.iter().map(|p| Identity::of(p)).collect();
    let mut seen: Vec<Identity> = Vec::new();
    for &out in outputs {
        let device = matches!(target(out)?, Target::Device(_));
        let id = Identity::of(out);
        if !device && inputs.iter().any(|i| i.same(&id)) {
            return Err(refuse(
                out,
                "writing: this output is also an input; relprop does not overwrite its inputs",
            ));
        }
        if !device && seen.iter().any(|i| i.same(&id)) {
            return Err(refuse(out, "writing: two outputs name the same file"));
        }
        seen.push(id);
    }
    Ok(())
}

/// Writes every `(path, bytes)` pair, all or nothing: each is staged (written and synced
/// to a temporary file beside its target) before any is moved into place.
pub fn write_all_atomic(files: &[(&Path, &[u8])]) -> Result<(), IoError> {
    let paths: Vec<&Path> = files.iter().map(|(p, _)| *p).collect();
    check_outputs(&paths, &[])?;
    let mut staged: Vec<(PathBuf, PathBuf)> = Vec::new(); // (temporary, target)
    let mut devices: Vec<(PathBuf, &[u8])> = Vec::new();
    let result = (|| {
        for &(path, bytes) in files {
            match target(path)? {
                Target::Device(dev) => devices.push((dev, bytes)),
                Target::File(real, permissions) => {
                    let tmp = temp_path(&real);
                    staged.push((tmp.clone(), real));
                    let mut file = fs::File::create(&tmp)
                        .map_err(|e| IoError::os(path, "creating temporary file", &e))?;
                    file.write_all(bytes)
                        .map_err(|e| IoError::os(path, "writing temporary file", &e))?;
                    file.sync_all()
                        .map_err(|e| IoError::os(path, "syncing temporary file", &e))?;
                    if let Some(p) = permissions {
                        fs::set_permissions(&tmp, p)
                            .map_err(|e| IoError::os(path, "keeping the file's permissions", &e))?;
                    }
                }
            }
        }
        for (dev, bytes) in &devices {
            let mut f = fs::OpenOptions::new()
                .write(true)
                .open(dev)
                .map_err(|e| IoError::os(dev, "opening device", &e))?;
            f.write_all(bytes)
                .map_err(|e| IoError::os(dev, "writing device", &e))?;
        }
        for (tmp, real) in &staged {
            fs::rename(tmp, real).map_err(|e| IoError::os(real, "renaming temporary file", &e))?;
        }
        Ok(())
    })();
    if result.is_err() {
        // Best effort: the error that matters is the one already being returned.
        for (tmp, _) in &staged {
            let _ = fs::remove_file(tmp);
        }
        return result;
    }
    // Persist the renames; some file systems refuse to open folders, which only weakens
    // durability after a power cut, so that failure is ignored.
    #[cfg(unix)]
    for (_, real) in &staged {
        if let Some(dir) = real.parent().filter(|d| !d.as_os_str().is_empty()) {
            if let Ok(d) = fs::File::open(dir) {
                let _ = d.sync_all();
            }
        }
    }
    Ok(())
}

/// Writes `bytes` to `path` so that readers see either the old file or the complete new
/// one (see the module docs for what is refused and what is written through).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), IoError> {
    write_all_atomic(&[(path, bytes)])
}
