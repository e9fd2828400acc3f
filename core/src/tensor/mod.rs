//! `Tensor`: an immutable, contiguous, row-major block of `f32` with a shape.
//!
//! Storage sits behind an `Arc`, so cloning a tensor (as the tape does for every recorded
//! value) copies a pointer, never the numbers. Every operation returns a new tensor.

mod conv_spec;
mod elementwise;
mod join;
mod kernel_ops;
mod layout;
mod reduce;

use crate::error::{Error, Result};
use crate::rng::Rng;
use std::fmt;
use std::sync::Arc;

pub use kernel_ops::{Conv2dSpec, Pool2dSpec};

/// An n-dimensional array of `f32`, contiguous and row-major (images are NCHW).
#[derive(Clone, PartialEq)]
pub struct Tensor {
    shape: Vec<usize>,
    data: Arc<Vec<f32>>,
}

/// Number of elements of a shape (1 for the scalar shape `[]`).
pub fn numel(shape: &[usize]) -> usize {
    shape.iter().product()
}

impl Tensor {
    /// A tensor from row-major values; fails unless `data.len()` equals the product of `shape`.
    pub fn from_vec(data: Vec<f32>, shape: &[usize]) -> Result<Tensor> {
        let n = shape
            .iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(d))
            .ok_or_else(|| Error::invalid("from_vec", format!("shape {shape:?} overflows")))?;
        if n != data.len() {
            return Err(Error::shape(
                "from_vec",
                &[shape],
                format!("the shape holds {n} values but {} were given", data.len()),
            ));
        }
        Ok(Tensor {
            shape: shape.to_vec(),
            data: Arc::new(data),
        })
    }

    /// Internal constructor for kernels whose output length is right by construction.
    pub(crate) fn raw(data: Vec<f32>, shape: Vec<usize>) -> Tensor {
        debug_assert_eq!(numel(&shape), data.len());
        Tensor {
            shape,
            data: Arc::new(data),
        }
    }

    /// A rank-0 tensor holding one value.
    pub fn scalar(v: f32) -> Tensor {
        Tensor::raw(vec![v], vec![])
    }

    /// Every element equal to `v`.
    pub fn full(shape: &[usize], v: f32) -> Tensor {
        Tensor::raw(vec![v; numel(shape)], shape.to_vec())
    }

    /// All zeros.
    pub fn zeros(shape: &[usize]) -> Tensor {
        Tensor::full(shape, 0.0)
    }

    /// All ones.
    pub fn ones(shape: &[usize]) -> Tensor {
        Tensor::full(shape, 1.0)
    }

    /// Uniform in `[lo, hi)`, fixed by `seed`.
    pub fn rand_uniform(shape: &[usize], lo: f32, hi: f32, seed: u64) -> Tensor {
        let mut rng = Rng::new(seed);
        let data = (0..numel(shape)).map(|_| rng.uniform(lo, hi)).collect();
        Tensor::raw(data, shape.to_vec())
    }

    /// Normal with the given mean and standard deviation, fixed by `seed`.
    pub fn rand_normal(shape: &[usize], mean: f32, std: f32, seed: u64) -> Tensor {
        let mut rng = Rng::new(seed);
        let data = (0..numel(shape))
            .map(|_| mean + std * rng.normal())
            .collect();
        Tensor::raw(data, shape.to_vec())
    }

    /// The shape, outermost dimension first.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// Number of dimensions.
    pub fn rank(&self) -> usize {
        self.shape.len()
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.data.len()
    }

    /// The values in row-major order.
    pub fn data(&self) -> &[f32] {
        &self.data
    }

    /// The values as an owned vector (copies only if the storage is shared).
    pub fn into_vec(self) -> Vec<f32> {
        Arc::try_unwrap(self.data).unwrap_or_else(|shared| (*shared).clone())
    }

    /// The single value of a one-element tensor.
    pub fn item(&self) -> Result<f32> {
        match self.data.as_slice() {
            [v] => Ok(*v),
            _ => Err(Error::shape(
                "item",
                &[&self.shape],
                "only a one-element tensor has an item",
            )),
        }
    }

    /// The value at a multi-index.
    pub fn get(&self, index: &[usize]) -> Result<f32> {
        if index.len() != self.shape.len() || index.iter().zip(&self.shape).any(|(i, d)| i >= d) {
            return Err(Error::invalid(
                "get",
                format!("index {index:?} is outside shape {:?}", self.shape),
            ));
        }
        let flat = index
            .iter()
            .zip(&self.shape)
            .fold(0, |acc, (&i, &d)| acc * d + i);
        Ok(self.data[flat])
    }

    /// Sum of all elements, accumulated in f64 so long sums stay accurate.
    pub fn sum_all(&self) -> f32 {
        self.data.iter().map(|&v| v as f64).sum::<f64>() as f32
    }

    /// Sum of absolute values (f64 accumulation).
    pub fn abs_sum(&self) -> f32 {
        self.data.iter().map(|&v| (v as f64).abs()).sum::<f64>() as f32
    }

    /// Largest absolute value (0 for an empty tensor).
    pub fn max_abs(&self) -> f32 {
        self.data.iter().fold(0.0f32, |m, v| m.max(v.abs()))
    }

    /// True when no element is NaN or infinite.
    pub fn all_finite(&self) -> bool {
        // `v * 0` is 0 for finite `v` and NaN otherwise; adding those up in 8 lanes
        // vectorises, where a short-circuiting `all` walks one value at a time (this runs
        // over every activation of every checked forward pass).
        let chunks = self.data.chunks_exact(8);
        let tail_finite = chunks.remainder().iter().all(|v| v.is_finite());
        let mut acc = [0.0f32; 8];
        for c in chunks {
            for k in 0..8 {
                acc[k] += c[k] * 0.0;
            }
        }
        tail_finite && acc.iter().all(|a| a.is_finite())
    }

    /// True when every element is `>= 0` (so none is NaN).
    pub fn all_nonnegative(&self) -> bool {
        // Counting in 8 lanes vectorises; a short-circuiting `all` would not, and this
        // runs on every layer input an LRP rule splits by sign.
        let chunks = self.data.chunks_exact(8);
        let tail = chunks.remainder().iter().all(|&v| v >= 0.0);
        let mut count = [0u32; 8];
        for c in chunks {
            for k in 0..8 {
                count[k] += u32::from(c[k] >= 0.0);
            }
        }
        let body = self.data.len() - self.data.len() % 8;
        // Chunk counts are exact while a lane sees fewer than 2^32 chunks.
        tail && count.iter().map(|&c| c as usize).sum::<usize>() == body
    }

    /// Largest elementwise difference to `other` relative to `other`'s largest magnitude.
    pub fn max_rel_diff(&self, other: &Tensor) -> Result<f32> {
        if self.shape != other.shape {
            return Err(Error::shape(
                "max_rel_diff",
                &[&self.shape, &other.shape],
                "shapes differ",
            ));
        }
        let diff = self
            .data
            .iter()
            .zip(other.data.iter())
            .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
        Ok(diff / other.max_abs().max(f32::MIN_POSITIVE))
    }
}

