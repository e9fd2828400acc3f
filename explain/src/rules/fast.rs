//! The fast paths of the affine recipe: optimisations of
//! [`BasicRule::reference_relevance`](super::affine::BasicRule::reference_relevance), which
//! is the definition. Each shortcut computes the same numbers by doing less work; the
//! property test `tests/conservation_props/reference.rs` checks them against the reference
//! on every rule, layer kind and composite.
//!
//! - **Skipped branches.** After a ReLU, `x+` is `x` itself (no copy) and the `x-` branch is
//!   empty; a branch whose input or weight is all zeros contributes its bias to `z` and
//!   nothing to the result, so it needs no convolution and no VJP; a zero bound (ZBox's
//!   usual `low = 0`) is such a branch.
//! - **The recorded z.** An unmodified branch's `z` is the recorded output: no second
//!   forward pass.
//! - **One-sample constants.** A branch whose `z` is the same for every sample (a bound
//!   shared by the batch, a bias alone) is computed for one sample and broadcast.
//! - **Fused conv kernel.** One modified conv branch explaining every output (ZPlus after a
//!   ReLU, each AlphaBeta group, Gamma) runs steps 2-5 as one kernel, a sample at a time,
//!   with one im2col buffer for both products.
//! - **Per-sample conv pass.** A conv rule whose every `z` is the recorded output or a
//!   one-sample constant (LRP-0, Epsilon, ZBox) forms each sample's ratio and VJPs in the
//!   cache, never a batch-sized `z` or ratio.

use super::affine::{
    divide_stabilised, fill_like, Affine, BasicRule, Gate, Group, InputMod, ParamMod, Stabilizer,
};
use relprop_core::{Error, Result, Tensor};

impl Affine<'_> {
    /// The modified input of a branch (`None` when it is all zeros).
    pub(super) fn modified_input(&self, m: &InputMod) -> Result<Option<Tensor>> {
        let x = self.x;
        // After a ReLU the input is non-negative: x+ is x itself (shared, not copied)
        // and the x- branch is empty, which halves ZPlus and AlphaBeta.
        let sign_split = matches!(m, InputMod::Positive | InputMod::Negative);
        if sign_split && *self.nonnegative.get_or_init(|| x.all_nonnegative()) {
            let positive = matches!(m, InputMod::Positive);
            let empty = !positive || x.data().iter().all(|&v| v == 0.0);
            return Ok((!empty).then(|| x.clone()));
        }
        // Bounds are given for the raw input: carried through a normalisation first.
        let mapped;
        let m = match m {
            InputMod::Fill(v) => {
                mapped = InputMod::Fill(super::bounds::bound_at(self.tape, self.x_id, v)?);
                &mapped
            }
            other => other,
        };
        // A zero bound (ZBox's usual low = 0) makes an empty branch: nothing to compute.
        if let InputMod::Fill(v) = m {
            if v.data().iter().all(|&e| e == 0.0) {
                return Ok(None);
            }
        }
        let t = match m {
            InputMod::Identity => x.clone(),
            InputMod::Positive => x.relu(),
            InputMod::Negative => x.neg_part(),
            InputMod::Ones => Tensor::ones(x.shape()),
            InputMod::Fill(v) => fill_like(v, x)?,
            InputMod::Custom(f) => f(x),
        };
        let zero = sign_split && t.data().iter().all(|&v| v == 0.0);
        Ok((!zero).then_some(t))
    }
}

/// One branch's `z`: the recorded output itself, or computed (a whole batch, or one
/// sample's `[1, ...]` when it is the same for every sample).
pub(super) enum ZPart {
    Recorded,
    Computed(Tensor),
}

impl ZPart {
    /// Whether a sample's values can be read without a batch-sized tensor (the recorded
    /// output, or a one-sample constant).
    fn per_sample_ok(&self) -> bool {
        match self {
            ZPart::Recorded => true,
            ZPart::Computed(t) => t.shape().first() == Some(&1),
        }
    }
}

