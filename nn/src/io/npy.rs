//! NumPy `.npy` files: read format versions 1.0, 2.0 and 3.0, write 1.0.
//!
//! Layout (numpy's `format.py`): the magic `\x93NUMPY`, a major and a minor version
//! byte, the header length (`u16` little-endian in 1.0, `u32` in 2.0 and 3.0), then the
//! header, a Python dict literal such as `{'descr': '<f4', 'fortran_order': False,
//! 'shape': (2, 3), }` padded with spaces and ending in `\n`, then the raw data.
//!
//! Supported element types: `<f4`, `<f8`, `<i8` (read and write, `<f8` read only) and
//! `|u1` (read only). Only C (row-major) order is read.

mod header;

use super::{
    checked_numel, declared_bytes, fill_to, open_readable, shape_text, write_atomic, Array,
    IoError, MAX_FILE_BYTES,
};
use relprop_core::Tensor;
use std::path::Path;

/// An array read from a `.npy` file (the shared [`Array`] type).
pub type NpyArray = Array;

const MAGIC: &[u8; 6] = b"\x93NUMPY";

/// Parses the bytes of a `.npy` file.
///
/// Errors: [`IoError::BadMagic`], [`IoError::UnsupportedVersion`], [`IoError::Truncated`]
/// (header or data shorter than declared), [`IoError::Malformed`] (header syntax, missing
/// or unknown keys, trailing bytes), [`IoError::UnsupportedDtype`], [`IoError::Unsupported`]
/// (Fortran order) and [`IoError::TooLarge`] (a shape whose byte size overflows).
pub fn parse_npy(bytes: &[u8]) -> Result<Array, IoError> {
    let (header, data) = split_header(bytes)?;
    let (descr, fortran, shape) = header::parse(header)?;

    let (kind, item) = element(&descr)?;
    if fortran {
        return Err(IoError::Unsupported {
            what: "npy".into(),
            reason: "the array is stored in Fortran (column-major) order; save a C-ordered \
                     copy with np.save(path, np.ascontiguousarray(a))"
                .into(),
        });
    }

    // Size check before any allocation: the declared byte count must be exactly what remains.
    let numel = checked_numel(&shape);
    let shape_s = shape_text(&shape);
    let Some(nbytes) = numel.and_then(|n| n.checked_mul(item)) else {
        return Err(IoError::TooLarge {
            what: format!("npy data of shape {shape_s} and dtype {descr}"),
            declared: declared_bytes(&shape, item),
            limit: data.len() as u128,
        });
    };
    if nbytes > data.len() {
        return Err(IoError::truncated("npy data", nbytes, data.len()));
    }
    if nbytes < data.len() {
        return Err(IoError::malformed(
            "npy data",
            format!(
                "{} bytes follow the {nbytes} bytes that shape {shape_s} declares",
                data.len() - nbytes
            ),
        ));
    }

    Ok(match kind {
        Kind::F32 => Array::F32 {
            shape,
            data: data
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(arr(c)))
                .collect(),
        },
        Kind::F64 => Array::F64 {
            shape,
            data: data
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes(arr(c)))
                .collect(),
        },
        Kind::I64 => Array::I64 {
            shape,
            data: data
                .chunks_exact(8)
                .map(|c| i64::from_le_bytes(arr(c)))
                .collect(),
        },
        Kind::U8 => Array::U8 {
            shape,
            data: data.to_vec(),
        },
    })
}

/// Headers longer than this are refused unread (numpy writes a few dozen bytes; its own
/// reader stops at 10,000 by default). Below it, an odd header (a million dimensions) is
/// parsed and named precisely.
const MAX_HEADER_BYTES: usize = 16 << 20;

/// Reads a `.npy` file; see [`parse_npy`] for the errors.
///
/// The header is read and checked first, then exactly the data it declares and one byte
/// more (to notice trailing bytes): an endless or oversized stream (a FIFO, `/dev/zero`) is
/// refused after a few bytes, and no more than [`MAX_FILE_BYTES`] is ever read.
pub fn read_npy(path: impl AsRef<Path>) -> Result<Array, IoError> {
    let path = path.as_ref();
    let (mut file, _) = open_readable(path)?;
    let mut bytes = Vec::new();
    fill_to(&mut file, &mut bytes, 12, path)?;
    let (start, header_len) = preamble(&bytes)?;
    if header_len > MAX_HEADER_BYTES {
        return Err(IoError::TooLarge {
            what: "npy header".into(),
            declared: header_len as u128,
            limit: MAX_HEADER_BYTES as u128,
        });
    }
    fill_to(&mut file, &mut bytes, start + header_len, path)?;
    let (header, _) = split_header(&bytes)?;
    let (descr, _, shape) = header::parse(header)?;
    let (_, item) = element(&descr)?;
    let limit = MAX_FILE_BYTES as usize - start - header_len;
    let data = checked_numel(&shape).and_then(|n| n.checked_mul(item));
    let Some(data) = data.filter(|&d| d <= limit) else {
        return Err(IoError::TooLarge {
            what: format!("npy data of shape {} and dtype {descr}", shape_text(&shape)),
            declared: declared_bytes(&shape, item),
            limit: limit as u128,
        });
    };
    fill_to(&mut file, &mut bytes, start + header_len + data + 1, path)?;
    parse_npy(&bytes)
}

/// Reads a `.npy` file of `<f4` or `<f8` values as a tensor (`<f8` rounded to `f32`).
pub fn read_tensor(path: impl AsRef<Path>) -> Result<Tensor, IoError> {
    read_npy(path)?.into_tensor()
}

