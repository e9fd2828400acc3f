//! Elementwise arithmetic with NumPy broadcasting, unary maps, comparisons and `where`.
//!
//! Broadcasting aligns shapes on the right; a dimension of 1 (or a missing one) stretches
//! to match the other operand. A stretched operand gets stride 0, so nothing is copied.

use super::{numel, Tensor};
use crate::error::{Error, Result};
use crate::kernels::split::may_split;
use rayon::prelude::*;

/// Elementwise loops split across threads from this many elements: below it,
/// waking the pool costs more than the loop (a 256-sample activation of a
/// small CNN is millions of elements, a logit vector a few thousand).
const PAR_MIN_ELEMENTS: usize = 1 << 16;
/// Elements per parallel task: long enough for the inner loop to vectorise.
const PAR_CHUNK: usize = 1 << 14;

/// `f` applied to every element of `a`, over rayon threads for long slices.
fn map_slice(a: &[f32], f: impl Fn(f32) -> f32 + Sync + Send) -> Vec<f32> {
    if a.len() < PAR_MIN_ELEMENTS || !may_split() {
        return a.iter().map(|&v| f(v)).collect();
    }
    let mut out = vec![0.0f32; a.len()];
    out.par_chunks_mut(PAR_CHUNK)
        .zip(a.par_chunks(PAR_CHUNK))
        .for_each(|(o, a)| o.iter_mut().zip(a).for_each(|(o, &v)| *o = f(v)));
    out
}

/// `f` applied pairwise to equally long `a` and `b`, over rayon threads for
/// long slices.
fn zip_slices(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32 + Sync + Send) -> Vec<f32> {
    if a.len() < PAR_MIN_ELEMENTS || !may_split() {
        return a.iter().zip(b).map(|(&x, &y)| f(x, y)).collect();
    }
    let mut out = vec![0.0f32; a.len()];
    out.par_chunks_mut(PAR_CHUNK)
        .zip(a.par_chunks(PAR_CHUNK).zip(b.par_chunks(PAR_CHUNK)))
        .for_each(|(o, (a, b))| {
            o.iter_mut()
                .zip(a.iter().zip(b))
                .for_each(|(o, (&x, &y))| *o = f(x, y))
        });
    out
}

/// `f(long[i], one[i % one.len()])`: a batch against one sample's worth of values (the
/// common broadcast of a per-sample constant), a sample at a time, over rayon threads for
/// long slices.
fn zip_cycled(long: &[f32], one: &[f32], f: impl Fn(f32, f32) -> f32 + Sync + Send) -> Vec<f32> {
    let per = one.len();
    if long.len() < PAR_MIN_ELEMENTS || !may_split() {
        let mut out = Vec::with_capacity(long.len());
        for sample in long.chunks_exact(per) {
            out.extend(sample.iter().zip(one).map(|(&x, &y)| f(x, y)));
        }
        return out;
    }
    let mut out = vec![0.0f32; long.len()];
    out.par_chunks_mut(per)
        .zip(long.par_chunks(per))
        .for_each(|(o, l)| {
            o.iter_mut()
                .zip(l.iter().zip(one))
                .for_each(|(o, (&x, &y))| *o = f(x, y))
        });
    out
}

/// The broadcast of two shapes, or an error naming `op` when a pair of dimensions clashes.
pub fn broadcast_shape(op: &'static str, a: &[usize], b: &[usize]) -> Result<Vec<usize>> {
    let rank = a.len().max(b.len());
    let mut out = vec![0; rank];
    for i in 0..rank {
        let da = if i < rank - a.len() {
            1
        } else {
            a[i - (rank - a.len())]
        };
        let db = if i < rank - b.len() {
            1
        } else {
            b[i - (rank - b.len())]
        };
        out[i] = match (da, db) {
            _ if da == db => da,
            (1, d) | (d, 1) => d,
            _ => {
                return Err(Error::shape(
                    op,
                    &[a, b],
                    format!("dimension {i} of the broadcast is {da} in one and {db} in the other"),
                ))
            }
        };
    }
    Ok(out)
}

/// Strides that read a tensor of `shape` as if it had the (broadcast) shape `out`.
pub(super) fn broadcast_strides(shape: &[usize], out: &[usize]) -> Vec<usize> {
    let offset = out.len() - shape.len();
    let mut strides = vec![0; out.len()];
    let mut step = 1;
    for i in (0..shape.len()).rev() {
        strides[i + offset] = if shape[i] == 1 { 0 } else { step };
        step *= shape[i];
    }
    strides
}

/// Calls `f(ia, ib)` for every output position, in row-major order, with the flat indices
/// of the two broadcast operands.
pub(super) fn for_each_pair(
    out: &[usize],
    sa: &[usize],
    sb: &[usize],
    mut f: impl FnMut(usize, usize),
) {
    let rank = out.len();
    let mut idx = vec![0usize; rank];
    let (mut ia, mut ib) = (0usize, 0usize);
    for _ in 0..numel(out) {
        f(ia, ib);
        // Odometer increment: carry into the next-outer dimension when one wraps.
        for d in (0..rank).rev() {
            idx[d] += 1;
            ia += sa[d];
            ib += sb[d];
            if idx[d] < out[d] {
                break;
            }
            ia -= sa[d] * out[d];
            ib -= sb[d] * out[d];
            idx[d] = 0;
        }
    }
}

