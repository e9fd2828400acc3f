//! PyTorch checkpoints (`.pth`, `.pt`) read without Python and without running any code.
//!
//! `torch.save(model.state_dict(), path)` writes a pickle (Python's serialization, a
//! program that may import and call anything) plus the raw bytes of each tensor storage,
//! either in a zip archive (PyTorch 1.6 and later) or as a legacy stream. This reader
//! accepts only what a tensor state dict needs, as PyTorch's `weights_only=True` does:
//! the data opcodes, `collections.OrderedDict`, the tensor rebuild functions and the typed
//! storages (`globals`); any other import is refused by name. Each tensor's offset,
//! shape and strides are checked against its storage before its values are copied, and
//! the copies together may not exceed a small multiple of the file's length.
//!
//! - `pickle`: the restricted stack machine.
//! - `globals`: the allowed imports and the tensors they describe.
//! - `archive`: the zip and legacy layouts, and bounded reads of zip members.

mod archive;
mod globals;
mod pickle;

pub use self::globals::StorageDtype;

use self::archive::{Parts, LEGACY_MAGIC, ZIP_MAGIC};
use self::globals::TensorRef;
use self::pickle::Value;
use super::{checked_numel, read_bytes_checked, Array, IoError};
use std::path::Path;

/// Output bytes allowed per input byte (plus [`OUTPUT_SLACK`]): a state dict whose
/// tensors share storages may copy some bytes twice, never more.
const OUTPUT_PER_INPUT: u64 = 2;
/// Output bytes allowed beyond [`OUTPUT_PER_INPUT`] times the input.
const OUTPUT_SLACK: u64 = 1 << 16;

/// Parses a `.pth` file's bytes into `(name, array)` pairs in the state dict's order.
///
/// Float (f32), Double (f64), Long (i64) and Byte (u8) tensors are returned; a tensor of
/// another type is an [`IoError::UnsupportedDtype`] naming it. Entries that are not
/// tensors (numbers, strings) are skipped; a training checkpoint that nests its weights
/// under `state_dict` or `model` is read from there.
pub fn parse_pth(bytes: &[u8]) -> Result<Vec<(String, Array)>, IoError> {
    let parts = if bytes.starts_with(&ZIP_MAGIC) {
        archive::zipped(bytes)?
    } else if bytes.starts_with(&LEGACY_MAGIC) {
        archive::legacy(bytes)?
    } else {
        return Err(IoError::BadMagic {
            what: "PyTorch checkpoint (.pth)".into(),
        });
    };
    let mut budget = (bytes.len() as u64)
        .saturating_mul(OUTPUT_PER_INPUT)
        .saturating_add(OUTPUT_SLACK);
    entries(&parts)?
        .into_iter()
        .map(|(name, t)| {
            let array = tensor_array(&parts, &name, &parts.heap.tensors[t], &mut budget)?;
            Ok((name, array))
        })
        .collect()
}

/// Reads a `.pth` file (at most [`super::MAX_FILE_BYTES`]); see [`parse_pth`].
pub fn read_pth(path: impl AsRef<Path>) -> Result<Vec<(String, Array)>, IoError> {
    // The magic is checked before the rest is read: an endless stream is refused at once.
    let bytes = read_bytes_checked(path.as_ref(), LEGACY_MAGIC.len(), |b| {
        let n = b.len();
        if ZIP_MAGIC.starts_with(&b[..n.min(ZIP_MAGIC.len())]) || LEGACY_MAGIC.starts_with(b) {
            Ok(())
        } else {
            Err(IoError::BadMagic {
                what: "PyTorch checkpoint (.pth)".into(),
            })
        }
    })?;
    parse_pth(&bytes)
}

/// The member `name` of a zip archive held in `bytes` (a wheel, say), refusing one that
/// inflates to more than `limit` bytes; `None` when the archive has no such member.
pub fn zip_member(bytes: &[u8], name: &str, limit: u64) -> Result<Option<Vec<u8>>, IoError> {
    let mut zip = archive::open_zip(bytes)?;
    let mut budget = limit.min(archive::inflate_budget(bytes.len()));
    archive::read_member(&mut zip, name, &mut budget)
}

/// The legacy layout's leading bytes, for tests that build files by hand.
#[cfg(test)]
pub(crate) fn archive_magic_for_tests() -> &'static [u8] {
    &LEGACY_MAGIC
}

