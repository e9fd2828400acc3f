//! Shape changes: reshape, flatten, permute and transpose; slicing and joining batches.

use super::{numel, Tensor};
use crate::error::{Error, Result};
use std::sync::Arc;

impl Tensor {
    /// The same values under a new shape with the same number of elements (no copy).
    pub fn reshape(&self, shape: &[usize]) -> Result<Tensor> {
        if numel(shape) != self.numel() {
            return Err(Error::shape(
                "reshape",
                &[self.shape(), shape],
                "the number of elements differs",
            ));
        }
        Ok(Tensor {
            shape: shape.to_vec(),
            data: Arc::clone(&self.data),
        })
    }

    /// Samples `start..end` of a `[n, ...]` tensor (a copy).
    pub fn batch_range(&self, start: usize, end: usize) -> Result<Tensor> {
        let n = self.shape().first().copied().unwrap_or(0);
        if start > end || end > n {
            return Err(Error::shape(
                "batch_range",
                &[self.shape()],
                format!("samples {start}..{end} are not within 0..{n}"),
            ));
        }
        let per = numel(&self.shape()[1..]);
        let mut shape = self.shape().to_vec();
        shape[0] = end - start;
        Ok(Tensor::raw(
            self.data()[start * per..end * per].to_vec(),
            shape,
        ))
    }

    /// Joins `[n_i, ...]` tensors with equal trailing dimensions along the batch dimension.
    pub fn concat_batch(parts: &[Tensor]) -> Result<Tensor> {
        let Some(first) = parts.first() else {
            return Err(Error::invalid("concat_batch", "no tensors to join"));
        };
        let tail = first.shape().get(1..).unwrap_or(&[]);
        if let Some(bad) = parts
            .iter()
            .find(|t| t.rank() == 0 || &t.shape()[1..] != tail)
        {
            return Err(Error::shape(
                "concat_batch",
                &[first.shape(), bad.shape()],
                "the tensors must be [n, ...] with the same trailing dimensions",
            ));
        }
        let mut shape = first.shape().to_vec();
        shape[0] = parts.iter().map(|t| t.shape()[0]).sum();
        let mut data = Vec::with_capacity(numel(&shape));
        for t in parts {
            data.extend_from_slice(t.data());
        }
        Ok(Tensor::raw(data, shape))
    }

    /// Merges every dimension from `start` on into one: `[n, c, h, w].flatten(1) = [n, c*h*w]`.
    pub fn flatten(&self, start: usize) -> Result<Tensor> {
        if start > self.rank() {
            return Err(Error::invalid(
                "flatten",
                format!("start dimension {start} is beyond rank {}", self.rank()),
            ));
        }
        let mut shape = self.shape()[..start].to_vec();
        shape.push(numel(&self.shape()[start..]));
        self.reshape(&shape)
    }

    /// Reorders dimensions: output dimension `i` is input dimension `perm[i]`.
    pub fn permute(&self, perm: &[usize]) -> Result<Tensor> {
        let rank = self.rank();
        let mut seen = vec![false; rank];
        if perm.len() != rank
            || perm
                .iter()
                .any(|&p| p >= rank || std::mem::replace(&mut seen[p], true))
        {
            return Err(Error::invalid(
                "permute",
                format!(
                    "{perm:?} is not a permutation of the {rank} dimensions of {:?}",
                    self.shape()
                ),
            ));
        }
        let shape: Vec<usize> = perm.iter().map(|&p| self.shape()[p]).collect();
        // Strides of the input, read in output order.
        let mut in_strides = vec![1; rank];
        for d in (0..rank.saturating_sub(1)).rev() {
            in_strides[d] = in_strides[d + 1] * self.shape()[d + 1];
        }
        let strides: Vec<usize> = perm.iter().map(|&p| in_strides[p]).collect();
        let src = self.data();
        let mut out = Vec::with_capacity(self.numel());
        let mut idx = vec![0usize; rank];
        let mut at = 0usize;
        for _ in 0..self.numel() {
            out.push(src[at]);
            for d in (0..rank).rev() {
                idx[d] += 1;
                at += strides[d];
                if idx[d] < shape[d] {
                    break;
                }
                at -= strides[d] * shape[d];
                idx[d] = 0;
            }
        }
        Ok(Tensor::raw(out, shape))
    }

    /// Swaps two dimensions.
    pub fn transpose(&self, a: usize, b: usize) -> Result<Tensor> {
        let mut perm: Vec<usize> = (0..self.rank()).collect();
        if a >= perm.len() || b >= perm.len() {
            return Err(Error::invalid(
                "transpose",
                format!(
                    "dimensions {a} and {b} do not both exist in {:?}",
                    self.shape()
                ),
            ));
        }
        perm.swap(a, b);
        self.permute(&perm)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permute_moves_values_like_numpy() {
        let x = Tensor::from_vec((0..24).map(|v| v as f32).collect(), &[2, 3, 4]).unwrap();
        let y = x.permute(&[2, 0, 1]).unwrap();
        assert_eq!(y.shape(), &[4, 2, 3]);
        // y[k, i, j] = x[i, j, k]
        assert_eq!(y.get(&[3, 1, 2]).unwrap(), x.get(&[1, 2, 3]).unwrap());
        assert_eq!(
            x.transpose(0, 2).unwrap().get(&[1, 2, 0]).unwrap(),
            x.get(&[0, 2, 1]).unwrap()
        );
        assert!(x.permute(&[0, 0, 1]).is_err());
        assert!(x.reshape(&[5, 5]).is_err());
        assert_eq!(x.flatten(1).unwrap().shape(), &[2, 12]);
    }

    #[test]
    fn batch_ranges_join_back_into_the_batch() {
        let x = Tensor::from_vec((0..30).map(|v| v as f32).collect(), &[5, 3, 2]).unwrap();
        let a = x.batch_range(0, 2).unwrap();
        let b = x.batch_range(2, 5).unwrap();
        assert_eq!(a.shape(), &[2, 3, 2]);
        assert_eq!(b.get(&[0, 0, 0]).unwrap(), 12.0);
        let joined = Tensor::concat_batch(&[a, b.clone()]).unwrap();
        assert_eq!(joined.shape(), x.shape());
        assert_eq!(joined.data(), x.data());
        assert!(x.batch_range(4, 6).is_err());
        assert!(x.batch_range(3, 2).is_err());
        let other = Tensor::zeros(&[1, 2, 3]);
        assert!(Tensor::concat_batch(&[b, other]).is_err());
        assert!(Tensor::concat_batch(&[]).is_err());
        assert!(Tensor::concat_batch(&[Tensor::scalar(1.0)]).is_err());
    }
}
