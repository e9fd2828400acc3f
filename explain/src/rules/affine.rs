//! The one recipe every affine LRP rule follows: **start reading here** for LRP.
//!
//! # The rule, for one layer
//!
//! Take an affine layer (linear or conv) `z_j = sum_i x_i w_ij + b_j`, and the relevance
//! `R_j` that reached its outputs. LRP (Bach et al. 2015, "On Pixel-Wise Explanations for
//! Non-Linear Classifier Decisions by Layer-Wise Relevance Propagation", PLoS ONE) hands
//! each output's relevance back to the inputs in proportion to their contributions
//! `x_i w_ij`. The basic rule, LRP-epsilon (Montavon et al. 2019, "Layer-wise Relevance
//! Propagation: An Overview", eq. 4-5), is
//!
//! ```text
//! R_i = sum_j  x_i w_ij / stab(z_j) * R_j,      stab(z) = z + eps * sign(z),  sign(0) = +1
//! ```
//!
//! # Why `x * VJP(R / z)` is that formula
//!
//! Split the sum into four steps. With `s_j = R_j / stab(z_j)` (one number per output),
//! `R_i = x_i * sum_j w_ij s_j`. The inner sum `c_i = sum_j w_ij s_j` is `(W^T s)_i`: the
//! vector-Jacobian product of the layer, because `d z_j / d x_i = w_ij`. So
//!
//! ```text
//! z = layer(x)            (the forward pass; recorded already)
//! s = R / stab(z)         (elementwise)
//! c = VJP_layer(s)        (= W^T s: exactly what backpropagation computes for a gradient)
//! R_in = x * c            (elementwise)
//! ```
//!
//! and a convolution needs no second kernel: its VJP is the transposed convolution the
//! gradient already uses. The other rules change only *what goes into* these four lines:
//! a modified input (`x+ = max(x, 0)`, a bound, ones), modified parameters (`W+`, `W^2`,
//! ones), several such *branches* whose z are summed in the denominator, and a
//! coefficient per group of branches (AlphaBeta). See [`super::family`] for each rule as a
//! configuration of [`BasicRule`].
//!
//! In full, for each [`Group`] of [`Branch`]es with modified `x'_b, W'_b, b'_b` and sign
//! `sigma_b` (+1, or -1 for ZBox's subtracted bounds):
//!
//! 1. **modify**: `x'_b`, `W'_b`, `b'_b`;
//! 2. **z**: `z = sum_b sigma_b (W'_b x'_b + b'_b)`;
//! 3. **divide**: `s = R / stab(z)` (kept only on the group's [`Gate`]d outputs);
//! 4. **VJP**: `c_b = W'_b^T s`;
//! 5. **multiply**: `R_b = x'_b * c_b`;
//! 6. **sum**: `R_in += coefficient * sum_b sigma_b R_b`.
//!
//! [`Group::reference_relevance`] is exactly these six steps, in about 40 lines. The
//! default path ([`BasicRule::relevance`]) computes the same numbers faster (the `fast`
//! module beside this one: skipped empty branches, the recorded z, fused conv kernels);
//! the property test `tests/conservation_props/reference.rs` holds the two equal on every
//! rule, layer kind and composite, and [`crate::Composite::path`] selects either at run
//! time.
//!
//! # Why it conserves
//!
//! For one branch, `sum_i x'_i (W'^T s)_i = s . (W' x') = s . (z' - b')`. Summed over a
//! group's branches: `sum_i R_in,i = s . z - s . b`, and `s . z = sum_j R_j z_j /
//! stab(z_j)`, which is `sum_j R_j` up to the stabiliser. So the input receives all of the
//! output's relevance except (a) the bias's share `s . b` and (b) what the stabiliser keeps,
//! `R_j eps / (|z_j| + eps)`, large only where `z_j` is near 0. With no bias and `eps -> 0`
//! the rule conserves exactly: `sum_i R_i = sum_j R_j`. AlphaBeta's groups weigh `alpha` and
//! `-beta`, which sum to 1 when `alpha - beta = 1`. [`BasicRule::absorbed`] computes (a) +
//! (b) so that `relprop verify` can tell absorption by design from a leak.

use relprop_core::{Conv2dSpec, Error, NodeId, Op, Result, Rule, Tape, Tensor};
use std::cell::OnceCell;
use std::sync::Arc;

/// `v + eps * sign(v)` with `sign(0) = +1`: keeps a denominator away from 0, as Zennit does.
pub fn stabilize(v: &Tensor, eps: f32) -> Tensor {
    v.map(|z| if z >= 0.0 { z + eps } else { z - eps })
}

/// `r / (z + eps sign(z))`; with `eps = 0` (LRP-0) `0 / 0` is taken as 0, matching the ReLU
/// derivative at 0.
pub(super) fn divide_stabilised(r: f32, z: f32, eps: f32) -> f32 {
    match (eps == 0.0, z == 0.0) {
        (true, true) => 0.0,
        _ => r / if z >= 0.0 { z + eps } else { z - eps },
    }
}