impl Tensor {
    /// Combines two tensors elementwise with broadcasting.
    pub fn zip_with(
        &self,
        other: &Tensor,
        op: &'static str,
        f: impl Fn(f32, f32) -> f32 + Sync + Send,
    ) -> Result<Tensor> {
        let (a, b) = (self.data(), other.data());
        if self.shape() == other.shape() {
            return Ok(Tensor::raw(zip_slices(a, b, f), self.shape().to_vec()));
        }
        let (sa, sb) = (self.shape(), other.shape());
        // `[n, ...]` against `[1, ...]`: sample by sample, not index by index.
        if sa.len() == sb.len() && !sa.is_empty() && sa[1..] == sb[1..] && numel(&sa[1..]) > 0 {
            match (sa[0], sb[0]) {
                (_, 1) => return Ok(Tensor::raw(zip_cycled(a, b, f), sa.to_vec())),
                (1, _) => {
                    let data = zip_cycled(b, a, move |y, x| f(x, y));
                    return Ok(Tensor::raw(data, sb.to_vec()));
                }
                _ => {}
            }
        }
        let out = broadcast_shape(op, self.shape(), other.shape())?;
        let (sa, sb) = (
            broadcast_strides(self.shape(), &out),
            broadcast_strides(other.shape(), &out),
        );
        let mut data = Vec::with_capacity(numel(&out));
        for_each_pair(&out, &sa, &sb, |ia, ib| data.push(f(a[ia], b[ib])));
        Ok(Tensor::raw(data, out))
    }

    /// This tensor repeated along broadcast dimensions to `shape`.
    pub fn broadcast_to(&self, shape: &[usize]) -> Result<Tensor> {
        let out = broadcast_shape("broadcast_to", self.shape(), shape)?;
        if out != shape {
            return Err(Error::shape(
                "broadcast_to",
                &[self.shape(), shape],
                "the tensor does not broadcast to the requested shape",
            ));
        }
        if self.shape() == shape {
            return Ok(self.clone());
        }
        let sa = broadcast_strides(self.shape(), &out);
        let zero = vec![0; out.len()];
        let mut data = Vec::with_capacity(numel(&out));
        for_each_pair(&out, &sa, &zero, |ia, _| data.push(self.data()[ia]));
        Ok(Tensor::raw(data, out))
    }

    /// Applies `f` to every element.
    pub fn map(&self, f: impl Fn(f32) -> f32 + Sync + Send) -> Tensor {
        Tensor::raw(map_slice(self.data(), f), self.shape().to_vec())
    }

    /// `self + other` with broadcasting.
    pub fn add(&self, other: &Tensor) -> Result<Tensor> {
        self.zip_with(other, "add", |a, b| a + b)
    }
    /// `self - other` with broadcasting.
    pub fn sub(&self, other: &Tensor) -> Result<Tensor> {
        self.zip_with(other, "sub", |a, b| a - b)
    }
    /// `self * other` with broadcasting.
    pub fn mul(&self, other: &Tensor) -> Result<Tensor> {
        self.zip_with(other, "mul", |a, b| a * b)
    }
    /// `self / other` with broadcasting (IEEE semantics: x / 0 is infinite).
    pub fn div(&self, other: &Tensor) -> Result<Tensor> {
        self.zip_with(other, "div", |a, b| a / b)
    }
    /// Elementwise maximum with broadcasting.
    pub fn maximum(&self, other: &Tensor) -> Result<Tensor> {
        self.zip_with(other, "maximum", f32::max)
    }
    /// Elementwise minimum with broadcasting.
    pub fn minimum(&self, other: &Tensor) -> Result<Tensor> {
        self.zip_with(other, "minimum", f32::min)
    }

    /// `self + c`.
    pub fn add_scalar(&self, c: f32) -> Tensor {
        self.map(|v| v + c)
    }
    /// `self * c`.
    pub fn mul_scalar(&self, c: f32) -> Tensor {
        self.map(|v| v * c)
    }
    /// `-self`.
    pub fn neg(&self) -> Tensor {
        self.map(|v| -v)
    }
    /// `max(self, 0)`.
    pub fn relu(&self) -> Tensor {
        self.map(|v| v.max(0.0))
    }
    /// `min(self, 0)`.
    pub fn neg_part(&self) -> Tensor {
        self.map(|v| v.min(0.0))
    }
    /// `e^self`.
    pub fn exp(&self) -> Tensor {
        self.map(f32::exp)
    }
    /// Natural logarithm.
    pub fn ln(&self) -> Tensor {
        self.map(f32::ln)
    }
    /// Square root.
    pub fn sqrt(&self) -> Tensor {
        self.map(f32::sqrt)
    }
    /// Absolute value.
    pub fn abs(&self) -> Tensor {
        self.map(f32::abs)
    }
    /// Elementwise square.
    pub fn square(&self) -> Tensor {
        self.map(|v| v * v)
    }
    /// Each element clamped into `[lo, hi]`.
    pub fn clamp(&self, lo: f32, hi: f32) -> Tensor {
        self.map(|v| v.max(lo).min(hi))
    }

