//! Reductions over axes, `sum_to` (the adjoint of broadcasting), and stable softmax.

use super::elementwise::{broadcast_shape, broadcast_strides, for_each_pair};
use super::{numel, Tensor};
use crate::error::{Error, Result};

/// Checks a list of axes against a rank: in range and without repeats.
fn check_axes(op: &'static str, shape: &[usize], axes: &[usize]) -> Result<()> {
    for (i, &a) in axes.iter().enumerate() {
        if a >= shape.len() {
            return Err(Error::invalid(
                op,
                format!("axis {a} is out of range for shape {shape:?}"),
            ));
        }
        if axes[..i].contains(&a) {
            return Err(Error::invalid(op, format!("axis {a} is listed twice")));
        }
    }
    Ok(())
}

/// The shape after reducing `axes`, with those dimensions kept as 1.
fn kept_shape(shape: &[usize], axes: &[usize]) -> Vec<usize> {
    shape
        .iter()
        .enumerate()
        .map(|(i, &d)| if axes.contains(&i) { 1 } else { d })
        .collect()
}

/// Splits a shape around `axis` into (outer, axis length, inner) for axis-wise loops.
pub(crate) fn split_at_axis(shape: &[usize], axis: usize) -> (usize, usize, usize) {
    (
        numel(&shape[..axis]),
        shape[axis],
        numel(&shape[axis + 1..]),
    )
}

impl Tensor {
    /// Folds the elements of each reduced group with `f`, starting from `init`.
    fn reduce(
        &self,
        op: &'static str,
        axes: &[usize],
        keepdim: bool,
        init: f32,
        f: impl Fn(f32, f32) -> f32,
    ) -> Result<Tensor> {
        check_axes(op, self.shape(), axes)?;
        let kept = kept_shape(self.shape(), axes);
        let mut out = vec![init; numel(&kept)];
        let own: Vec<usize> = broadcast_strides(self.shape(), self.shape());
        let to_out = broadcast_strides(&kept, self.shape());
        let data = self.data();
        for_each_pair(self.shape(), &own, &to_out, |i, o| {
            out[o] = f(out[o], data[i])
        });
        let shape = if keepdim {
            kept
        } else {
            self.shape()
                .iter()
                .enumerate()
                .filter(|(i, _)| !axes.contains(i))
                .map(|(_, &d)| d)
                .collect()
        };
        Ok(Tensor::raw(out, shape))
    }

    /// Sum over `axes` (dimensions dropped unless `keepdim`).
    pub fn sum(&self, axes: &[usize], keepdim: bool) -> Result<Tensor> {
        self.reduce("sum", axes, keepdim, 0.0, |acc, v| acc + v)
    }

    /// Mean over `axes`; an empty group gives NaN, as a mean of nothing is undefined.
    pub fn mean(&self, axes: &[usize], keepdim: bool) -> Result<Tensor> {
        let count: usize = axes.iter().filter_map(|&a| self.shape().get(a)).product();
        Ok(self.sum(axes, keepdim)?.mul_scalar(1.0 / count as f32))
    }

    /// Maximum over `axes`.
    pub fn max(&self, axes: &[usize], keepdim: bool) -> Result<Tensor> {
        self.reduce("max", axes, keepdim, f32::NEG_INFINITY, f32::max)
    }

    /// Index of the largest element along `axis` for every other position (first wins ties),
    /// in row-major order of the remaining dimensions.
    pub fn argmax(&self, axis: usize) -> Result<Vec<usize>> {
        check_axes("argmax", self.shape(), &[axis])?;
        let (outer, len, inner) = split_at_axis(self.shape(), axis);
        if len == 0 {
            return Err(Error::invalid("argmax", "the axis is empty"));
        }
        let data = self.data();
        let mut out = Vec::with_capacity(outer * inner);
        for o in 0..outer {
            for i in 0..inner {
                let at = |k: usize| data[(o * len + k) * inner + i];
                let best = (1..len).fold(0, |b, k| if at(k) > at(b) { k } else { b });
                out.push(best);
            }
        }
        Ok(out)
    }

