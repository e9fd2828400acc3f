//! The two file layouts of `torch.save`: the zip archive (PyTorch 1.6 and later) and the
//! legacy stream of pickles followed by raw storages (older files, such as many published
//! weights). Both end up as one pickle and the bytes of each storage it names.

use super::pickle::{unpickle, Pickle, Value};
use crate::io::{IoError, MAX_FILE_BYTES};
use std::borrow::Cow;
use std::collections::HashMap;
use std::io::{Cursor, Read};

/// The legacy format's first pickle: protocol 2, the magic number 0x1950a86a20f9469cfc6c.
pub(super) const LEGACY_MAGIC: [u8; 15] = [
    0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e,
];

/// A zip archive's local-file signature.
pub(super) const ZIP_MAGIC: [u8; 4] = *b"PK\x03\x04";

/// The only legacy protocol version PyTorch has written.
const LEGACY_PROTOCOL: i64 = 1001;

/// The decoded pickle and each storage's bytes by key.
pub(super) struct Parts<'a> {
    /// The pickle's value (the state dict).
    pub root: Value,
    /// What the value refers to.
    pub heap: Pickle,
    /// Each storage's bytes, exactly `numel * dtype size` long.
    pub storages: HashMap<String, Cow<'a, [u8]>>,
}

fn bad(what: &str, reason: impl Into<String>) -> IoError {
    IoError::malformed(what, reason)
}

/// Bytes a storage declares, or an error when that overflows or passes the file limit.
fn storage_bytes(heap: &Pickle, key: &str) -> Result<(usize, usize), IoError> {
    let decls: Vec<_> = heap.storages.iter().filter(|s| s.key == key).collect();
    let first = decls[0];
    if decls
        .iter()
        .any(|s| s.dtype != first.dtype || s.numel != first.numel)
    {
        return Err(bad(
            "pth pickle",
            format!("storage {key} is declared with two different types or sizes"),
        ));
    }
    let bytes = first
        .numel
        .checked_mul(first.dtype.size())
        .filter(|&b| b as u64 <= MAX_FILE_BYTES)
        .ok_or_else(|| IoError::TooLarge {
            what: format!("pth storage {key}"),
            declared: (first.numel as u128).saturating_mul(first.dtype.size() as u128),
            limit: MAX_FILE_BYTES.into(),
        })?;
    Ok((first.numel, bytes))
}

/// The distinct storage keys, in order of first mention.
fn keys(heap: &Pickle) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for s in &heap.storages {
        if !out.contains(&s.key) {
            out.push(s.key.clone());
        }
    }
    out
}

/// Splits a legacy file: magic, protocol version, system info, the state dict's pickle,
/// the list of storage keys, then per key its element count (u64) and raw bytes.
pub(super) fn legacy(bytes: &[u8]) -> Result<Parts<'_>, IoError> {
    const WHAT: &str = "pth (legacy format)";
    let mut pos = LEGACY_MAGIC.len();
    let next = |pos: &mut usize| -> Result<(Value, Pickle), IoError> {
        let (v, heap, used) = unpickle(&bytes[*pos..])?;
        *pos += used;
        Ok((v, heap))
    };
    let (version, _) = next(&mut pos)?;
    if version != Value::Int(LEGACY_PROTOCOL) {
        return Err(IoError::UnsupportedVersion {
            what: WHAT.into(),
            found: format!("{version:?}"),
            supported: LEGACY_PROTOCOL.to_string(),
        });
    }
    let (info, info_heap) = next(&mut pos)?;
    let little = info_heap.dict(info).and_then(|d| {
        d.iter()
            .find(|(k, _)| info_heap.str(*k) == Some("little_endian"))
            .map(|(_, v)| *v)
    });
    if little != Some(Value::Bool(true)) {
        return Err(IoError::Unsupported {
            what: WHAT.into(),
            reason: "the file was not written on a little-endian machine".into(),
        });
    }
    let (root, heap) = next(&mut pos)?;
    let (key_list, key_heap) = next(&mut pos)?;
    let listed: Vec<String> = key_heap
        .seq(key_list)
        .ok_or_else(|| bad(WHAT, "the storage key list is not a list"))?
        .iter()
        .map(|&k| key_heap.str(k).map(str::to_string))
        .collect::<Option<_>>()
        .ok_or_else(|| bad(WHAT, "a storage key is not a string"))?;
    let mut storages = HashMap::new();
    for key in listed {
        if storages.contains_key(&key) {
            return Err(bad(WHAT, format!("storage {key} is listed twice")));
        }
        if !heap.storages.iter().any(|s| s.key == key) {
            return Err(bad(WHAT, format!("storage {key} is listed but never used")));
        }
        let (numel, len) = storage_bytes(&heap, &key)?;
        let head = bytes
            .get(pos..pos + 8)
            .ok_or_else(|| IoError::truncated(WHAT, 8, bytes.len() - pos))?;
        let stored = u64::from_le_bytes(head.try_into().expect("8 bytes"));
        if stored != numel as u64 {
            return Err(bad(
                WHAT,
                format!("storage {key} holds {stored} elements but is declared with {numel}"),
            ));
        }
        pos += 8;
        let data = bytes.get(pos..pos + len).ok_or_else(|| {
            IoError::truncated(format!("{WHAT} storage {key}"), len, bytes.len() - pos)
        })?;
        pos += len;
        storages.insert(key, Cow::Borrowed(data));
    }
    if pos != bytes.len() {
        return Err(bad(
            WHAT,
            format!("{} bytes follow the last storage", bytes.len() - pos),
        ));
    }
    if let Some(missing) = keys(&heap).into_iter().find(|k| !storages.contains_key(k)) {
        return Err(bad(
            WHAT,
            format!("storage {missing} is used but not stored"),
        ));
    }
    Ok(Parts {
        root,
        heap,
        storages,
    })
}

