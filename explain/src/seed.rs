//! Seeds: the signal placed on the logits before the backward walk, and target selection.
//!
//! Every rule is linear in the seed, so the class-discriminative methods are just seeds:
//! SGLRP seeds with the gradient of the target's softmax probability, CLRP1 with the target
//! score minus its share spread over the other classes.

use relprop_core::{Error, Result, Tensor};
use std::sync::Arc;

/// Which class to explain for each sample.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Targets {
    /// The predicted class (argmax of the logits) of each sample.
    Argmax,
    /// The same class for every sample.
    Class(usize),
    /// One class per sample.
    PerSample(Vec<usize>),
}

impl Targets {
    /// Fails unless `given` per-sample targets match `n` samples.
    pub fn check_count(given: usize, n: usize) -> Result<()> {
        if given != n {
            return Err(Error::invalid(
                "targets",
                format!("{given} targets were given for {n} samples"),
            ));
        }
        Ok(())
    }

    /// The class per sample for these `[n, classes]` logits; out-of-range classes are errors.
    pub fn resolve(&self, logits: &Tensor) -> Result<Vec<usize>> {
        let (n, c) = match *logits.shape() {
            [n, c] => (n, c),
            _ => {
                return Err(Error::shape(
                    "targets",
                    &[logits.shape()],
                    "logits must be [samples, classes]",
                ))
            }
        };
        let t = match self {
            Targets::Argmax => logits.argmax(1)?,
            Targets::Class(k) => vec![*k; n],
            Targets::PerSample(v) => {
                Targets::check_count(v.len(), n)?;
                v.clone()
            }
        };
        if let Some(bad) = t.iter().find(|&&k| k >= c) {
            return Err(Error::invalid(
                "targets",
                format!("target class {bad} is out of range: the model has {c} classes (0..{c})"),
            ));
        }
        Ok(t)
    }
}

/// A function of the logits and the targets giving a seed of the logits' shape.
pub type SeedFn = Arc<dyn Fn(&Tensor, &[usize]) -> Result<Tensor> + Send + Sync>;

/// The signal placed on the logits.
#[derive(Clone)]
pub enum Seed {
    /// `e_t`: one at the target (Zennit's default, the gradient's seed).
    OneHot,
    /// `S_t e_t`: the target logit at the target.
    TargetScore,
    /// SGLRP's seed (Iwana, Kuroki and Uchida 2019, "Explaining Convolutional Neural
    /// Networks using Softmax Gradient Layer-wise Relevance Propagation", ICCV Workshops):
    /// the gradient of the target's softmax probability with respect to the logits.
    ///
    /// With `p_k = exp(z_k) / sum_m exp(z_m)`, differentiate `p_t = exp(z_t) / S`:
    ///
    /// ```text
    /// k = t:   d p_t / d z_t = (exp(z_t) S - exp(z_t) exp(z_t)) / S^2 = p_t - p_t^2 = p_t (1 - p_t)
    /// k != t:  d p_t / d z_k = -exp(z_t) exp(z_k) / S^2                = -p_t p_k
    /// ```
    ///
    /// i.e. `d p_t / d z_k = p_t (delta_tk - p_k)`, the seed `p_t (e_t - p)`. It is
    /// positive at the target and negative at every other class in proportion to that
    /// class's probability, so the walk explains the target *against* the classes the
    /// model also considers; the entries sum to `p_t (1 - sum_k p_k) = 0`, so under
    /// conserving rules the map sums to about 0 (positive evidence for the target,
    /// negative for its competitors). When the softmax is saturated (`p_t = 1` in f32,
    /// a very confident prediction) the seed and the map are zero and the audit says so:
    /// there is nothing left that would change the probability.
    SoftmaxGradient,
    /// CLRP1's seed (Gu, Yang and Tresp 2018, "Understanding Individual Decisions of CNNs
    /// via Contrastive Backpropagation"): `S_t (e_t - (1 - e_t) / (C - 1))`.
    ///
    /// CLRP explains the target against a *dual* virtual class that represents every other
    /// class: `R_CLRP = max(0, R(S_t e_t) - R(dual))`. CLRP1's dual spreads the target
    /// score `S_t` evenly over the other `C - 1` classes. Since every rule is linear in its
    /// seed, the two walks are one walk with this difference as the seed; the positive part
    /// is taken by [`crate::Method::Clrp1`], not here. (CLRP2's dual negates the output
    /// layer instead: [`crate::Method::Clrp2`].)
    Clrp1,
    /// A fixed seed of the logits' shape.
    Tensor(Tensor),
    /// Computed from the logits and targets.
    Fn(SeedFn),
}

/// A seed, with notes for the audit (e.g. saturated softmax).
pub struct BuiltSeed {
    /// `[n, classes]`.
    pub seed: Tensor,
    /// Remarks about individual samples.
    pub notes: Vec<String>,
}