    /// Sums a broadcast tensor back down to `shape`: the adjoint of broadcasting, used by
    /// every broadcasting op's derivative.
    pub fn sum_to(&self, shape: &[usize]) -> Result<Tensor> {
        if self.shape() == shape {
            return Ok(self.clone());
        }
        let full = broadcast_shape("sum_to", shape, self.shape())?;
        if full != self.shape() {
            return Err(Error::shape(
                "sum_to",
                &[self.shape(), shape],
                "the target shape does not broadcast to this tensor's shape",
            ));
        }
        let lead = self.rank() - shape.len();
        let mut axes: Vec<usize> = (0..lead).collect();
        axes.extend(
            (0..shape.len())
                .filter(|&i| shape[i] == 1 && self.shape()[lead + i] != 1)
                .map(|i| i + lead),
        );
        let summed = self.sum(&axes, true)?;
        summed.reshape(shape)
    }

    /// Softmax along `axis`, stabilised by subtracting the maximum first.
    pub fn softmax(&self, axis: usize) -> Result<Tensor> {
        self.along_axis("softmax", axis, |row, out| {
            let m = row.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
            let mut total = 0.0f64;
            for (o, &v) in out.iter_mut().zip(row) {
                *o = (v - m).exp();
                total += *o as f64;
            }
            let inv = (1.0 / total) as f32;
            out.iter_mut().for_each(|o| *o *= inv);
        })
    }

    /// Log-softmax along `axis` by the log-sum-exp trick (never `ln(0)` for finite input).
    pub fn log_softmax(&self, axis: usize) -> Result<Tensor> {
        self.along_axis("log_softmax", axis, |row, out| {
            let m = row.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
            let lse = m as f64
                + row
                    .iter()
                    .map(|&v| ((v - m) as f64).exp())
                    .sum::<f64>()
                    .ln();
            for (o, &v) in out.iter_mut().zip(row) {
                *o = (v as f64 - lse) as f32;
            }
        })
    }

    /// Applies `f(row, out_row)` to every 1-D slice along `axis`.
    fn along_axis(
        &self,
        op: &'static str,
        axis: usize,
        f: impl Fn(&[f32], &mut [f32]),
    ) -> Result<Tensor> {
        check_axes(op, self.shape(), &[axis])?;
        let (outer, len, inner) = split_at_axis(self.shape(), axis);
        let mut out = vec![0.0; self.numel()];
        let (mut row, mut res) = (vec![0.0; len], vec![0.0; len]);
        for o in 0..outer {
            for i in 0..inner {
                let at = |k: usize| (o * len + k) * inner + i;
                for (k, r) in row.iter_mut().enumerate() {
                    *r = self.data()[at(k)];
                }
                f(&row, &mut res);
                for (k, &r) in res.iter().enumerate() {
                    out[at(k)] = r;
                }
            }
        }
        Ok(Tensor::raw(out, self.shape().to_vec()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_and_max_over_axes() {
        let x = Tensor::from_vec((0..6).map(|v| v as f32).collect(), &[2, 3]).unwrap();
        assert_eq!(x.sum(&[0], false).unwrap().data(), &[3.0, 5.0, 7.0]);
        assert_eq!(x.sum(&[1], true).unwrap().shape(), &[2, 1]);
        assert_eq!(x.sum(&[0, 1], false).unwrap().data(), &[15.0]);
        assert_eq!(x.max(&[1], false).unwrap().data(), &[2.0, 5.0]);
        assert_eq!(x.mean(&[1], false).unwrap().data(), &[1.0, 4.0]);
        assert_eq!(x.argmax(1).unwrap(), vec![2, 2]);
        assert_eq!(x.argmax(0).unwrap(), vec![1, 1, 1]);
        assert!(x.sum(&[2], false).is_err());
        assert!(x.sum(&[1, 1], false).is_err());
    }

    #[test]
    fn sum_to_undoes_broadcasting() {
        let g = Tensor::ones(&[4, 2, 3]);
        assert_eq!(g.sum_to(&[2, 1]).unwrap().data(), &[12.0, 12.0]);
        assert_eq!(g.sum_to(&[3]).unwrap().data(), &[8.0, 8.0, 8.0]);
        assert_eq!(g.sum_to(&[]).unwrap().data(), &[24.0]);
        assert!(g.sum_to(&[5]).is_err());
    }

    #[test]
    fn softmax_is_stable_and_normalised() {
        let x = Tensor::from_vec(vec![1000.0, 1001.0, -1000.0, 0.0], &[2, 2]).unwrap();
        let s = x.softmax(1).unwrap();
        assert!(s.all_finite());
        assert!((s.data()[0] + s.data()[1] - 1.0).abs() < 1e-6);
        let ls = x.log_softmax(1).unwrap();
        assert!(ls.all_finite());
        assert!((ls.data()[2] - -1000.0).abs() < 1e-3);
    }
}
