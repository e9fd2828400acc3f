//! Joining, slicing and zero-padding along any axis: what `Concat` and `Pad` nodes need.
//!
//! Each is a copy through the (outer, axis, inner) view of a shape (see `split_at_axis`):
//! along the chosen axis, a contiguous run of `len * inner` values per outer index.

use super::reduce::split_at_axis;
use super::{numel, Tensor};
use crate::error::{Error, Result};

impl Tensor {
    /// Joins tensors along `axis`; every other dimension must agree.
    pub fn concat(parts: &[Tensor], axis: usize) -> Result<Tensor> {
        let Some(first) = parts.first() else {
            return Err(Error::invalid("concat", "no tensors to join"));
        };
        let shapes: Vec<&[usize]> = parts.iter().map(|t| t.shape()).collect();
        let same_rest = |s: &[usize]| {
            s.len() == first.rank()
                && s.iter()
                    .zip(first.shape())
                    .enumerate()
                    .all(|(i, (a, b))| i == axis || a == b)
        };
        if axis >= first.rank() || !shapes.iter().all(|s| same_rest(s)) {
            return Err(Error::shape(
                "concat",
                &shapes,
                format!("the tensors must agree in every dimension but axis {axis}"),
            ));
        }
        let mut shape = first.shape().to_vec();
        shape[axis] = shapes.iter().map(|s| s[axis]).sum();
        let (outer, _, inner) = split_at_axis(&shape, axis);
        let mut data = Vec::with_capacity(numel(&shape));
        for o in 0..outer {
            for t in parts {
                let run = t.shape()[axis] * inner;
                data.extend_from_slice(&t.data()[o * run..(o + 1) * run]);
            }
        }
        Ok(Tensor::raw(data, shape))
    }

    /// Elements `start..start + len` along `axis` (a copy).
    pub fn narrow(&self, axis: usize, start: usize, len: usize) -> Result<Tensor> {
        let in_range = axis < self.rank()
            && start
                .checked_add(len)
                .is_some_and(|end| end <= self.shape()[axis]);
        if !in_range {
            return Err(Error::shape(
                "narrow",
                &[self.shape()],
                format!("elements {start}..+{len} of axis {axis} are out of range"),
            ));
        }
        let (outer, dim, inner) = split_at_axis(self.shape(), axis);
        let mut shape = self.shape().to_vec();
        shape[axis] = len;
        let mut data = Vec::with_capacity(numel(&shape));
        for o in 0..outer {
            let base = (o * dim + start) * inner;
            data.extend_from_slice(&self.data()[base..base + len * inner]);
        }
        Ok(Tensor::raw(data, shape))
    }

    /// Zeros added before and after each axis: `before[i]` and `after[i]` along axis `i`.
    pub fn pad(&self, before: &[usize], after: &[usize]) -> Result<Tensor> {
        if before.len() != self.rank() || after.len() != self.rank() {
            return Err(Error::shape(
                "pad",
                &[self.shape(), before, after],
                "one padding before and after per axis",
            ));
        }
        let shape: Option<Vec<usize>> = (0..self.rank())
            .map(|i| {
                self.shape()[i]
                    .checked_add(before[i])
                    .and_then(|d| d.checked_add(after[i]))
            })
            .collect();
        let Some(shape) = shape.filter(|s| {
            s.iter()
                .try_fold(1usize, |a, &d| a.checked_mul(d))
                .is_some()
        }) else {
            return Err(Error::shape(
                "pad",
                &[self.shape()],
                "the padded size overflows",
            ));
        };
        let mut out = Tensor::zeros(&shape).into_vec();
        // Copy row by row (the last axis is contiguous in both).
        let rank = self.rank();
        if self.numel() > 0 && rank > 0 {
            let row = self.shape()[rank - 1];
            let rows = self.numel() / row.max(1);
            let mut idx = vec![0usize; rank];
            for r in 0..rows {
                // idx holds the multi-index of row r (last axis at 0).
                let mut off = 0;
                for a in 0..rank {
                    off = off * shape[a] + idx[a] + before[a];
                }
                out[off..off + row].copy_from_slice(&self.data()[r * row..(r + 1) * row]);
                for a in (0..rank - 1).rev() {
                    idx[a] += 1;
                    if idx[a] < self.shape()[a] {
                        break;
                    }
                    idx[a] = 0;
                }
            }
        } else if rank == 0 {
            out = self.data().to_vec();
        }
        Ok(Tensor::raw(out, shape))
    }