impl Affine<'_> {
    /// Writes sample `i`'s ratio `divide(r, z)` where `z` sums `parts` in order (the first
    /// negated if subtracted, then added or subtracted): the per-sample form of steps 2-3.
    fn ratio_of_sample<'p>(
        &'p self,
        r: &'p Tensor,
        parts: &'p [(f32, ZPart)],
        divide: impl Fn(f32, f32) -> f32 + Sync + Send + 'p,
    ) -> Result<impl Fn(usize, &mut [f32]) + Sync + Send + 'p> {
        if r.shape() != self.out.shape() {
            return Err(Error::shape(
                "lrp",
                &[r.shape(), self.out.shape()],
                "the relevance must have the layer output's shape",
            ));
        }
        let o_sz = self.out.numel() / self.out.shape()[0].max(1);
        let (out, r) = (self.out.data(), r.data());
        Ok(move |i: usize, s: &mut [f32]| {
            for (k, (sign, part)) in parts.iter().enumerate() {
                let v = match part {
                    ZPart::Recorded => &out[i * o_sz..(i + 1) * o_sz],
                    ZPart::Computed(t) => t.data(),
                };
                let each = s.iter_mut().zip(v);
                match (k, *sign < 0.0) {
                    (0, false) => each.for_each(|(s, &v)| *s = v),
                    (0, true) => each.for_each(|(s, &v)| *s = -v),
                    (_, false) => each.for_each(|(s, &v)| *s += v),
                    (_, true) => each.for_each(|(s, &v)| *s -= v),
                }
            }
            let r_n = &r[i * o_sz..(i + 1) * o_sz];
            s.iter_mut().zip(r_n).for_each(|(s, &r)| *s = divide(r, *s));
        })
    }
}

/// A branch that contributes to a layer's relevance: its modified input and weight
/// (`None` when either is all zeros: then z is its bias alone), and its bias.
pub(super) struct LiveBranch {
    xw: Option<(Tensor, Tensor)>,
    pub(super) b: Option<Tensor>,
    pub(super) sign: f32,
    unmodified: bool,
    /// The input is the same for every sample (a fill).
    same_input: bool,
}

impl BasicRule {
    /// The recipe with every shortcut below: the same relevance as
    /// [`BasicRule::reference_relevance`], up to the order of floating-point sums.
    pub(super) fn fast_relevance(&self, layer: &Affine, r: &Tensor) -> Result<Tensor> {
        let mut total: Option<Tensor> = None;
        for group in &self.groups {
            group.add_relevance(layer, r, &mut total)?;
        }
        Ok(total.unwrap_or_else(|| Tensor::zeros(layer.x.shape())))
    }
}

/// `total += contribution`, the first contribution starting the sum.
fn add_to(total: &mut Option<Tensor>, contribution: Tensor) -> Result<()> {
    *total = Some(match total.take() {
        Some(acc) => acc.add(&contribution)?,
        None => contribution,
    });
    Ok(())
}

impl Group {
    /// Step 1: the modified input, weight and bias of every branch that can contribute.
    pub(super) fn live_branches(&self, layer: &Affine) -> Result<Vec<LiveBranch>> {
        let mut live = Vec::new();
        for br in &self.branches {
            let b = layer.b.and_then(|b| br.bias.apply(b));
            // A branch whose input or weight is all zeros contributes only its bias to
            // z, and nothing to the result: skip it when it has no bias either. (Keeping
            // the bias keeps each sample's map independent of the rest of the batch.)
            let x = layer.modified_input(&br.input)?;
            if x.is_none() && b.is_none() {
                continue; // checked first: modifying a large weight costs more than the test
            }
            let w = br.weight.apply(layer.w);
            // With an all-zero input or weight, z is the bias alone and the branch
            // passes nothing on: no convolution, no VJP.
            let xw = match (x, w) {
                (Some(x), Some(w)) => Some((x, w)),
                _ if b.is_none() => continue,
                _ => None,
            };
            let unmodified = matches!(
                (&br.input, &br.weight, &br.bias),
                (InputMod::Identity, ParamMod::Identity, ParamMod::Identity)
            );
            live.push(LiveBranch {
                xw,
                b,
                sign: br.sign,
                unmodified,
                same_input: matches!(br.input, InputMod::Fill(_)),
            });
        }
        Ok(live)
    }

