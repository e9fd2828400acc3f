//! Values flowing through an imported graph: recorded on the tape, or known constants.
//!
//! Weights, shapes and other constants never touch the tape unless a recorded op reads
//! them; an op whose inputs are all constant is evaluated at once (constant folding), at
//! load time when it can be, at run time when it depends on the input's shape.

use super::error::ImportError;
use crate::reader::{ConstData, ConstTensor};
use relprop_core::{NodeId, Tensor};

/// A known constant: floats as a tensor (shared, never copied), or integers with a shape.
#[derive(Clone, Debug, PartialEq)]
pub enum Const {
    /// Floating-point values.
    F(Tensor),
    /// Integer values (shapes, axes, indices) and their dimensions.
    I(Vec<i64>, Vec<usize>),
}

impl Const {
    /// Converts a decoded initializer or `Constant` value.
    pub fn from_tensor(t: &ConstTensor, name: &str) -> Result<Const, ImportError> {
        Ok(match &t.data {
            ConstData::F32(v) => Const::F(
                Tensor::from_vec(v.clone(), &t.dims)
                    .map_err(|e| ImportError::invalid(name, e.to_string()))?,
            ),
            ConstData::I64(v) => Const::I(v.clone(), t.dims.clone()),
        })
    }

    /// The dimensions.
    pub fn dims(&self) -> &[usize] {
        match self {
            Const::F(t) => t.shape(),
            Const::I(_, d) => d,
        }
    }

    /// The values as floats (integers converted).
    pub fn to_tensor(&self) -> Tensor {
        match self {
            Const::F(t) => t.clone(),
            // The shape matches the data by construction.
            Const::I(v, d) => Tensor::from_vec(v.iter().map(|&x| x as f32).collect(), d)
                .unwrap_or_else(|_| Tensor::zeros(&[0])),
        }
    }

    /// The values as integers (floats truncated), for shapes and axes.
    pub fn to_ints(&self) -> Vec<i64> {
        match self {
            Const::F(t) => t.data().iter().map(|&x| x as i64).collect(),
            Const::I(v, _) => v.clone(),
        }
    }

    /// The same values under new dimensions (the caller checked the count).
    pub fn with_dims(&self, dims: &[usize]) -> Const {
        match self {
            Const::F(t) => Const::F(t.reshape(dims).unwrap_or_else(|_| t.clone())),
            Const::I(v, _) => Const::I(v.clone(), dims.to_vec()),
        }
    }
}

/// A value during a forward pass.
#[derive(Clone, Debug)]
pub enum Val {
    /// A node on the tape.
    Node(NodeId),
    /// A constant.
    Const(Const),
}
