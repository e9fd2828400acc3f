//! `TensorProto` into [`ConstTensor`]: element types, shapes and the data fields.
//!
//! Every declared size is checked against the data actually present (the decoded field,
//! or the external file's size) before anything of that size is allocated.

use super::external::External;
use super::proto::TensorProto;
use super::{ConstData, ConstTensor};
use relprop_nn::io::IoError;

/// The element types the reader converts, with their ONNX codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DType {
    Float,
    Uint8,
    Int8,
    Int16,
    Int32,
    Int64,
    Bool,
    Float16,
    Double,
    Bfloat16,
}

impl DType {
    /// The type for an ONNX `DataType` code, or the code's name for an error.
    pub(crate) fn from_code(code: i32) -> Result<DType, String> {
        Ok(match code {
            1 => DType::Float,
            2 => DType::Uint8,
            3 => DType::Int8,
            5 => DType::Int16,
            6 => DType::Int32,
            7 => DType::Int64,
            9 => DType::Bool,
            10 => DType::Float16,
            11 => DType::Double,
            16 => DType::Bfloat16,
            other => return Err(unsupported_name(other)),
        })
    }

    /// Bytes per element in `raw_data` and external files.
    pub(crate) fn size(self) -> usize {
        match self {
            DType::Uint8 | DType::Int8 | DType::Bool => 1,
            DType::Int16 | DType::Float16 | DType::Bfloat16 => 2,
            DType::Float | DType::Int32 => 4,
            DType::Int64 | DType::Double => 8,
        }
    }

    fn name(self) -> &'static str {
        match self {
            DType::Float => "FLOAT",
            DType::Uint8 => "UINT8",
            DType::Int8 => "INT8",
            DType::Int16 => "INT16",
            DType::Int32 => "INT32",
            DType::Int64 => "INT64",
            DType::Bool => "BOOL",
            DType::Float16 => "FLOAT16",
            DType::Double => "DOUBLE",
            DType::Bfloat16 => "BFLOAT16",
        }
    }

    fn is_float(self) -> bool {
        matches!(
            self,
            DType::Float | DType::Float16 | DType::Double | DType::Bfloat16
        )
    }

    /// The typed field that may carry this type's elements (besides `raw_data`).
    fn field(self) -> Field {
        match self {
            DType::Float => Field::Float,
            DType::Int64 => Field::Int64,
            DType::Double => Field::Double,
            _ => Field::Int32,
        }
    }
}

/// The names of the ONNX types this reader refuses (for [`IoError::UnsupportedDtype`]).
fn unsupported_name(code: i32) -> String {
    let name = match code {
        0 => "UNDEFINED",
        4 => "UINT16",
        8 => "STRING",
        12 => "UINT32",
        13 => "UINT64",
        14 => "COMPLEX64",
        15 => "COMPLEX128",
        17 => "FLOAT8E4M3FN",
        18 => "FLOAT8E4M3FNUZ",
        19 => "FLOAT8E5M2",
        20 => "FLOAT8E5M2FNUZ",
        21 => "UINT4",
        22 => "INT4",
        23 => "FLOAT4E2M1",
        _ => return format!("data type code {code} (not an ONNX type)"),
    };
    format!("{name} (code {code})")
}

/// The fields of `TensorProto` that can hold elements.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Field {
    Raw,
    Float,
    Int32,
    Int64,
    Double,
    Uint64,
    String,
}

impl Field {
    fn name(self) -> &'static str {
        match self {
            Field::Raw => "raw_data",
            Field::Float => "float_data",
            Field::Int32 => "int32_data",
            Field::Int64 => "int64_data",
            Field::Double => "double_data",
            Field::Uint64 => "uint64_data",
            Field::String => "string_data",
        }
    }
}

/// Checks dims (non-negative, product and byte size addressable) and returns them with
/// the element count and byte size.
pub(crate) fn checked_dims(
    dims: &[i64],
    elem_size: usize,
    what: &str,
) -> Result<(Vec<usize>, usize, usize), IoError> {
    let mut shape = Vec::with_capacity(dims.len());
    // In u128 so that the declared size can be reported even when it overflows usize.
    // Zero dims are left out: a shape whose other dims overflow is refused even though it
    // holds nothing, since code computing its strides would overflow.
    let mut bytes: u128 = elem_size as u128;
    let mut empty = false;
    for (k, &d) in dims.iter().enumerate() {
        let d = usize::try_from(d).map_err(|_| {
            IoError::malformed(
                what,
                format!("dimension {k} is {d}: sizes cannot be negative"),
            )
        })?;
        if d == 0 {
            empty = true;
        } else {
            bytes = bytes.saturating_mul(d as u128);
        }
        shape.push(d);
    }
    let limit = isize::MAX as u128;
    if bytes > limit {
        return Err(IoError::TooLarge {
            what: what.to_string(),
            declared: bytes,
            limit,
        });
    }
    let bytes = if empty { 0 } else { bytes as usize };
    Ok((shape, bytes / elem_size, bytes))
}