/// The bytes of a version 1.0 `.npy` file of `<f4` values.
///
/// Fails with [`IoError::Malformed`] when `data.len()` is not the product of `shape`.
pub fn npy_f32_bytes(shape: &[usize], data: &[f32]) -> Result<Vec<u8>, IoError> {
    encode(shape, data.len(), "<f4", 4, |out| {
        data.iter()
            .for_each(|v| out.extend_from_slice(&v.to_le_bytes()))
    })
}

/// The bytes of a version 1.0 `.npy` file of `<i8` (int64) values.
///
/// Fails with [`IoError::Malformed`] when `data.len()` is not the product of `shape`.
pub fn npy_i64_bytes(shape: &[usize], data: &[i64]) -> Result<Vec<u8>, IoError> {
    encode(shape, data.len(), "<i8", 8, |out| {
        data.iter()
            .for_each(|v| out.extend_from_slice(&v.to_le_bytes()))
    })
}

/// Writes a tensor as a `<f4` `.npy` file, atomically (see [`write_atomic`]).
pub fn write_npy_f32(path: impl AsRef<Path>, tensor: &Tensor) -> Result<(), IoError> {
    write_atomic(
        path.as_ref(),
        &npy_f32_bytes(tensor.shape(), tensor.data())?,
    )
}

/// Writes int64 values (labels, class indices) as a `<i8` `.npy` file, atomically.
pub fn write_npy_i64(path: impl AsRef<Path>, shape: &[usize], data: &[i64]) -> Result<(), IoError> {
    write_atomic(path.as_ref(), &npy_i64_bytes(shape, data)?)
}

/// The element kind and size of a supported `descr`.
fn element(descr: &str) -> Result<(Kind, usize), IoError> {
    Ok(match descr {
        "<f4" => (Kind::F32, 4),
        "<f8" => (Kind::F64, 8),
        "<i8" => (Kind::I64, 8),
        "|u1" | "<u1" | ">u1" => (Kind::U8, 1),
        _ => {
            return Err(IoError::UnsupportedDtype {
                what: "npy (supported: <f4, <f8, <i8, |u1)".into(),
                dtype: format!("'{descr}'"),
            })
        }
    })
}

#[derive(Clone, Copy)]
enum Kind {
    F32,
    F64,
    I64,
    U8,
}

/// Copies an exact-size chunk into an array; `chunks_exact` guarantees the length.
fn arr<const N: usize>(c: &[u8]) -> [u8; N] {
    let mut a = [0u8; N];
    a.copy_from_slice(c);
    a
}

/// Builds header + data, with the header padded so the data starts at a multiple of 64
/// bytes as `np.save` does (for short shapes the bytes are identical to numpy's).
fn encode(
    shape: &[usize],
    len: usize,
    descr: &str,
    item: usize,
    write_data: impl FnOnce(&mut Vec<u8>),
) -> Result<Vec<u8>, IoError> {
    if checked_numel(shape) != Some(len) {
        let shape_s = shape_text(shape);
        return Err(IoError::malformed(
            "npy export",
            format!("shape {shape_s} does not hold the {len} values given"),
        ));
    }
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape_repr = match dims.len() {
        1 => format!("({},)", dims[0]),
        _ => format!("({})", dims.join(", ")),
    };
    let mut header =
        format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape_repr}, }}");
    // Version 1.0 has a u16 length; only absurdly many dimensions need 2.0.
    let (version, len_bytes) = if header.len() + 64 <= u16::MAX as usize {
        (1u8, 2)
    } else {
        (2u8, 4)
    };
    let unpadded = MAGIC.len() + 2 + len_bytes + header.len() + 1;
    header.push_str(&" ".repeat((64 - unpadded % 64) % 64));
    header.push('\n');

    let mut out = Vec::with_capacity(MAGIC.len() + 2 + len_bytes + header.len() + len * item);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[version, 0]);
    if version == 1 {
        out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    } else {
        out.extend_from_slice(&(header.len() as u32).to_le_bytes());
    }
    out.extend_from_slice(header.as_bytes());
    write_data(&mut out);
    Ok(out)
}

/// Checks magic and version and returns (header text, data bytes).
fn split_header(bytes: &[u8]) -> Result<(&str, &[u8]), IoError> {
    let (start, header_len) = preamble(bytes)?;
    let rest = &bytes[start..];
    if header_len > rest.len() {
        return Err(IoError::truncated("npy header", header_len, rest.len()));
    }
    let (header, data) = rest.split_at(header_len);
    // 1.0/2.0 headers are latin-1 and 3.0 UTF-8; a valid dtype/shape dict is ASCII either way.
    let header = std::str::from_utf8(header)
        .map_err(|_| IoError::malformed("npy header", "the header is not ASCII/UTF-8 text"))?;
    Ok((header, data))
}

/// Checks magic and version and returns (where the header starts, its declared length).
fn preamble(bytes: &[u8]) -> Result<(usize, usize), IoError> {
    let n = bytes.len().min(MAGIC.len());
    if bytes[..n] != MAGIC[..n] {
        return Err(IoError::BadMagic { what: "npy".into() });
    }
    if bytes.len() < 8 {
        return Err(IoError::truncated("npy preamble", 10, bytes.len()));
    }
    let len_bytes = match (bytes[6], bytes[7]) {
        (1, 0) => 2,
        (2, 0) | (3, 0) => 4,
        (major, minor) => {
            return Err(IoError::UnsupportedVersion {
                what: "npy".into(),
                found: format!("{major}.{minor}"),
                supported: "1.0, 2.0 and 3.0".into(),
            })
        }
    };
    let start = 8 + len_bytes;
    if bytes.len() < start {
        return Err(IoError::truncated("npy preamble", start, bytes.len()));
    }
    let header_len = if len_bytes == 2 {
        u16::from_le_bytes([bytes[8], bytes[9]]) as usize
    } else {
        u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize
    };
    Ok((start, header_len))
}
