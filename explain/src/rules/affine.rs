//! The one recipe every affine LRP rule follows, written once.
//!
//! For a layer `z = W x + b` (linear or conv) and the relevance `R` at its output:
//! 1. **modify** the input and the parameters (one set of modifications per *branch*),
//! 2. **recompute z** for each branch with the layer's own kernel,
//! 3. **divide** `R` by the stabilised sum of the branches' z (per *group* of branches),
//! 4. take the **vector-Jacobian product** of each branch (the layer's own input gradient),
//! 5. **multiply by the (modified) input** of the branch,
//! 6. **sum** over branches, each group weighted by its coefficient.
//!
//! LRP-0, Epsilon, ZPlus, AlphaBeta, Gamma, ZBox, WSquare and Flat are all configurations
//! of [`BasicRule`]; see `rules::family` for them.

use relprop_core::{Conv2dSpec, Error, NodeId, Op, Result, Rule, Tape, Tensor};
use std::cell::OnceCell;
use std::sync::Arc;

/// `v + eps * sign(v)` with `sign(0) = +1`: keeps a denominator away from 0, as Zennit does.
pub fn stabilize(v: &Tensor, eps: f32) -> Tensor {
    v.map(|z| if z >= 0.0 { z + eps } else { z - eps })
}

/// How a branch modifies the layer input `x`.
#[derive(Clone)]
pub enum InputMod {
    /// `x` itself.
    Identity,
    /// `max(x, 0)`.
    Positive,
    /// `min(x, 0)`.
    Negative,
    /// All ones (WSquare, Flat: the input is ignored).
    Ones,
    /// A fixed tensor broadcast over the batch: a scalar, or one sample's shape (ZBox bounds).
    Fill(Tensor),
    /// Anything else.
    Custom(Arc<dyn Fn(&Tensor) -> Tensor + Send + Sync>),
}

/// How a branch modifies a parameter (weight or bias).
#[derive(Clone)]
pub enum ParamMod {
    /// Unchanged.
    Identity,
    /// `max(p, 0)`.
    Positive,
    /// `min(p, 0)`.
    Negative,
    /// All zeros (for a bias: no bias).
    Zero,
    /// All ones.
    Ones,
    /// `p^2`.
    Square,
    /// `p + gamma * max(p, 0)` (`positive`) or `p + gamma * min(p, 0)`.
    Gamma {
        /// Weight of the added part.
        gamma: f32,
        /// Add the positive (true) or the negative (false) part.
        positive: bool,
    },
    /// Anything else.
    Custom(Arc<dyn Fn(&Tensor) -> Tensor + Send + Sync>),
}

impl ParamMod {
    /// Applies the modification (`None` when the result is all zeros and can be skipped).
    fn apply(&self, p: &Tensor) -> Option<Tensor> {
        Some(match self {
            ParamMod::Identity => p.clone(),
            ParamMod::Positive => p.relu(),
            ParamMod::Negative => p.neg_part(),
            ParamMod::Zero => return None,
            ParamMod::Ones => Tensor::ones(p.shape()),
            ParamMod::Square => p.square(),
            ParamMod::Gamma { gamma, positive } => {
                let g = *gamma;
                if *positive {
                    p.map(|v| v + g * v.max(0.0))
                } else {
                    p.map(|v| v + g * v.min(0.0))
                }
            }
            ParamMod::Custom(f) => f(p),
        })
    }
}

/// One modified copy of the layer: its input, weight and bias modifications, and whether
/// it is added or subtracted (ZBox subtracts its bound branches).
#[derive(Clone)]
pub struct Branch {
    /// Input modification.
    pub input: InputMod,
    /// Weight modification.
    pub weight: ParamMod,
    /// Bias modification.
    pub bias: ParamMod,
    /// `+1` or `-1`: the sign of this branch in both the denominator and the result.
    pub sign: f32,
}

impl Branch {
    /// A branch with sign `+1`.
    pub fn new(input: InputMod, weight: ParamMod, bias: ParamMod) -> Self {
        Branch {
            input,
            weight,
            bias,
            sign: 1.0,
        }
    }

    /// The same branch, subtracted.
    pub fn negated(mut self) -> Self {
        self.sign = -self.sign;
        self
    }
}

/// Which outputs a group of branches explains (Gamma splits by the sign of the output).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gate {
    /// Every output.
    All,
    /// Outputs whose original pre-activation is positive.
    OutputPositive,
    /// Outputs whose original pre-activation is negative.
    OutputNegative,
}

/// Branches sharing one denominator, weighted by a coefficient in the result.
#[derive(Clone)]
pub struct Group {
    /// The branches whose z are summed into the denominator.
    pub branches: Vec<Branch>,
    /// Coefficient of this group's relevance (AlphaBeta: `alpha` and `-beta`).
    pub coefficient: f32,
    /// Which outputs the group explains.
    pub gate: Gate,
    /// Stabiliser epsilon of the denominator.
    pub epsilon: f32,
}

/// An affine LRP rule as data: groups of modified branches (see the module docs).
#[derive(Clone)]
pub struct BasicRule {
    /// Name shown in audits, e.g. `epsilon(1e-6)`.
    pub name: String,
    /// The groups whose results are summed.
    pub groups: Vec<Group>,
}

/// The parts of an affine node (linear or conv) that the recipe needs.
pub struct Affine<'a> {
    tape: &'a Tape,
    x_id: NodeId,
    x: &'a Tensor,
    w: &'a Tensor,
    b: Option<&'a Tensor>,
    out: &'a Tensor,
    conv: Option<Conv2dSpec>,
    /// Whether `x >= 0` everywhere, found once per layer (every sign-split branch asks).
    nonnegative: OnceCell<bool>,
}

