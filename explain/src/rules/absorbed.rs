//! What an affine rule hands to the layer's biases and stabilisers instead of its input.
//!
//! For one branch of the recipe, `sum_i x'_i (W'^T s)_i = s . (W' x') = s . (z' - b')`: the
//! input receives the ratio times the branch's z *without its bias*. Summed over a group's
//! branches, the input gets `s . z - s . b` where `s = R / stab(z)`, so what does not reach
//! it is the bias's share `s . b` and the stabiliser's `R - s . z` (large only where `z` is
//! near 0). A conserving configuration (group coefficients summing to 1 on every output)
//! loses nothing else; anything else it loses or creates is a leak. `relprop verify`
//! reports the absorbed part apart from the leak.

use super::affine::{Affine, BasicRule};
use super::fast::ZPart;
use crate::audit::per_sample_sums;
use relprop_core::{NodeId, Result, Tape, Tensor};

impl BasicRule {
    /// Per sample, the relevance this rule gives the biases and stabilisers of affine node
    /// `id` (for output relevance `r`) rather than its input.
    pub fn absorbed(&self, tape: &Tape, id: NodeId, r: &Tensor) -> Result<Vec<f64>> {
        let layer = Affine::of(tape, id)?;
        let n = r.shape().first().copied().unwrap_or(1);
        let mut total = vec![0.0f64; n];
        for group in &self.groups {
            let live = group.live_branches(&layer)?;
            if live.is_empty() {
                continue;
            }
            let mut z: Option<Tensor> = None;
            let mut b: Option<Tensor> = None;
            for (br, (sign, part)) in live
                .iter()
                .zip(super::affine::Group::z_parts(&layer, &live)?)
            {
                let zb = match part {
                    ZPart::Recorded => layer.output().clone(),
                    ZPart::Computed(t) => t,
                };
                let zb = if sign < 0.0 { zb.neg() } else { zb };
                z = Some(match z {
                    Some(acc) => acc.add(&zb)?,
                    None => zb,
                });
                if let Some(bias) = &br.b {
                    let one = layer.bias_only(bias)?.mul_scalar(br.sign);
                    b = Some(match b {
                        Some(acc) => acc.add(&one)?,
                        None => one,
                    });
                }
            }
            let Some(z) = z else { continue };
            let z = z.broadcast_to(layer.output().shape())?;
            let gated = group.gate.apply(r.clone(), layer.output())?;
            let s = group.stabilizer.ratio(&gated, &z)?;
            // Stabiliser: R - s z; bias: s b.
            let mut lost = gated.sub(&s.mul(&z)?)?;
            if let Some(b) = b {
                lost = lost.add(&s.mul(&b)?)?;
            }
            for (t, v) in total.iter_mut().zip(per_sample_sums(&lost)) {
                *t += group.coefficient as f64 * v;
            }
        }
        Ok(total)
    }
}
