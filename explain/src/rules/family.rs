//! The LRP rule family, each rule a configuration of the one recipe ([`BasicRule`]; read
//! [`super::affine`] first for the recipe and why it conserves).
//!
//! Notation, for an affine layer `z_j = sum_i x_i w_ij + b_j` with relevance `R_j` at its
//! outputs: `x+ = max(x, 0)`, `x- = min(x, 0)`, likewise `W+`, `W-`, `b+`, `b-`;
//! `stab(z) = z + eps sign(z)` with `sign(0) = +1` and `eps = 1e-6` ([`STABILIZER`]) unless
//! the rule says otherwise. The definitions are Zennit 1.0's (Anders et al., "Software for
//! Dataset-wide XAI: From Local Explanations to Global Insights with Zennit, CoRelAy, and
//! ViRelAy", 2021), which the reference fixtures of `tests/zennit_agreement.rs` are made
//! with; the rules themselves are from the papers cited on each. The survey to read is
//! Montavon, Binder, Lapuschkin, Samek and Müller, "Layer-wise Relevance Propagation: An
//! Overview", in *Explainable AI*, LNCS 11700, Springer 2019 (below: "the overview").
//!
//! | rule | `R_i =` | use it for |
//! |---|---|---|
//! | [LRP-0](BasicRule::zero) | `sum_j x_i w_ij / z_j R_j` | a baseline: equals gradient x input on ReLU nets |
//! | [Epsilon](BasicRule::epsilon) | `sum_j x_i w_ij / stab_e(z_j) R_j` | upper (dense) layers |
//! | [ZPlus](BasicRule::zplus) | positive contributions only | middle conv layers |
//! | [AlphaBeta](BasicRule::alpha_beta) | `alpha` positive minus `beta` negative | conv layers, with signed maps |
//! | [Gamma](BasicRule::gamma) | positive weights boosted by `gamma` | middle conv layers |
//! | [ZBox](BasicRule::zbox) | contributions measured from the input bounds | the first layer (pixels) |
//! | [WSquare](BasicRule::wsquare) | `w_ij^2 / sum_i w_ij^2` shares | the first layer, input-independent |
//! | [Flat](BasicRule::flat) | an even share of the receptive field | the first layer, coarse maps |

use super::affine::{BasicRule, Branch, Gate, Group, InputMod as I, ParamMod as P, Stabilizer};
use relprop_core::Tensor;

/// The default stabiliser `eps` of every rule but Epsilon.
pub const STABILIZER: f32 = 1e-6;

fn group(branches: Vec<Branch>, coefficient: f32) -> Group {
    Group {
        coefficient,
        ..Group::new(branches)
    }
}

/// `z+ = W+ x+ + W- x- + b+`: the positive contributions (the branches of ZPlus).
fn positive_part() -> Vec<Branch> {
    vec![
        Branch::new(I::Positive, P::Positive, P::Positive),
        Branch::new(I::Negative, P::Negative, P::Zero),
    ]
}

/// `z- = W- x+ + W+ x- + b-`: the negative contributions.
fn negative_part() -> Vec<Branch> {
    vec![
        Branch::new(I::Positive, P::Negative, P::Negative),
        Branch::new(I::Negative, P::Positive, P::Zero),
    ]
}

impl BasicRule {
    /// LRP-epsilon (the overview, section 10.2.2; Bach et al. 2015):
    ///
    /// ```text
    /// R_i = sum_j x_i w_ij / (z_j + eps sign(z_j)) * R_j
    /// ```
    ///
    /// One unmodified branch; the recipe is `x * W^T(R / stab(z))`. The `eps` absorbs
    /// some relevance where contributions are weak or contradictory (`z_j` near 0), so only
    /// salient explanation factors survive: maps are sparser and less noisy than LRP-0's.
    /// The overview recommends it for the upper layers (dense layers near the output); the
    /// built-in composites put it on every linear layer with `eps = 1e-6`.
    pub fn epsilon(epsilon: f32) -> Self {
        let g = Group::new(vec![Branch::new(I::Identity, P::Identity, P::Identity)])
            .with_stabilizer(Stabilizer::Epsilon(epsilon));
        BasicRule::new(format!("epsilon({epsilon})"), vec![g])
    }

    /// LRP-0 (Bach et al. 2015; the overview, section 10.2.1): Epsilon with `eps = 0`,
    ///
    /// ```text
    /// R_i = sum_j x_i w_ij / z_j * R_j        (0 / 0 taken as 0)
    /// ```
    ///
    /// It conserves exactly (up to the bias's share) and, on a ReLU network, equals gradient
    /// x input: faithful to the function but noisy, since it follows every local wiggle of
    /// the gradient. A baseline rather than a rule to use on its own.
    pub fn zero() -> Self {
        let mut rule = Self::epsilon(0.0);
        rule.name = "lrp-0".into();
        rule
    }

    /// ZPlus, the z+ rule of deep Taylor decomposition (Montavon et al. 2017, "Explaining
    /// nonlinear classification decisions with deep Taylor decomposition", Pattern
    /// Recognition 65) and LRP-alpha1-beta0 (Bach et al. 2015). With
    /// `z+_j = sum_i (x+_i w+_ij + x-_i w-_ij) + b+_j`, the positive contributions:
    ///
    /// ```text
    /// R_i = sum_j (x+_i w+_ij + x-_i w-_ij) / stab(z+_j) * R_j
    /// ```
    ///
    /// Only evidence *for* an output is followed, so relevance stays positive where `R` is
    /// and the maps are dense and stable. For middle conv layers (`epsilon-plus` puts it on
    /// every convolution). After a ReLU the input is non-negative: the first term alone.
    pub fn zplus() -> Self {
        BasicRule::new("zplus", vec![group(positive_part(), 1.0)])
    }