/// Converts one tensor; `what` names it for messages (`onnx initializer `w``).
pub(crate) fn convert_tensor(
    t: TensorProto,
    what: &str,
    external: &mut External,
) -> Result<ConstTensor, IoError> {
    let dtype = DType::from_code(t.data_type).map_err(|dtype| IoError::UnsupportedDtype {
        what: what.to_string(),
        dtype,
    })?;
    let (dims, numel, bytes) = checked_dims(&t.dims, dtype.size(), what)?;

    let mut present = Vec::new();
    if t.raw_data.is_some() {
        present.push(Field::Raw);
    }
    for (field, used) in [
        (Field::Float, !t.float_data.is_empty()),
        (Field::Int32, !t.int32_data.is_empty()),
        (Field::Int64, !t.int64_data.is_empty()),
        (Field::Double, !t.double_data.is_empty()),
        (Field::Uint64, !t.uint64_data.is_empty()),
        (Field::String, !t.string_data.is_empty()),
    ] {
        if used {
            present.push(field);
        }
    }
    if present.len() > 1 {
        return Err(IoError::malformed(
            what,
            format!(
                "holds data in both {} and {} (only one may be used)",
                present[0].name(),
                present[1].name()
            ),
        ));
    }

    let data = match t.data_location {
        0 => match present.first() {
            None if numel == 0 => from_raw(dtype, &[]),
            None => {
                return Err(IoError::malformed(
                    what,
                    format!("holds no data for its {numel} elements"),
                ))
            }
            Some(Field::Raw) => {
                let raw = t.raw_data.unwrap_or_default();
                check_raw_len(raw.len(), bytes, dtype, &dims, "raw_data", what)?;
                from_raw(dtype, &raw)
            }
            Some(&field) => from_typed(t, field, dtype, numel, &dims, what)?,
        },
        1 => {
            if let Some(field) = present.first() {
                return Err(IoError::malformed(
                    what,
                    format!("is marked as external data but also holds {}", field.name()),
                ));
            }
            let raw = external.read(&t.external_data, bytes, what)?;
            check_raw_len(raw.len(), bytes, dtype, &dims, "external data", what)?;
            from_raw(dtype, &raw)
        }
        other => {
            return Err(IoError::malformed(
                what,
                format!("data_location is {other} (0 = inline and 1 = external are defined)"),
            ))
        }
    };
    Ok(ConstTensor { dims, data })
}

fn check_raw_len(
    found: usize,
    needed: usize,
    dtype: DType,
    dims: &[usize],
    source: &str,
    what: &str,
) -> Result<(), IoError> {
    if found == needed {
        return Ok(());
    }
    if found < needed {
        return Err(IoError::Truncated {
            what: format!("{what} {source} ({} {dims:?})", dtype.name()),
            needed: needed as u64,
            available: found as u64,
        });
    }
    Err(IoError::malformed(
        what,
        format!(
            "{source} holds {found} bytes but {} {dims:?} needs {needed}",
            dtype.name()
        ),
    ))
}