/// The state dict's `(name, tensor index)` entries.
fn entries(parts: &Parts<'_>) -> Result<Vec<(String, usize)>, IoError> {
    let heap = &parts.heap;
    let not_dict = || IoError::Unsupported {
        what: "pth pickle".into(),
        reason: "the file holds no dict of tensors (save `model.state_dict()`, not the model)"
            .into(),
    };
    let mut dict = heap.dict(parts.root).ok_or_else(not_dict)?;
    let holds_tensors = |d: &[(Value, Value)]| d.iter().any(|(_, v)| matches!(v, Value::Tensor(_)));
    if !holds_tensors(dict) {
        // A training checkpoint: {"state_dict": {...}, "epoch": ...}.
        let nested = ["state_dict", "model"].iter().find_map(|key| {
            dict.iter()
                .find(|(k, _)| heap.str(*k) == Some(key))
                .and_then(|(_, v)| heap.dict(*v))
        });
        if let Some(inner) = nested {
            dict = inner;
        }
    }
    let mut out = Vec::new();
    for (k, v) in dict {
        let Value::Tensor(t) = *v else { continue };
        let name = heap
            .str(*k)
            .ok_or_else(|| IoError::malformed("pth pickle", "a tensor's key is not a string"))?;
        out.push((name.to_string(), t));
    }
    Ok(out)
}

/// Copies one tensor out of its storage, after checking that every element it addresses
/// lies inside the storage and that the copy fits the output budget.
fn tensor_array(
    parts: &Parts<'_>,
    name: &str,
    t: &TensorRef,
    budget: &mut u64,
) -> Result<Array, IoError> {
    let what = || format!("pth tensor `{name}`");
    let storage = &parts.heap.storages[t.storage];
    let data = &parts.storages[&storage.key];
    let size = storage.dtype.size();
    let numel = checked_numel(&t.shape).ok_or_else(|| IoError::TooLarge {
        what: what(),
        declared: u128::MAX,
        limit: (*budget).into(),
    })?;
    if numel > 0 {
        // The farthest element: offset + sum((d - 1) * stride), all checked.
        let last = t
            .shape
            .iter()
            .zip(&t.strides)
            .try_fold(t.offset, |acc, (&d, &s)| {
                (d - 1).checked_mul(s).and_then(|x| acc.checked_add(x))
            });
        if last.is_none_or(|l| l >= storage.numel) || numel > storage.numel {
            return Err(IoError::malformed(
                what(),
                format!(
                    "its view (offset {}, shape {:?}, strides {:?}) reaches outside its storage of {} elements",
                    t.offset, t.shape, t.strides, storage.numel
                ),
            ));
        }
    }
    let bytes = (numel as u64).saturating_mul(size as u64);
    if bytes > *budget {
        return Err(IoError::TooLarge {
            what: what(),
            declared: bytes.into(),
            limit: (*budget).into(),
        });
    }
    *budget -= bytes;
    let raw = gather(data, size, t, numel);
    let shape = t.shape.clone();
    let chunks = raw.chunks_exact(size);
    Ok(match storage.dtype {
        StorageDtype::Float => Array::F32 {
            shape,
            data: chunks
                .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")))
                .collect(),
        },
        StorageDtype::Double => Array::F64 {
            shape,
            data: chunks
                .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")))
                .collect(),
        },
        StorageDtype::Long => Array::I64 {
            shape,
            data: chunks
                .map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes")))
                .collect(),
        },
        StorageDtype::Byte => Array::U8 { shape, data: raw },
        other => {
            return Err(IoError::UnsupportedDtype {
                what: what(),
                dtype: other.name().into(),
            })
        }
    })
}

/// The bytes of a checked strided view, in row-major order.
fn gather(data: &[u8], size: usize, t: &TensorRef, numel: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(numel * size);
    if numel == 0 {
        return out;
    }
    // Row-major strides: the view is one run of the storage.
    let mut expect = 1;
    let contiguous = t.shape.iter().zip(&t.strides).rev().all(|(&d, &s)| {
        let ok = d == 1 || s == expect;
        expect *= d;
        ok
    });
    if contiguous {
        out.extend_from_slice(&data[t.offset * size..(t.offset + numel) * size]);
        return out;
    }
    let mut index = vec![0usize; t.shape.len()];
    for _ in 0..numel {
        let at = t.offset
            + index
                .iter()
                .zip(&t.strides)
                .map(|(&i, &s)| i * s)
                .sum::<usize>();
        out.extend_from_slice(&data[at * size..(at + 1) * size]);
        // Odometer step, last dimension fastest.
        for (i, &d) in index.iter_mut().zip(&t.shape).rev() {
            *i += 1;
            if *i < d {
                break;
            }
            *i = 0;
        }
    }
    out
}