/// How a group's denominator is kept away from zero: step 3's `stab(z)`.
#[derive(Clone)]
pub enum Stabilizer {
    /// `z + eps sign(z)`, `sign(0) = +1` (every built-in rule).
    Epsilon(f32),
    /// `z + eps * rms(z) * sign(z)`, with `rms(z)` the root mean square of one sample's
    /// `z` (Zennit's `Stabilizer(epsilon, norm_scale=True)`): `eps` becomes relative to the
    /// layer's scale, so one setting suits layers of very different magnitude.
    NormScale(f32),
    /// Any function of a whole `z` (every sample) to its stabilised denominator, of the
    /// same shape; a zero denominator gives a zero ratio.
    Custom(Arc<dyn Fn(&Tensor) -> Tensor + Send + Sync>),
}

impl Stabilizer {
    /// Step 3: `s = R / stab(z)` (`z` may be one sample, `[1, ...]`, broadcast over `r`).
    pub fn ratio(&self, r: &Tensor, z: &Tensor) -> Result<Tensor> {
        match self {
            Stabilizer::Epsilon(eps) => {
                let eps = *eps;
                r.zip_with(z, "lrp", move |r, z| divide_stabilised(r, z, eps))
            }
            Stabilizer::NormScale(eps) => {
                let z = z.broadcast_to(r.shape())?;
                let n = z.shape().first().copied().unwrap_or(1).max(1);
                let per = (z.numel() / n).max(1);
                let mut s = Vec::with_capacity(z.numel());
                for (zs, rs) in z.data().chunks(per).zip(r.data().chunks(per)) {
                    let mean_square =
                        zs.iter().map(|&v| (v as f64).powi(2)).sum::<f64>() / per as f64;
                    let e = eps * mean_square.sqrt() as f32;
                    s.extend(zs.iter().zip(rs).map(|(&z, &r)| divide_stabilised(r, z, e)));
                }
                Tensor::from_vec(s, r.shape())
            }
            Stabilizer::Custom(f) => {
                let d = f(&z.broadcast_to(r.shape())?);
                r.zip_with(
                    &d,
                    "lrp stabilizer",
                    |r, d| if d == 0.0 { 0.0 } else { r / d },
                )
            }
        }
    }
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
    pub(super) fn apply(&self, p: &Tensor) -> Option<Tensor> {
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

impl Gate {
    /// `s` with the outputs this gate does not explain set to 0 (`out`: the recorded z).
    pub(super) fn apply(self, s: Tensor, out: &Tensor) -> Result<Tensor> {
        if self == Gate::All {
            return Ok(s);
        }
        let keep_positive = self == Gate::OutputPositive;
        s.zip_with(out, "lrp gate", move |s, o| {
            if (o > 0.0) == keep_positive && o != 0.0 {
                s
            } else {
                0.0
            }
        })
    }
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
    /// How the denominator is stabilised.
    pub stabilizer: Stabilizer,
}

impl Group {
    /// One group of `branches`: coefficient 1, every output, `Stabilizer::Epsilon(1e-6)`.
    pub fn new(branches: Vec<Branch>) -> Self {
        Group {
            branches,
            coefficient: 1.0,
            gate: Gate::All,
            stabilizer: Stabilizer::Epsilon(super::family::STABILIZER),
        }
    }

    /// The same group with another stabiliser.
    pub fn with_stabilizer(mut self, stabilizer: Stabilizer) -> Self {
        self.stabilizer = stabilizer;
        self
    }

    /// The reference recipe for this group: steps 1-6 of the module docs, nothing skipped.
    pub fn reference_relevance(&self, layer: &Affine, r: &Tensor) -> Result<Tensor> {
        // 1-2. Modify each branch and sum the branches' z.
        let mut modified = Vec::with_capacity(self.branches.len());
        let mut z = Tensor::zeros(layer.output().shape());
        for branch in &self.branches {
            let x = layer.plain_input(&branch.input)?;
            let w = branch.weight.apply(layer.weight());
            let w = w.unwrap_or_else(|| Tensor::zeros(layer.weight().shape()));
            let b = layer.bias().and_then(|b| branch.bias.apply(b));
            let zb = layer.forward(&x, &w, b.as_ref())?;
            z = z.add(&zb.mul_scalar(branch.sign))?;
            modified.push((x, w, branch.sign));
        }
        // 3. Divide, on the outputs this group explains.
        let s = self
            .gate
            .apply(self.stabilizer.ratio(r, &z)?, layer.output())?;
        // 4-6. VJP per branch, times its input, signed and weighted, summed.
        let mut total = Tensor::zeros(layer.input().shape());
        for (x, w, sign) in modified {
            let c = layer.vjp(&s, &w)?;
            total = total.add(&x.mul(&c)?.mul_scalar(sign * self.coefficient))?;
        }
        Ok(total)
    }
}

/// An affine LRP rule as data: groups of modified branches (see the module docs).
#[derive(Clone)]
pub struct BasicRule {
    /// Name shown in audits, e.g. `epsilon(1e-6)`.
    pub name: String,
    /// The groups whose results are summed.
    pub groups: Vec<Group>,
}

impl BasicRule {
    /// A rule made of `groups` (see [`super::family`] for the built-in configurations).
    pub fn new(name: impl Into<String>, groups: Vec<Group>) -> Self {
        BasicRule {
            name: name.into(),
            groups,
        }
    }

    /// The reference recipe: the sum of every group's
    /// [`Group::reference_relevance`]. The definition the fast path is tested against.
    pub fn reference_relevance(&self, layer: &Affine, r: &Tensor) -> Result<Tensor> {
        check_relevance_shape(layer, r)?;
        let mut total = Tensor::zeros(layer.input().shape());
        for group in &self.groups {
            total = total.add(&group.reference_relevance(layer, r)?)?;
        }
        Ok(total)
    }

    /// Applies the recipe to affine node `id` with output relevance `r` (the fast path).
    pub fn relevance(&self, tape: &Tape, id: NodeId, r: &Tensor) -> Result<Tensor> {
        let layer = Affine::of(tape, id)?;
        check_relevance_shape(&layer, r)?;
        self.fast_relevance(&layer, r)
    }

    /// The same rule computed by the reference recipe: a [`Rule`] of its own.
    pub fn reference(self) -> Reference {
        Reference(self)
    }
}

fn check_relevance_shape(layer: &Affine, r: &Tensor) -> Result<()> {
    if r.shape() != layer.output().shape() {
        return Err(Error::shape(
            "lrp",
            &[r.shape(), layer.output().shape()],
            "the relevance must have the layer output's shape",
        ));
    }
    Ok(())
}

/// The parts of an affine node (linear or conv) that the recipe needs.
pub struct Affine<'a> {
    pub(super) tape: &'a Tape,
    pub(super) x_id: NodeId,
    pub(super) x: &'a Tensor,
    pub(super) w: &'a Tensor,
    pub(super) b: Option<&'a Tensor>,
    pub(super) out: &'a Tensor,
    pub(super) conv: Option<Conv2dSpec>,
    /// Whether `x >= 0` everywhere, found once per layer (every sign-split branch asks).
    pub(super) nonnegative: OnceCell<bool>,
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

    /// The layer bias, if it has one.
    pub fn bias(&self) -> Option<&Tensor> {
        self.b
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

    /// A branch's modified input, computed in full (the reference path). ZBox bounds are
    /// given for the raw input and carried through an in-graph normalisation first.
    pub fn plain_input(&self, m: &InputMod) -> Result<Tensor> {
        let x = self.x;
        Ok(match m {
            InputMod::Identity => x.clone(),
            InputMod::Positive => x.relu(),
            InputMod::Negative => x.neg_part(),
            InputMod::Ones => Tensor::ones(x.shape()),
            InputMod::Fill(v) => fill_like(&super::bounds::bound_at(self.tape, self.x_id, v)?, x)?,
            InputMod::Custom(f) => f(x),
        })
    }
}

/// Broadcasts a scalar or one sample's worth of values over the batch of `x`.
pub(super) fn fill_like(v: &Tensor, x: &Tensor) -> Result<Tensor> {
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

/// A [`BasicRule`] computed by its reference recipe ([`BasicRule::reference_relevance`]):
/// slower, and the definition the fast path must match.
#[derive(Clone)]
pub struct Reference(pub BasicRule);

impl Rule for Reference {
    fn name(&self) -> String {
        self.0.name.clone()
    }

    fn absorbed(&self, tape: &Tape, id: NodeId, signal: &Tensor) -> Result<Option<Vec<f64>>> {
        self.0.absorbed(tape, id, signal).map(Some)
    }

    fn backward(&self, tape: &Tape, id: NodeId, signal: &Tensor) -> Result<Vec<Option<Tensor>>> {
        let layer = Affine::of(tape, id)?;
        to_input(tape, id, self.0.reference_relevance(&layer, signal)?)
    }
}

/// Relevance flows to the layer input only, never to weights or bias.
fn to_input(tape: &Tape, id: NodeId, r: Tensor) -> Result<Vec<Option<Tensor>>> {
    let mut out = vec![None; tape.node(id)?.op.inputs().len()];
    out[0] = Some(r);
    Ok(out)
}

impl Rule for BasicRule {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn absorbed(&self, tape: &Tape, id: NodeId, signal: &Tensor) -> Result<Option<Vec<f64>>> {
        BasicRule::absorbed(self, tape, id, signal).map(Some)
    }

    fn backward(&self, tape: &Tape, id: NodeId, signal: &Tensor) -> Result<Vec<Option<Tensor>>> {
        to_input(tape, id, self.relevance(tape, id, signal)?)
    }
}
