//! safetensors files: named tensors, as PyTorch and Hugging Face tools write them.
//!
//! Used to import weights by their PyTorch `state_dict` names (`features.conv1.weight`,
//! ...) and reference results, and to export trained weights for Python. Parsing is
//! delegated to the `safetensors` crate after a pre-check of our own that bounds every
//! declared size and offset by the file length (the crate can overflow on hostile offsets).

use super::{
    checked_numel, declared_bytes, read_bytes_checked, shape_text, write_atomic, Array, IoError,
    MAX_FILE_BYTES,
};
use ::safetensors::tensor::{Dtype, Metadata, SafeTensorError, SafeTensors, TensorView};
use relprop_core::Tensor;
use std::collections::HashSet;
use std::path::Path;

/// The header-size limit of the `safetensors` crate (100 MB); we report it up front as
/// [`IoError::TooLarge`] instead of as an opaque crate error.
const MAX_HEADER: u64 = 100_000_000;

/// Parses a whole safetensors file into `(name, array)` pairs, in file order.
///
/// `F32`, `F64`, `I64` and `U8` tensors are supported; any other dtype is an
/// [`IoError::UnsupportedDtype`] naming the tensor. Truncated files, broken JSON, offsets
/// out of range and sizes that overflow are errors, never panics.
pub fn parse_safetensors(bytes: &[u8]) -> Result<Vec<(String, Array)>, IoError> {
    let (st, names) = open(bytes)?;
    names
        .into_iter()
        .map(|name| {
            let view = st.tensor(&name).map_err(|e| crate_error(&e))?;
            let array = to_array(&name, &view)?;
            Ok((name, array))
        })
        .collect()
}

/// Reads a safetensors file; see [`parse_safetensors`].
pub fn read_safetensors(path: impl AsRef<Path>) -> Result<Vec<(String, Array)>, IoError> {
    parse_safetensors(&read_file(path.as_ref())?)
}

/// Extracts the named `F32` tensors from safetensors bytes, in the order of `names`;
/// other tensors in the file are ignored.
///
/// A name absent from the file is [`IoError::MissingParameter`]; a named tensor of another
/// dtype is [`IoError::UnsupportedDtype`] (parameters are never converted silently).
pub fn f32_params_from_bytes<S: AsRef<str>>(
    bytes: &[u8],
    names: &[S],
) -> Result<Vec<(String, Tensor)>, IoError> {
    let (st, _) = open(bytes)?;
    names
        .iter()
        .map(|name| {
            let name = name.as_ref();
            let view = st
                .tensor(name)
                .map_err(|_| IoError::MissingParameter(name.to_string()))?;
            if view.dtype() != Dtype::F32 {
                return Err(IoError::UnsupportedDtype {
                    what: format!("safetensors tensor `{name}` (parameters must be F32)"),
                    dtype: format!("{:?}", view.dtype()),
                });
            }
            let tensor = to_array(name, &view)?.into_tensor()?;
            Ok((name.to_string(), tensor))
        })
        .collect()
}

/// Reads the named `F32` tensors of a safetensors file; see [`f32_params_from_bytes`].
pub fn load_f32_params<S: AsRef<str>>(
    path: impl AsRef<Path>,
    names: &[S],
) -> Result<Vec<(String, Tensor)>, IoError> {
    f32_params_from_bytes(&read_file(path.as_ref())?, names)
}

/// Serializes named tensors as `F32` safetensors bytes (no `__metadata__`).
///
/// Names must be unique ([`IoError::Malformed`] otherwise). The crate stores tensors
/// sorted by name, so the byte output does not depend on the order of `params`.
pub fn safetensors_bytes(params: &[(String, Tensor)]) -> Result<Vec<u8>, IoError> {
    let mut seen = HashSet::new();
    for (name, _) in params {
        if !seen.insert(name.as_str()) {
            return Err(IoError::malformed(
                "safetensors export",
                format!("the name `{name}` appears twice"),
            ));
        }
    }
    let buffers: Vec<Vec<u8>> = params
        .iter()
        .map(|(_, t)| t.data().iter().flat_map(|v| v.to_le_bytes()).collect())
        .collect();
    let views = params
        .iter()
        .zip(&buffers)
        .map(|((name, t), buf)| {
            TensorView::new(Dtype::F32, t.shape().to_vec(), buf)
                .map(|view| (name.clone(), view))
                .map_err(|e| IoError::malformed("safetensors export", describe(&e)))
        })
        .collect::<Result<Vec<_>, _>>()?;
    ::safetensors::serialize(views, &None)
        .map_err(|e| IoError::malformed("safetensors export", describe(&e)))
}

/// Writes named tensors as an `F32` safetensors file, atomically (see [`write_atomic`]).
pub fn write_safetensors(
    path: impl AsRef<Path>,
    params: &[(String, Tensor)],
) -> Result<(), IoError> {
    write_atomic(path.as_ref(), &safetensors_bytes(params)?)
}