/// Little-endian fixed-width elements, as `raw_data` and external files store them.
/// The caller has checked the length.
fn from_raw(dtype: DType, raw: &[u8]) -> ConstData {
    fn each<const N: usize, T>(raw: &[u8], f: impl Fn([u8; N]) -> T) -> Vec<T> {
        raw.chunks_exact(N)
            .map(|c| {
                let mut a = [0u8; N];
                a.copy_from_slice(c);
                f(a)
            })
            .collect()
    }
    match dtype {
        DType::Float => ConstData::F32(each(raw, f32::from_le_bytes)),
        DType::Double => ConstData::F32(each(raw, |b| f64::from_le_bytes(b) as f32)),
        DType::Float16 => ConstData::F32(each(raw, |b| f16_to_f32(u16::from_le_bytes(b)))),
        DType::Bfloat16 => ConstData::F32(each(raw, |b| bf16_to_f32(u16::from_le_bytes(b)))),
        DType::Uint8 => ConstData::I64(raw.iter().map(|&b| b as i64).collect()),
        DType::Int8 => ConstData::I64(raw.iter().map(|&b| b as i8 as i64).collect()),
        DType::Bool => ConstData::I64(raw.iter().map(|&b| i64::from(b != 0)).collect()),
        DType::Int16 => ConstData::I64(each(raw, |b| i16::from_le_bytes(b) as i64)),
        DType::Int32 => ConstData::I64(each(raw, |b| i32::from_le_bytes(b) as i64)),
        DType::Int64 => ConstData::I64(each(raw, i64::from_le_bytes)),
    }
}

/// Elements from the typed field `field` (already known to be the only one used).
fn from_typed(
    t: TensorProto,
    field: Field,
    dtype: DType,
    numel: usize,
    dims: &[usize],
    what: &str,
) -> Result<ConstData, IoError> {
    if field != dtype.field() {
        return Err(IoError::malformed(
            what,
            format!(
                "{} elements are stored in {}, which cannot hold them",
                dtype.name(),
                field.name()
            ),
        ));
    }
    let count = match field {
        Field::Float => t.float_data.len(),
        Field::Int32 => t.int32_data.len(),
        Field::Int64 => t.int64_data.len(),
        _ => t.double_data.len(),
    };
    if count != numel {
        return Err(IoError::malformed(
            what,
            format!(
                "{} holds {count} values but {} {dims:?} needs {numel}",
                field.name(),
                dtype.name()
            ),
        ));
    }
    Ok(match field {
        Field::Float => ConstData::F32(t.float_data),
        Field::Int64 => ConstData::I64(t.int64_data),
        Field::Double => ConstData::F32(t.double_data.iter().map(|&v| v as f32).collect()),
        _ => from_int32(&t.int32_data, dtype, what)?,
    })
}

/// `int32_data` carries the narrow integer types, booleans and the 16-bit float types'
/// bit patterns (onnx.proto); values outside the type's range are refused.
fn from_int32(values: &[i32], dtype: DType, what: &str) -> Result<ConstData, IoError> {
    let (lo, hi) = match dtype {
        DType::Uint8 => (0, 255),
        DType::Int8 => (-128, 127),
        DType::Int16 => (-32768, 32767),
        // Bit patterns: writers may store them sign-extended (as i16) or not.
        DType::Float16 | DType::Bfloat16 => (-32768, 65535),
        _ => (i32::MIN, i32::MAX),
    };
    if let Some((k, v)) = values.iter().enumerate().find(|(_, &v)| v < lo || v > hi) {
        return Err(IoError::malformed(
            what,
            format!(
                "int32_data value {k} is {v}, outside the range of {}",
                dtype.name()
            ),
        ));
    }
    Ok(if dtype.is_float() {
        let convert = if dtype == DType::Float16 {
            f16_to_f32
        } else {
            bf16_to_f32
        };
        ConstData::F32(values.iter().map(|&v| convert(v as u16)).collect())
    } else if dtype == DType::Bool {
        ConstData::I64(values.iter().map(|&v| i64::from(v != 0)).collect())
    } else {
        ConstData::I64(values.iter().map(|&v| v as i64).collect())
    })
}

/// IEEE 754 half precision to single precision (exact: every half is a single).
pub(crate) fn f16_to_f32(h: u16) -> f32 {
    let sign = if h & 0x8000 != 0 { -1.0 } else { 1.0 };
    let exp = ((h >> 10) & 0x1f) as i32;
    let man = (h & 0x3ff) as u32;
    let bits = match exp {
        // Zero and subnormals: man * 2^-24, exact in f32.
        0 => return sign * man as f32 * (1.0 / 16_777_216.0),
        // Infinities and NaNs keep their payload's top bits.
        0x1f => 0x7f80_0000 | (man << 13),
        // Normal: rebias the exponent from 15 to 127.
        e => (((e + 112) as u32) << 23) | (man << 13),
    };
    sign * f32::from_bits(bits)
}

/// bfloat16 is the top half of an f32.
pub(crate) fn bf16_to_f32(b: u16) -> f32 {
    f32::from_bits((b as u32) << 16)
}