    /// The inverse of [`Tensor::pad`]: drops `before[i]` and `after[i]` elements of axis `i`.
    pub fn crop(&self, before: &[usize], after: &[usize]) -> Result<Tensor> {
        if before.len() != self.rank() || after.len() != self.rank() {
            return Err(Error::shape(
                "crop",
                &[self.shape(), before, after],
                "one crop before and after per axis",
            ));
        }
        let mut t = self.clone();
        for a in 0..self.rank() {
            if before[a] == 0 && after[a] == 0 {
                continue;
            }
            let keep = self.shape()[a]
                .checked_sub(before[a])
                .and_then(|d| d.checked_sub(after[a]));
            let Some(keep) = keep else {
                return Err(Error::shape(
                    "crop",
                    &[self.shape(), before, after],
                    format!("axis {a} is shorter than what is cropped"),
                ));
            };
            t = t.narrow(a, before[a], keep)?;
        }
        Ok(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iota(shape: &[usize]) -> Tensor {
        Tensor::from_vec((0..numel(shape)).map(|i| i as f32).collect(), shape).unwrap()
    }

    #[test]
    fn concat_then_narrow_gives_the_parts_back() {
        let a = iota(&[2, 3, 2]);
        let b = iota(&[2, 1, 2]).add_scalar(100.0);
        let c = Tensor::concat(&[a.clone(), b.clone()], 1).unwrap();
        assert_eq!(c.shape(), &[2, 4, 2]);
        // Element [1, 3, 1] is b[1, 0, 1].
        assert_eq!(c.get(&[1, 3, 1]).unwrap(), b.get(&[1, 0, 1]).unwrap());
        assert_eq!(c.get(&[1, 2, 0]).unwrap(), a.get(&[1, 2, 0]).unwrap());
        assert_eq!(c.narrow(1, 0, 3).unwrap(), a);
        assert_eq!(c.narrow(1, 3, 1).unwrap(), b);
        assert!(Tensor::concat(&[a.clone(), iota(&[3, 1, 2])], 1).is_err());
        assert!(Tensor::concat(std::slice::from_ref(&a), 3).is_err());
        assert!(c.narrow(1, 3, 2).is_err());
        assert!(c.narrow(1, usize::MAX, 2).is_err());
    }

    #[test]
    fn pad_places_the_values_and_crop_undoes_it() {
        let x = iota(&[1, 2, 2, 3]);
        let p = x.pad(&[0, 0, 1, 0], &[0, 1, 2, 1]).unwrap();
        assert_eq!(p.shape(), &[1, 3, 5, 4]);
        for c in 0..3 {
            for h in 0..5 {
                for w in 0..4 {
                    let inside = c < 2 && (1..3).contains(&h) && w < 3;
                    let want = if inside {
                        x.get(&[0, c, h - 1, w]).unwrap()
                    } else {
                        0.0
                    };
                    assert_eq!(p.get(&[0, c, h, w]).unwrap(), want, "at {c},{h},{w}");
                }
            }
        }
        assert_eq!(p.crop(&[0, 0, 1, 0], &[0, 1, 2, 1]).unwrap(), x);
        assert!(x.pad(&[0, 0], &[0, 0]).is_err());
        assert!(x.pad(&[0, 0, 0, usize::MAX], &[0, 0, 0, 1]).is_err());
        assert!(x.crop(&[0, 0, 3, 0], &[0, 0, 0, 0]).is_err());
    }
}