/// Validates `bytes` and opens them with the crate; also returns the tensor names in
/// file order (the crate's own listing comes from a `HashMap`, so its order is random).
///
/// The pre-check exists because safetensors 0.4 computes `end + 8 + header_len` without
/// overflow checking: a tensor declaring `data_offsets` near `usize::MAX` panics in
/// builds with overflow checks. Checking every end offset against the data length first
/// rules that out, and lets us name the offending tensor in the error.
fn open(bytes: &[u8]) -> Result<(SafeTensors<'_>, Vec<String>), IoError> {
    if bytes.len() < 8 {
        return Err(IoError::truncated(
            "safetensors header length",
            8,
            bytes.len(),
        ));
    }
    let mut len8 = [0u8; 8];
    len8.copy_from_slice(&bytes[..8]);
    let header_len = u64::from_le_bytes(len8);
    if header_len > MAX_HEADER {
        return Err(IoError::TooLarge {
            what: "safetensors header".into(),
            declared: header_len.into(),
            limit: MAX_HEADER.into(),
        });
    }
    let header_len = header_len as usize; // <= 100 MB, fits any usize >= 32 bits
    let rest = &bytes[8..];
    if header_len > rest.len() {
        return Err(IoError::truncated(
            "safetensors header",
            header_len,
            rest.len(),
        ));
    }
    let (header, data) = rest.split_at(header_len);
    let meta: Metadata = serde_json::from_slice(header).map_err(|e| {
        IoError::malformed("safetensors header", format!("invalid JSON header: {e}"))
    })?;

    let mut order = Vec::new();
    for (name, info) in meta.tensors() {
        let what = || format!("safetensors tensor `{name}`");
        let item = info.dtype.size();
        let Some(nbytes) = checked_numel(&info.shape).and_then(|n| n.checked_mul(item)) else {
            return Err(IoError::TooLarge {
                what: what(),
                declared: declared_bytes(&info.shape, item),
                limit: data.len() as u128,
            });
        };
        let (start, end) = info.data_offsets;
        if end < start || end - start != nbytes {
            return Err(IoError::malformed(
                what(),
                format!(
                    "data_offsets [{start}, {end}] do not match shape {:?} of {:?} ({nbytes} bytes)",
                    info.shape, info.dtype
                ),
            ));
        }
        if end > data.len() {
            return Err(IoError::truncated(what(), end, data.len()));
        }
        order.push((start, name));
    }
    order.sort();

    let st = SafeTensors::deserialize(bytes).map_err(|e| crate_error(&e))?;
    Ok((st, order.into_iter().map(|(_, name)| name).collect()))
}

/// Copies a tensor view into an owned [`Array`], decoding little-endian values.
fn to_array(name: &str, view: &TensorView<'_>) -> Result<Array, IoError> {
    let shape = view.shape().to_vec();
    let bytes = view.data();
    Ok(match view.dtype() {
        Dtype::F32 => Array::F32 {
            shape,
            data: bytes
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
        },
        Dtype::F64 => Array::F64 {
            shape,
            data: bytes
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes(le8(c)))
                .collect(),
        },
        Dtype::I64 => Array::I64 {
            shape,
            data: bytes
                .chunks_exact(8)
                .map(|c| i64::from_le_bytes(le8(c)))
                .collect(),
        },
        Dtype::U8 => Array::U8 {
            shape,
            data: bytes.to_vec(),
        },
        other => {
            return Err(IoError::UnsupportedDtype {
                what: format!("safetensors tensor `{name}` (supported: F32, F64, I64, U8)"),
                dtype: format!("{other:?}"),
            })
        }
    })
}

fn le8(c: &[u8]) -> [u8; 8] {
    let mut a = [0u8; 8];
    a.copy_from_slice(c);
    a
}

/// A crate error found while reading, as [`IoError::Malformed`].
fn crate_error(e: &SafeTensorError) -> IoError {
    IoError::malformed("safetensors", describe(e))
}

/// Readable text for the crate's errors (its `Display` is just `Debug`).
fn describe(e: &SafeTensorError) -> String {
    match e {
        SafeTensorError::InvalidHeader => "the header is not valid UTF-8".into(),
        SafeTensorError::InvalidHeaderDeserialization => "the header is not valid JSON".into(),
        SafeTensorError::HeaderTooLarge => "the header is larger than 100 MB".into(),
        SafeTensorError::HeaderTooSmall => "the file is shorter than 8 bytes".into(),
        SafeTensorError::InvalidHeaderLength => "the header length exceeds the file".into(),
        SafeTensorError::TensorInvalidInfo => {
            "a tensor's shape and dtype do not match its data_offsets".into()
        }
        SafeTensorError::InvalidOffset(name) => {
            format!("the data of tensor `{name}` overlaps another or leaves a gap")
        }
        SafeTensorError::MetadataIncompleteBuffer => {
            "the tensors do not exactly cover the data section (extra or missing bytes)".into()
        }
        SafeTensorError::ValidationOverflow => "a tensor's byte size overflows".into(),
        SafeTensorError::InvalidTensorView(dtype, shape, n) => {
            let shape_s = shape_text(shape);
            format!("{n} bytes cannot hold a {dtype:?} tensor of shape {shape_s}")
        }
        other => format!("{other:?}"),
    }
}

/// Reads a safetensors file after checking its first 9 bytes: the little-endian `u64`
/// header length (at least `{}`, at most the file limit) and the header's opening `{`, so
/// a stream that is no safetensors file is refused at once, not after reading it whole.
fn read_file(path: &Path) -> Result<Vec<u8>, IoError> {
    read_bytes_checked(path, 9, |b| {
        let Some(len) = b.get(..8) else {
            return Ok(()); // shorter than a header: the parser names the truncation
        };
        let mut le = [0u8; 8];
        le.copy_from_slice(len);
        let header = u64::from_le_bytes(le);
        if header > MAX_FILE_BYTES {
            return Err(IoError::TooLarge {
                what: "safetensors header".into(),
                declared: header.into(),
                limit: MAX_FILE_BYTES.into(),
            });
        }
        if header < 2 || b.get(8).is_some_and(|&c| c != b'{') {
            return Err(IoError::malformed(
                "safetensors header",
                "the file does not start with a header length and a JSON object",
            ));
        }
        Ok(())
    })
}