/// Opens a zip archive held in memory.
pub(super) fn open_zip(bytes: &[u8]) -> Result<zip::ZipArchive<Cursor<&[u8]>>, IoError> {
    zip::ZipArchive::new(Cursor::new(bytes))
        .map_err(|e| bad("zip archive", format!("cannot read the archive: {e}")))
}

/// Reads the member `name` of an archive, refusing one that declares or inflates to more
/// than `*budget` bytes; what it takes is subtracted from the budget, so a zip bomb stops
/// at the budget however its entries are split.
pub(super) fn read_member(
    zip: &mut zip::ZipArchive<Cursor<&[u8]>>,
    name: &str,
    budget: &mut u64,
) -> Result<Option<Vec<u8>>, IoError> {
    let mut entry = match zip.by_name(name) {
        Ok(e) => e,
        Err(zip::result::ZipError::FileNotFound) => return Ok(None),
        Err(e) => return Err(bad("zip archive", format!("member {name}: {e}"))),
    };
    let declared = entry.size();
    if declared > *budget {
        return Err(IoError::TooLarge {
            what: format!("zip member {name}"),
            declared: declared.into(),
            limit: (*budget).into(),
        });
    }
    let mut out = Vec::with_capacity(declared as usize);
    (&mut entry)
        .take(declared + 1)
        .read_to_end(&mut out)
        .map_err(|e| bad("zip archive", format!("member {name}: {e}")))?;
    if out.len() as u64 != declared {
        return Err(bad(
            "zip archive",
            format!(
                "member {name} holds {} bytes but declares {declared}",
                out.len()
            ),
        ));
    }
    *budget -= declared;
    Ok(Some(out))
}

/// The most a zip input may inflate to: a stored `.pth` is no larger than its archive, and
/// a compressed one (inside a wheel) a few times smaller.
pub(super) fn inflate_budget(len: usize) -> u64 {
    (len as u64)
        .saturating_mul(8)
        .saturating_add(1 << 20)
        .min(MAX_FILE_BYTES)
}

/// Splits a zip checkpoint: `<folder>/data.pkl`, optionally `<folder>/byteorder`, and a
/// member `<folder>/data/<key>` per storage.
pub(super) fn zipped(bytes: &[u8]) -> Result<Parts<'static>, IoError> {
    const WHAT: &str = "pth (zip format)";
    let mut zip = open_zip(bytes)?;
    let pickles: Vec<String> = zip
        .file_names()
        .filter(|n| *n == "data.pkl" || n.ends_with("/data.pkl"))
        .map(str::to_string)
        .collect();
    let [pkl] = pickles.as_slice() else {
        return Err(bad(
            WHAT,
            format!("expected one data.pkl member, found {}", pickles.len()),
        ));
    };
    let folder = &pkl[..pkl.len() - "data.pkl".len()];
    if folder.matches('/').count() > 1 {
        return Err(bad(WHAT, "data.pkl is nested more than one folder deep"));
    }
    let mut budget = inflate_budget(bytes.len());
    if let Some(order) = read_member(&mut zip, &format!("{folder}byteorder"), &mut budget)? {
        if order != b"little" {
            return Err(IoError::Unsupported {
                what: WHAT.into(),
                reason: "the file was not written on a little-endian machine".into(),
            });
        }
    }
    let pickle = read_member(&mut zip, pkl, &mut budget)?.unwrap_or_default();
    let (root, heap, used) = unpickle(&pickle)?;
    if used != pickle.len() {
        return Err(bad(WHAT, "data.pkl has bytes after its STOP opcode"));
    }
    let mut storages = HashMap::new();
    for key in keys(&heap) {
        let (_, len) = storage_bytes(&heap, &key)?;
        let name = format!("{folder}data/{key}");
        let data = read_member(&mut zip, &name, &mut budget)?
            .ok_or_else(|| bad(WHAT, format!("storage {key} is used but {name} is absent")))?;
        if data.len() != len {
            return Err(bad(
                WHAT,
                format!(
                    "{name} holds {} bytes but the storage needs {len}",
                    data.len()
                ),
            ));
        }
        storages.insert(key, Cow::Owned(data));
    }
    Ok(Parts {
        root,
        heap,
        storages,
    })
}