impl Seed {
    /// Builds the seed for `[n, classes]` logits and resolved targets.
    pub fn build(&self, logits: &Tensor, targets: &[usize]) -> Result<BuiltSeed> {
        let (n, c) = (logits.shape()[0], logits.shape()[1]);
        let z = logits.data();
        let mut notes = Vec::new();
        let mut data = vec![0.0f32; n * c];
        match self {
            Seed::OneHot => data = per_row(z, c, targets, |_, t, out| out[t] = 1.0),
            Seed::TargetScore => data = per_row(z, c, targets, |z, t, out| out[t] = z[t]),
            Seed::Clrp1 => {
                let spread = 1.0 / (c.max(2) - 1) as f32;
                data = per_row(z, c, targets, |z, t, out| {
                    for (k, o) in out.iter_mut().enumerate() {
                        *o = if k == t { z[t] } else { -z[t] * spread };
                    }
                })
            }
            Seed::SoftmaxGradient => {
                let y = logits.softmax(1)?;
                for i in 0..n {
                    let (row, t) = (&y.data()[i * c..(i + 1) * c], targets[i]);
                    if row[t] == 1.0 {
                        // y_t = 1 in f32: the softmax is saturated and its gradient vanishes.
                        notes.push(format!("sample {i}: softmax saturated (y_t = 1 in f32), SGLRP seed and map are zero"));
                        continue;
                    }
                    for k in 0..c {
                        let e = if k == t { 1.0 } else { 0.0 };
                        data[i * c + k] = row[t] * (e - row[k]);
                    }
                }
            }
            Seed::Tensor(s) => {
                if s.shape() != logits.shape() {
                    return Err(Error::shape(
                        "seed",
                        &[s.shape(), logits.shape()],
                        "the seed must have the logits' shape",
                    ));
                }
                data = s.data().to_vec();
            }
            Seed::Fn(f) => {
                let s = f(logits, targets)?;
                if s.shape() != logits.shape() {
                    return Err(Error::shape(
                        "seed",
                        &[s.shape(), logits.shape()],
                        "the seed must have the logits' shape",
                    ));
                }
                data = s.into_vec();
            }
        }
        if data.iter().any(|v| !v.is_finite()) {
            return Err(Error::invalid(
                "seed",
                "the seed is not finite (are the logits finite?)",
            ));
        }
        Ok(BuiltSeed {
            seed: Tensor::from_vec(data, &[n, c])?,
            notes,
        })
    }
}

/// Fills each row of an `[n, c]` seed from that row's logits and target.
fn per_row(
    z: &[f32],
    c: usize,
    targets: &[usize],
    f: impl Fn(&[f32], usize, &mut [f32]),
) -> Vec<f32> {
    let mut data = vec![0.0f32; z.len()];
    for ((out, row), &t) in data.chunks_mut(c).zip(z.chunks(c)).zip(targets) {
        f(row, t, out);
    }
    data
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logits() -> Tensor {
        Tensor::from_vec(vec![1.0, 2.0, 0.5, 3.0, -1.0, 0.0], &[2, 3]).unwrap()
    }

    #[test]
    fn seeds_match_their_formulas() {
        let t = [1, 0];
        let s = Seed::OneHot.build(&logits(), &t).unwrap().seed;
        assert_eq!(s.data(), &[0.0, 1.0, 0.0, 1.0, 0.0, 0.0]);
        let s = Seed::TargetScore.build(&logits(), &t).unwrap().seed;
        assert_eq!(s.data(), &[0.0, 2.0, 0.0, 3.0, 0.0, 0.0]);
        let s = Seed::Clrp1.build(&logits(), &t).unwrap().seed;
        assert_eq!(s.data(), &[-1.0, 2.0, -1.0, 3.0, -1.5, -1.5]);
        // SGLRP seed: y_t (delta - y) sums to 0 and is positive only at the target.
        let s = Seed::SoftmaxGradient.build(&logits(), &t).unwrap().seed;
        for row in s.data().chunks(3) {
            assert!(row.iter().sum::<f32>().abs() < 1e-6);
        }
        assert!(s.data()[1] > 0.0 && s.data()[0] < 0.0 && s.data()[2] < 0.0);
    }

    #[test]
    fn saturated_softmax_gives_a_zero_seed_and_a_note() {
        let z = Tensor::from_vec(vec![200.0, 0.0, 0.0], &[1, 3]).unwrap();
        let b = Seed::SoftmaxGradient.build(&z, &[0]).unwrap();
        assert!(b.seed.data().iter().all(|&v| v == 0.0));
        assert_eq!(b.notes.len(), 1);
    }

    #[test]
    fn targets_are_checked() {
        assert_eq!(Targets::Argmax.resolve(&logits()).unwrap(), vec![1, 0]);
        assert!(Targets::Class(3).resolve(&logits()).is_err());
        assert!(Targets::PerSample(vec![0]).resolve(&logits()).is_err());
    }
}