    /// LRP-alpha-beta (Bach et al. 2015; the overview, section 10.2.4). With the positive
    /// contributions `z+` (as in [`BasicRule::zplus`]) and the negative ones
    /// `z-_j = sum_i (x+_i w-_ij + x-_i w+_ij) + b-_j`:
    ///
    /// ```text
    /// R_i = sum_j [ alpha (x+_i w+_ij + x-_i w-_ij) / stab(z+_j)
    ///             - beta  (x+_i w-_ij + x-_i w+_ij) / stab(z-_j) ] * R_j
    /// ```
    ///
    /// Evidence for and against are explained apart, weighted by `alpha` and `beta`; with
    /// `alpha - beta = 1` the rule conserves. `alpha = 2, beta = 1` (Zennit's
    /// `EpsilonAlpha2Beta1`) gives signed maps on conv layers; `alpha = 1, beta = 0` is
    /// ZPlus.
    pub fn alpha_beta(alpha: f32, beta: f32) -> Self {
        BasicRule::new(
            format!("alpha{alpha}-beta{beta}"),
            vec![group(positive_part(), alpha), group(negative_part(), -beta)],
        )
    }

    /// LRP-gamma (the overview, section 10.2.3), in Zennit's sign-aware form. With
    /// `w^p = w + gamma w+` and `w^n = w + gamma w-` (and the bias likewise), outputs with
    /// `z_j > 0` are explained with positive contributions boosted,
    ///
    /// ```text
    /// R_i = sum_{j: z_j > 0} (x+_i w^p_ij + x-_i w^n_ij) / stab(z^p_j) * R_j
    ///     + sum_{j: z_j < 0} (x+_i w^n_ij + x-_i w^p_ij) / stab(z^n_j) * R_j
    /// ```
    ///
    /// with `z^p`, `z^n` the sums of those terms plus `b + gamma b+`, `b + gamma b-`. As
    /// `gamma` grows, the rule moves from LRP-0 (`gamma = 0`) towards ZPlus: more stable,
    /// less noisy maps that keep some negative evidence. For middle conv layers
    /// (`epsilon-gamma-box` uses `gamma = 0.25`).
    pub fn gamma(gamma: f32) -> Self {
        let wp = P::Gamma {
            gamma,
            positive: true,
        };
        let wn = P::Gamma {
            gamma,
            positive: false,
        };
        let up = Group {
            gate: Gate::OutputPositive,
            ..Group::new(vec![
                Branch::new(I::Positive, wp.clone(), wp.clone()),
                Branch::new(I::Negative, wn.clone(), P::Zero),
            ])
        };
        let down = Group {
            gate: Gate::OutputNegative,
            ..Group::new(vec![
                Branch::new(I::Positive, wn.clone(), wn),
                Branch::new(I::Negative, wp, P::Zero),
            ])
        };
        BasicRule::new(format!("gamma({gamma})"), vec![up, down])
    }

    /// The z^B rule of deep Taylor decomposition (Montavon et al. 2017; the overview,
    /// section 10.2.5) for inputs bounded by `l <= x <= h` (scalars, or one sample's shape):
    ///
    /// ```text
    /// R_i = sum_j (x_i w_ij - l_i w+_ij - h_i w-_ij) / stab(z_j - sum_i (l_i w+_ij + h_i w-_ij) - b_j) * R_j
    /// ```
    ///
    /// Three branches: the input, minus the low bound through `W+`, minus the high bound
    /// through `W-` (the bias cancels between them). A contribution is measured against the
    /// least activating input within the bounds, which suits pixels: use it on the first
    /// layer, with the range of the input (`[0, 1]` for the zoo's digits).
    pub fn zbox(low: Tensor, high: Tensor) -> Self {
        BasicRule::new(
            "zbox",
            vec![group(
                vec![
                    Branch::new(I::Identity, P::Identity, P::Identity),
                    Branch::new(I::Fill(low), P::Positive, P::Positive).negated(),
                    Branch::new(I::Fill(high), P::Negative, P::Negative).negated(),
                ],
                1.0,
            )],
        )
    }

    /// The w^2 rule (Montavon et al. 2017; the overview, section 10.2.5):
    ///
    /// ```text
    /// R_i = sum_j w_ij^2 / stab(sum_i w_ij^2 + b_j^2) * R_j
    /// ```
    ///
    /// The input is replaced by ones and every parameter squared (Zennit squares the bias
    /// too). The map depends on the weights only, not on the input: a first-layer rule for
    /// inputs with no natural bounds.
    pub fn wsquare() -> Self {
        BasicRule::new(
            "wsquare",
            vec![group(vec![Branch::new(I::Ones, P::Square, P::Square)], 1.0)],
        )
    }

    /// The flat rule (Lapuschkin et al. 2019, "Unmasking Clever Hans predictors and
    /// assessing what machines really learn", Nature Communications 10):
    ///
    /// ```text
    /// R_i = sum_j 1 / (number of inputs in the receptive field of j) * R_j
    /// ```
    ///
    /// i.e. w^2 with every weight 1 and no bias: each output's relevance is spread evenly
    /// over its receptive field. A first-layer rule that trades resolution for robustness
    /// (`epsilon-plus-flat`).
    pub fn flat() -> Self {
        BasicRule::new(
            "flat",
            vec![group(vec![Branch::new(I::Ones, P::Ones, P::Zero)], 1.0)],
        )
    }
}