impl fmt::Debug for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOWN: usize = 8;
        let head: Vec<String> = self
            .data
            .iter()
            .take(SHOWN)
            .map(|v| format!("{v:.4}"))
            .collect();
        let more = if self.numel() > SHOWN { ", ..." } else { "" };
        write!(f, "Tensor{:?} [{}{more}]", self.shape, head.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::Tensor;

    #[test]
    fn all_finite_finds_every_non_finite_value_in_body_and_tail() {
        // 21 values: two chunks of 8 and a tail of 5, so both loops are exercised.
        let ok: Vec<f32> = (0..21).map(|i| (i as f32 - 10.0) * 1e37).collect();
        let t = |v: Vec<f32>| Tensor::from_vec(v, &[21]).unwrap();
        assert!(t(ok.clone()).all_finite());
        let mut extremes = ok.clone();
        extremes[3] = f32::MAX;
        extremes[19] = -f32::MAX;
        assert!(
            t(extremes).all_finite(),
            "huge but finite values are finite"
        );
        for at in [0, 7, 8, 15, 16, 20] {
            for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
                let mut v = ok.clone();
                v[at] = bad;
                assert!(!t(v).all_finite(), "{bad} at {at} was missed");
            }
        }
        assert!(Tensor::from_vec(vec![], &[0]).unwrap().all_finite());
    }

    #[test]
    fn all_nonnegative_finds_every_negative_or_nan_value() {
        let ok: Vec<f32> = (0..21).map(|i| i as f32 * 0.5).collect();
        let t = |v: Vec<f32>| Tensor::from_vec(v, &[21]).unwrap();
        assert!(t(ok.clone()).all_nonnegative());
        for at in [0, 7, 8, 15, 16, 20] {
            for bad in [-1e-30, f32::NAN, f32::NEG_INFINITY] {
                let mut v = ok.clone();
                v[at] = bad;
                assert!(!t(v).all_nonnegative(), "{bad} at {at} was missed");
            }
        }
        let mut zeros = vec![0.0f32; 21];
        zeros[4] = -0.0;
        assert!(t(zeros).all_nonnegative(), "-0 is not negative");
    }
}
