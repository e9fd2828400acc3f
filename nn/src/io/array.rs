//! [`Array`]: an n-dimensional array as a file stores it, shared by the loaders.

use super::IoError;
use relprop_core::Tensor;

/// An n-dimensional array as stored in a file, in one of the element types the loaders
/// understand. Data is row-major (C order) and its length always equals the shape product.
#[derive(Debug, Clone, PartialEq)]
pub enum Array {
    /// 32-bit floats (`<f4`, safetensors `F32`).
    F32 {
        /// Dimensions, outermost first.
        shape: Vec<usize>,
        /// Row-major values.
        data: Vec<f32>,
    },
    /// 64-bit floats (`<f8`, safetensors `F64`).
    F64 {
        /// Dimensions, outermost first.
        shape: Vec<usize>,
        /// Row-major values.
        data: Vec<f64>,
    },
    /// 64-bit signed integers (`<i8`, safetensors `I64`): labels and class indices.
    I64 {
        /// Dimensions, outermost first.
        shape: Vec<usize>,
        /// Row-major values.
        data: Vec<i64>,
    },
    /// Bytes (`|u1`, safetensors `U8`): raw images and masks.
    U8 {
        /// Dimensions, outermost first.
        shape: Vec<usize>,
        /// Row-major values.
        data: Vec<u8>,
    },
}

impl Array {
    /// The dimensions, outermost first (`[]` for a scalar).
    pub fn shape(&self) -> &[usize] {
        match self {
            Array::F32 { shape, .. }
            | Array::F64 { shape, .. }
            | Array::I64 { shape, .. }
            | Array::U8 { shape, .. } => shape,
        }
    }

    /// The element type as a short name: `"f32"`, `"f64"`, `"i64"` or `"u8"`.
    pub fn dtype(&self) -> &'static str {
        match self {
            Array::F32 { .. } => "f32",
            Array::F64 { .. } => "f64",
            Array::I64 { .. } => "i64",
            Array::U8 { .. } => "u8",
        }
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        match self {
            Array::F32 { data, .. } => data.len(),
            Array::F64 { data, .. } => data.len(),
            Array::I64 { data, .. } => data.len(),
            Array::U8 { data, .. } => data.len(),
        }
    }

    /// The values when the array is `F32`.
    pub fn as_f32(&self) -> Option<&[f32]> {
        match self {
            Array::F32 { data, .. } => Some(data),
            _ => None,
        }
    }

    /// The values when the array is `F64`.
    pub fn as_f64(&self) -> Option<&[f64]> {
        match self {
            Array::F64 { data, .. } => Some(data),
            _ => None,
        }
    }

    /// The values when the array is `I64`.
    pub fn as_i64(&self) -> Option<&[i64]> {
        match self {
            Array::I64 { data, .. } => Some(data),
            _ => None,
        }
    }

    /// The values when the array is `U8`.
    pub fn as_u8(&self) -> Option<&[u8]> {
        match self {
            Array::U8 { data, .. } => Some(data),
            _ => None,
        }
    }

    /// Converts a floating-point array to a [`Tensor`]: `F32` exactly, `F64` rounded to
    /// the nearest `f32`. Integer arrays are refused rather than silently cast, because
    /// a label file loaded as input data is almost always a mistake.
    pub fn into_tensor(self) -> Result<Tensor, IoError> {
        let (shape, data) = match self {
            Array::F32 { shape, data } => (shape, data),
            Array::F64 { shape, data } => (shape, data.into_iter().map(|v| v as f32).collect()),
            other => {
                return Err(IoError::UnsupportedDtype {
                    what: "tensor conversion (only f32 and f64 arrays become tensors)".into(),
                    dtype: other.dtype().into(),
                })
            }
        };
        Tensor::from_vec(data, &shape).map_err(|e| IoError::malformed("array", e.to_string()))
    }
}

/// Number of elements of `shape`, or `None` when the product overflows `usize`.
/// A zero dimension makes the product 0 whatever the other dimensions are.
pub(crate) fn checked_numel(shape: &[usize]) -> Option<usize> {
    if shape.contains(&0) {
        return Some(0);
    }
    shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d))
}

/// Bytes declared by `shape` with `item` bytes per element, saturating at `u128::MAX`;
/// used only to report sizes that [`checked_numel`] refused.
pub(crate) fn declared_bytes(shape: &[usize], item: usize) -> u128 {
    if shape.contains(&0) {
        return 0;
    }
    shape
        .iter()
        .fold(item as u128, |acc, &d| acc.saturating_mul(d as u128))
}