    /// 1.0 where `self > other`, else 0.0 (broadcasting).
    pub fn gt(&self, other: &Tensor) -> Result<Tensor> {
        self.zip_with(other, "gt", |a, b| (a > b) as u8 as f32)
    }
    /// 1.0 where `self >= other`, else 0.0 (broadcasting).
    pub fn ge(&self, other: &Tensor) -> Result<Tensor> {
        self.zip_with(other, "ge", |a, b| (a >= b) as u8 as f32)
    }
    /// 1.0 where `self < other`, else 0.0 (broadcasting).
    pub fn lt(&self, other: &Tensor) -> Result<Tensor> {
        self.zip_with(other, "lt", |a, b| (a < b) as u8 as f32)
    }
    /// 1.0 where `self <= other`, else 0.0 (broadcasting).
    pub fn le(&self, other: &Tensor) -> Result<Tensor> {
        self.zip_with(other, "le", |a, b| (a <= b) as u8 as f32)
    }
    /// 1.0 where `self == other`, else 0.0 (broadcasting).
    pub fn eq_mask(&self, other: &Tensor) -> Result<Tensor> {
        self.zip_with(other, "eq", |a, b| (a == b) as u8 as f32)
    }

    /// `a` where `cond` is non-zero, else `b`; all three broadcast together.
    pub fn where_cond(cond: &Tensor, a: &Tensor, b: &Tensor) -> Result<Tensor> {
        let ab = broadcast_shape("where", a.shape(), b.shape())?;
        let out = broadcast_shape("where", cond.shape(), &ab)?;
        let (c, a, b) = (
            cond.broadcast_to(&out)?,
            a.broadcast_to(&out)?,
            b.broadcast_to(&out)?,
        );
        let data = c
            .data()
            .iter()
            .zip(a.data().iter().zip(b.data()))
            .map(|(&c, (&x, &y))| if c != 0.0 { x } else { y })
            .collect();
        Ok(Tensor::raw(data, out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(data: &[f32], shape: &[usize]) -> Tensor {
        Tensor::from_vec(data.to_vec(), shape).unwrap()
    }

    #[test]
    fn broadcasting_matches_hand_computed_values() {
        // [2,1] + [3] -> [2,3]: rows from a, columns from b.
        let a = t(&[10.0, 20.0], &[2, 1]);
        let b = t(&[1.0, 2.0, 3.0], &[3]);
        let c = a.add(&b).unwrap();
        assert_eq!(c.shape(), &[2, 3]);
        assert_eq!(c.data(), &[11.0, 12.0, 13.0, 21.0, 22.0, 23.0]);
        let d = b.sub(&a).unwrap();
        assert_eq!(d.data(), &[-9.0, -8.0, -7.0, -19.0, -18.0, -17.0]);
    }

    #[test]
    fn batch_against_one_sample_matches_the_repeated_sample() {
        // [n, ...] with [1, ...] (both orders, a non-commutative f), small and long enough
        // to be split over threads: the same values as against the sample repeated.
        for (n, rest) in [(3, vec![2, 2]), (5, vec![64, 300])] {
            let per: usize = rest.iter().product();
            let batch = Tensor::from_vec(
                (0..n * per).map(|i| (i % 97) as f32 - 40.0).collect(),
                &[&[n][..], &rest].concat(),
            )
            .unwrap();
            let one = Tensor::from_vec(
                (0..per).map(|i| (i % 13) as f32 * 0.5 - 3.0).collect(),
                &[&[1][..], &rest].concat(),
            )
            .unwrap();
            let repeated = one.broadcast_to(batch.shape()).unwrap();
            let f = |x: f32, y: f32| x - 2.0 * y;
            let fwd = batch.zip_with(&one, "f", f).unwrap();
            assert_eq!(fwd, batch.zip_with(&repeated, "f", f).unwrap());
            let back = one.zip_with(&batch, "f", f).unwrap();
            assert_eq!(back, repeated.zip_with(&batch, "f", f).unwrap());
            assert_eq!(back.shape(), batch.shape());
        }
    }

    #[test]
    fn clashing_shapes_name_the_op_and_shapes() {
        let err = t(&[1.0; 6], &[2, 3]).mul(&t(&[1.0; 4], &[4])).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("mul") && msg.contains("[2, 3]") && msg.contains("[4]"),
            "{msg}"
        );
    }

    #[test]
    fn where_and_comparisons() {
        let x = t(&[-1.0, 0.0, 2.0], &[3]);
        let zero = Tensor::scalar(0.0);
        let mask = x.gt(&zero).unwrap();
        assert_eq!(mask.data(), &[0.0, 0.0, 1.0]);
        let y = Tensor::where_cond(&mask, &x, &x.neg()).unwrap();
        assert_eq!(y.data(), &[1.0, -0.0, 2.0]);
    }
}