impl<'a> Affine<'a> {
    /// Reads node `id`, which must be a `linear` or `conv2d` node.
    pub fn of(tape: &'a Tape, id: NodeId) -> Result<Self> {
        let node = tape.node(id)?;
        let (x, w, b, conv) = match &node.op {
            Op::Linear { x, w, b } => (*x, *w, *b, None),
            Op::Conv2d { x, w, b, spec } => (*x, *w, *b, Some(*spec)),
            _ => {
                return Err(Error::Backward {
                    op: node.describe(),
                    reason: "this rule applies to linear and conv2d layers only".into(),
                })
            }
        };
        Ok(Affine {
            tape,
            x_id: x,
            x: tape.value(x)?,
            w: tape.value(w)?,
            b: b.map(|b| tape.value(b)).transpose()?,
            out: &node.value,
            conv,
            nonnegative: OnceCell::new(),
        })
    }

    /// The layer input.
    pub fn input(&self) -> &Tensor {
        self.x
    }

    /// The layer weight.
    pub fn weight(&self) -> &Tensor {
        self.w
    }

    /// The recorded output `z = W x + b`.
    pub fn output(&self) -> &Tensor {
        self.out
    }

    /// The layer's forward kernel with other parameters.
    pub fn forward(&self, x: &Tensor, w: &Tensor, b: Option<&Tensor>) -> Result<Tensor> {
        match &self.conv {
            Some(spec) => x.conv2d(w, b, spec),
            None => x.linear(w, b),
        }
    }

    /// `z` of a branch whose input or weight is all zeros: the bias on every output of one
    /// sample, shape `[1, ...]` (the same for every sample, so it is broadcast over the
    /// batch where it is used rather than written out for each sample).
    pub(super) fn bias_only(&self, b: &Tensor) -> Result<Tensor> {
        let shape = self.out.shape();
        if shape.len() < 2 || b.numel() != shape[1] {
            return Err(Error::shape(
                "lrp bias",
                &[b.shape(), shape],
                "the bias must have one value per output channel",
            ));
        }
        let per_channel: usize = shape[2..].iter().product();
        let mut data = Vec::with_capacity(b.numel() * per_channel);
        for &v in b.data() {
            data.resize(data.len() + per_channel, v);
        }
        let mut one = shape.to_vec();
        one[0] = 1;
        Tensor::from_vec(data, &one)
    }

    /// The layer's input VJP `J_W^T(g)` with weight `w`.
    pub fn vjp(&self, g: &Tensor, w: &Tensor) -> Result<Tensor> {
        match &self.conv {
            Some(spec) => Tensor::conv2d_input_grad(g, w, self.x.shape(), spec),
            None => g.matmul(w),
        }
    }

    /// The modified input of a branch (`None` when it is all zeros).
    fn modified_input(&self, m: &InputMod) -> Result<Option<Tensor>> {
        let x = self.x;
        // After a ReLU the input is non-negative: x+ is x itself (shared, not copied)
        // and the x- branch is empty, which halves ZPlus and AlphaBeta.
        let sign_split = matches!(m, InputMod::Positive | InputMod::Negative);
        if sign_split
            && *self
                .nonnegative
                .get_or_init(|| x.data().iter().all(|&v| v >= 0.0))
        {
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

/// Broadcasts a scalar or one sample's worth of values over the batch of `x`.
fn fill_like(v: &Tensor, x: &Tensor) -> Result<Tensor> {
    let per_sample: usize = x.shape()[1..].iter().product();
    let shaped = if v.numel() == 1 {
        Tensor::full(x.shape(), v.data()[0])
    } else if v.numel() == per_sample {
        let mut one = x.shape().to_vec();
        one[0] = 1;
        v.reshape(&one)?.broadcast_to(x.shape())?
    } else {
        return Err(Error::shape(
            "zbox bounds",
            &[v.shape(), x.shape()],
            "bounds must be a scalar or one input sample's shape",
        ));
    };
    Ok(shaped)
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
    /// Applies the recipe to affine node `id` with output relevance `r`.
    pub fn relevance(&self, tape: &Tape, id: NodeId, r: &Tensor) -> Result<Tensor> {
        let layer = Affine::of(tape, id)?;
        let mut total: Option<Tensor> = None;
        for group in &self.groups {
            group.add_relevance(&layer, r, &mut total)?;
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
        let live = self.live_branches(layer)?;
        if live.is_empty() {
            return Ok(());
        }
        let eps = self.epsilon;
        // eps = 0 is LRP-0: there 0/0 is taken as 0, matching the ReLU derivative at 0.
        let divide = move |r: f32, z: f32| match (eps == 0.0, z == 0.0) {
            (true, true) => 0.0,
            _ => r / if z >= 0.0 { z + eps } else { z - eps },
        };
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
        let s = match self.gate {
            Gate::All => ratio,
            Gate::OutputPositive | Gate::OutputNegative => {
                let keep_positive = self.gate == Gate::OutputPositive;
                ratio.zip_with(layer.out, "lrp gate", |s, o| {
                    if (o > 0.0) == keep_positive && o != 0.0 {
                        s
                    } else {
                        0.0
                    }
                })?
            }
        };
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

impl Rule for BasicRule {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn absorbed(&self, tape: &Tape, id: NodeId, signal: &Tensor) -> Result<Option<Vec<f64>>> {
        BasicRule::absorbed(self, tape, id, signal).map(Some)
    }

    fn backward(&self, tape: &Tape, id: NodeId, signal: &Tensor) -> Result<Vec<Option<Tensor>>> {
        let r = self.relevance(tape, id, signal)?;
        // Relevance flows to the layer input only, never to weights or bias.
        let n_inputs = tape.node(id)?.op.inputs().len();
        let mut out = vec![None; n_inputs];
        out[0] = Some(r);
        Ok(out)
    }
}