    /// Step 2: every live branch's z, in branch order (the plain branch's z is the recorded
    /// output: no second forward pass). A branch whose z is the same for every sample (a
    /// ZBox bound, a bias alone) keeps one sample's z, shape `[1, ...]`: writing it out for
    /// every sample cost more than the rest of a first-layer ZBox.
    pub(super) fn z_parts(layer: &Affine, live: &[LiveBranch]) -> Result<Vec<(f32, ZPart)>> {
        let n = layer.x.shape()[0];
        let mut parts = Vec::with_capacity(live.len());
        for br in live {
            let zb = match (&br.xw, &br.b) {
                _ if br.unmodified => ZPart::Recorded,
                (Some((x, w)), b) if br.same_input && layer.conv.is_some() && n > 1 => {
                    ZPart::Computed(layer.forward(&x.batch_range(0, 1)?, w, b.as_ref())?)
                }
                (Some((x, w)), b) => ZPart::Computed(layer.forward(x, w, b.as_ref())?),
                (None, Some(b)) => ZPart::Computed(layer.bias_only(b)?),
                (None, None) => continue, // not kept: see `live_branches`
            };
            parts.push((br.sign, zb));
        }
        Ok(parts)
    }

    /// Adds this group's relevance, branch by branch, to `total`.
    fn add_relevance(&self, layer: &Affine, r: &Tensor, total: &mut Option<Tensor>) -> Result<()> {
        // The shortcuts divide elementwise by `z + eps sign(z)`; a stabiliser that depends on
        // the whole of z (norm-scaled, custom) takes the reference path.
        let Stabilizer::Epsilon(eps) = self.stabilizer else {
            return add_to(total, self.reference_relevance(layer, r)?);
        };
        let live = self.live_branches(layer)?;
        if live.is_empty() {
            return Ok(());
        }
        let divide = move |r: f32, z: f32| divide_stabilised(r, z, eps);
        let conv = match (&layer.conv, self.gate) {
            (Some(spec), Gate::All) => Some(spec),
            _ => None,
        };
        // One modified conv branch explaining every output (ZPlus after a ReLU, each
        // AlphaBeta group, Gamma): steps 2-5 in one fused kernel, which recomputes z,
        // divides, takes the VJP and multiplies by the input a sample at a time.
        if let (Some(spec), [one]) = (conv, live.as_slice()) {
            if let (false, Some((x, w))) = (one.unmodified, &one.xw) {
                let (sign, factor) = (one.sign, one.sign * self.coefficient);
                let contribution =
                    x.conv2d_forward_map_backward(w, one.b.as_ref(), r, spec, move |r, z| {
                        factor * divide(r, sign * z)
                    })?;
                return add_to(total, contribution);
            }
        }
        let parts = Self::z_parts(layer, &live)?;
        if parts.is_empty() {
            return Ok(());
        }
        // Steps 2-6 a sample at a time on a conv whose every z is the recorded output or
        // one sample's constant (LRP-0, Epsilon, ZBox): the denominator, the ratio and the
        // VJPs of one sample stay in the cache, and no batch-sized z or ratio is stored.
        // Same arithmetic, in the same order, as the steps below.
        if let Some(spec) = conv.filter(|_| parts.iter().all(|(_, z)| z.per_sample_ok())) {
            let terms: Vec<(&Tensor, &Tensor, f32)> = live
                .iter()
                .filter_map(|br| {
                    let (x, w) = br.xw.as_ref()?;
                    Some((w, x, br.sign * self.coefficient))
                })
                .collect();
            if terms.is_empty() {
                return Ok(());
            }
            let s_of = layer.ratio_of_sample(r, &parts, divide)?;
            let contribution =
                Tensor::conv2d_weighted_input_grads(layer.x.shape(), spec, s_of, &terms)?;
            return add_to(total, contribution);
        }
        // Subtracted branches are subtracted in one pass (not negated, then added);
        // one-sample parts are broadcast over the batch.
        let mut z: Option<Tensor> = None;
        for (sign, part) in parts {
            let zb = match part {
                ZPart::Recorded => layer.out.clone(),
                ZPart::Computed(t) => t,
            };
            z = Some(match (z, sign < 0.0) {
                (Some(acc), false) => acc.add(&zb)?,
                (Some(acc), true) => acc.sub(&zb)?,
                (None, false) => zb,
                (None, true) => zb.neg(),
            });
        }
        let Some(z) = z else { return Ok(()) };
        // Step 3: divide by the stabilised z, keeping only the gated outputs.
        let ratio = r.zip_with(&z, "lrp", divide)?;
        let s = self.gate.apply(ratio, layer.out)?;
        // Steps 4-6: VJP per branch, times the branch input, signed, summed, weighted.
        for br in live {
            let Some((x, w)) = br.xw else { continue };
            let factor = br.sign * self.coefficient;
            add_to(
                total,
                x.zip_with(&layer.vjp(&s, &w)?, "lrp", move |x, g| x * g * factor)?,
            )?;
        }
        Ok(())
    }
}
