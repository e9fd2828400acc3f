//! The LRP rule family as configurations of the shared recipe ([`BasicRule`]).
//!
//! Definitions follow Zennit 1.0 (see DESIGN notes): `x+ = max(x, 0)`, `W+ = max(W, 0)`,
//! second branches carry no bias, and denominators are stabilised with `eps = 1e-6`.

use super::affine::{BasicRule, Branch, Gate, Group, InputMod as I, ParamMod as P};
use relprop_core::Tensor;

/// The default stabiliser of every rule but Epsilon.
pub const STABILIZER: f32 = 1e-6;

fn group(branches: Vec<Branch>, coefficient: f32) -> Group {
    Group {
        branches,
        coefficient,
        gate: Gate::All,
        epsilon: STABILIZER,
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
    /// Epsilon(e): `x * J_W^T(R / s_e(Wx + b))`.
    pub fn epsilon(epsilon: f32) -> Self {
        let mut g = group(
            vec![Branch::new(I::Identity, P::Identity, P::Identity)],
            1.0,
        );
        g.epsilon = epsilon;
        BasicRule {
            name: format!("epsilon({epsilon})"),
            groups: vec![g],
        }
    }

    /// LRP-0: Epsilon with `eps = 0` (equals gradient x input on ReLU nets).
    pub fn zero() -> Self {
        let mut rule = Self::epsilon(0.0);
        rule.name = "lrp-0".into();
        rule
    }

    /// ZPlus: `x+ J_{W+}^T(R / s(z+)) + x- J_{W-}^T(R / s(z+))`.
    pub fn zplus() -> Self {
        BasicRule {
            name: "zplus".into(),
            groups: vec![group(positive_part(), 1.0)],
        }
    }

    /// AlphaBeta(a, b): `a` times the positive part's relevance minus `b` times the negative part's.
    pub fn alpha_beta(alpha: f32, beta: f32) -> Self {
        BasicRule {
            name: format!("alpha{alpha}-beta{beta}"),
            groups: vec![group(positive_part(), alpha), group(negative_part(), -beta)],
        }
    }

    /// Gamma(g): positive contributions boosted by `g`, split by the sign of the output.
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
            branches: vec![
                Branch::new(I::Positive, wp.clone(), wp.clone()),
                Branch::new(I::Negative, wn.clone(), P::Zero),
            ],
            coefficient: 1.0,
            gate: Gate::OutputPositive,
            epsilon: STABILIZER,
        };
        let down = Group {
            branches: vec![
                Branch::new(I::Positive, wn.clone(), wn),
                Branch::new(I::Negative, wp, P::Zero),
            ],
            coefficient: 1.0,
            gate: Gate::OutputNegative,
            epsilon: STABILIZER,
        };
        BasicRule {
            name: format!("gamma({gamma})"),
            groups: vec![up, down],
        }
    }

    /// ZBox(l, h) for inputs bounded by `low <= x <= high` (scalars or one sample's shape):
    /// `z = Wx - W+ l - W- h`; the bias cancels.
    pub fn zbox(low: Tensor, high: Tensor) -> Self {
        BasicRule {
            name: "zbox".into(),
            groups: vec![group(
                vec![
                    Branch::new(I::Identity, P::Identity, P::Identity),
                    Branch::new(I::Fill(low), P::Positive, P::Positive).negated(),
                    Branch::new(I::Fill(high), P::Negative, P::Negative).negated(),
                ],
                1.0,
            )],
        }
    }

    /// WSquare: `J_{W^2}^T(R / s(W^2 1 + b^2))` (the bias is squared too, as in Zennit).
    pub fn wsquare() -> Self {
        BasicRule {
            name: "wsquare".into(),
            groups: vec![group(vec![Branch::new(I::Ones, P::Square, P::Square)], 1.0)],
        }
    }

    /// Flat: relevance spread evenly over each output's receptive field.
    pub fn flat() -> Self {
        BasicRule {
            name: "flat".into(),
            groups: vec![group(vec![Branch::new(I::Ones, P::Ones, P::Zero)], 1.0)],
        }
    }
}
