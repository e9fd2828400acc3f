//! Measuring relevance flow through nodes, and the rule checks the properties share.

use proptest::prelude::*;
use relprop::core::{
    Derivative, NodeId, Op, Result as CoreResult, Rule, RuleSet, Signals, Tape, Tensor,
};
use relprop::explain::audit::per_sample_sums;
use relprop::explain::rules::Affine;
use relprop::explain::{
    record, BasicRule, BatchNormFold, Composite, LayerKind, Norm, Recorded, COMPOSITE_NAMES,
};
use relprop::nn::Module;

use crate::arch::*;
// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

/// Relevance flow through one node: sums per sample of what reached its output and of what
/// its rule hands to its inputs (re-run on the output signal), with absolute sums.
pub(crate) struct Flow {
    pub(crate) id: NodeId,
    pub(crate) label: String,
    pub(crate) op: String,
    pub(crate) affine: bool,
    pub(crate) out_sum: Vec<f64>,
    pub(crate) out_abs: Vec<f64>,
    pub(crate) in_sum: Vec<f64>,
    pub(crate) in_abs: Vec<f64>,
}

pub(crate) fn abs_sums(t: &Tensor) -> Vec<f64> {
    per_sample_sums(&t.abs())
}

/// The flow through every node a walk reached (leaves excluded).
pub(crate) fn flows(tape: &Tape, rules: &dyn RuleSet, signals: &Signals, n: usize) -> Vec<Flow> {
    let mut out = Vec::new();
    for (id, node) in tape.nodes().iter().enumerate() {
        let Some(signal) = signals.get(id) else {
            continue;
        };
        let inputs = node.op.inputs();
        if inputs.is_empty() || !node.tracks() {
            continue;
        }
        let rule = rules.rule_for(tape, id).unwrap_or(&Derivative);
        let passed = rule.backward(tape, id, signal).expect("rule re-run");
        let (mut in_sum, mut in_abs) = (vec![0.0; n], vec![0.0; n]);
        for (input, s) in inputs.into_iter().zip(passed) {
            let Some(s) = s else { continue };
            if !tape.nodes()[input].tracks() {
                continue;
            }
            for (i, (v, a)) in per_sample_sums(&s)
                .into_iter()
                .zip(abs_sums(&s))
                .enumerate()
            {
                in_sum[i] += v;
                in_abs[i] += a;
            }
        }
        out.push(Flow {
            id,
            label: node.describe(),
            op: node.op.name().to_string(),
            affine: matches!(node.op.name(), "linear" | "conv2d"),
            out_sum: per_sample_sums(signal),
            out_abs: abs_sums(signal),
            in_sum,
            in_abs,
        });
    }
    out
}

/// Per output unit of an affine node (zero biases): the positive and negative parts of
/// `z`, `z+ = W+ x+ + W- x-` and `z- = W- x+ + W+ x-`, computed as the rules compute them.
pub(crate) fn split_z(tape: &Tape, id: NodeId) -> (Tensor, Tensor) {
    let layer = Affine::of(tape, id).unwrap();
    let (x, w) = (layer.input(), layer.weight());
    let f = |x: &Tensor, w: &Tensor| layer.forward(x, w, None).unwrap();
    let (xp, xn, wp, wn) = (x.relu(), x.neg_part(), w.relu(), w.neg_part());
    let zp = f(&xp, &wp).add(&f(&xn, &wn)).unwrap();
    let zn = f(&xp, &wn).add(&f(&xn, &wp)).unwrap();
    (zp, zn)
}

/// The recorded and canonized pass of `model` on `x` for a composite.
pub(crate) fn recorded(model: &dyn Module, x: &Tensor, composite: &Composite) -> Recorded {
    let mut rec = record(model, x).unwrap();
    rec.tape = composite.canonize(&rec.tape).unwrap();
    rec
}

/// A one-hot seed at the logit of largest magnitude per sample, and which samples have a
/// target logit far enough from 0 for conservation to be meaningful (a logit of exactly 0,
/// a dead network, passes nothing on however the seed is chosen).
pub(crate) fn seed_at_largest_logit(logits: &Tensor) -> (Tensor, Vec<bool>) {
    let (n, c) = (logits.shape()[0], logits.shape()[1]);
    let mut seed = vec![0.0f32; n * c];
    let mut live = Vec::new();
    for (i, row) in logits.data().chunks(c).enumerate() {
        let (t, z) =
            row.iter().enumerate().fold(
                (0, 0.0f32),
                |b, (k, &v)| if v.abs() > b.1.abs() { (k, v) } else { b },
            );
        seed[i * c + t] = 1.0;
        live.push(z.abs() >= 1e-4);
    }
    (Tensor::from_vec(seed, &[n, c]).unwrap(), live)
}

pub(crate) fn zplus() -> Composite {
    Composite::new("zplus")
        .canonizer(BatchNormFold)
        .kind(LayerKind::Any, BasicRule::zplus())
}

pub(crate) fn alpha_beta(a: f32, b: f32) -> Composite {
    Composite::new(format!("alpha{a}-beta{b}"))
        .canonizer(BatchNormFold)
        .kind(LayerKind::Any, BasicRule::alpha_beta(a, b))
}

/// Every composite `relprop explain --rules` accepts, with bounds fitting the inputs.
pub(crate) fn builtin_composites() -> Vec<Composite> {
    COMPOSITE_NAMES
        .iter()
        .map(|name| Composite::by_name(name, 1e-6, -1.0, 1.0).unwrap())
        .collect()
}

/// Is `row` (a node on the main path, i.e. not inside a residual body or a concat branch)
/// part of every cut?
pub(crate) fn on_main_path(label: &str) -> bool {
    !label.contains(".res.") && !label.contains(".cat.")
}

/// Stabiliser of the ZPlus and AlphaBeta groups and of the Norm rule (`rules::STABILIZER`).
pub(crate) const STAB: f64 = 1e-6;

/// What a stabilised denominator keeps back at node `id` for sample `i`: a rule dividing
/// by `z + eps sign(z)` hands on `R z / (z + eps sign(z))`, so `|R| eps / (|z| + eps)` of
/// each output's relevance stays behind. Norm nodes (add, average pooling) use
/// [`STAB`]; affine nodes `eps_affine` (their Epsilon; 0 for LRP-0).
///
/// LRP-0 takes `0/0` as 0, so it keeps back all the relevance of an output whose `z` is
/// exactly 0 (the limit of the formula as eps goes to 0). Behind a ReLU-like activation
/// such an output has no relevance; behind a sigmoid (`sigmoid(0) = 1/2`) it has, e.g. at
/// the padded border of a bias-free conv, where every contribution is 0.
pub(crate) fn stabiliser_share(
    tape: &Tape,
    id: NodeId,
    r: &Tensor,
    i: usize,
    eps_affine: f64,
) -> f64 {
    let node = &tape.nodes()[id];
    let eps = match node.op {
        Op::Add(..) | Op::AvgPool2d { .. } => STAB,
        Op::Linear { .. } | Op::Conv2d { .. } => eps_affine,
        _ => return 0.0,
    };
    let per = r.numel() / r.shape()[0];
    let range = i * per..(i + 1) * per;
    r.data()[range.clone()]
        .iter()
        .zip(&node.value.data()[range])
        .map(|(&r, &z)| match (eps, z) {
            (0.0, 0.0) => (r as f64).abs(),
            (0.0, _) => 0.0,
            _ => (r as f64).abs() * eps / ((z as f64).abs() + eps),
        })
        .sum()
}

/// Per sample, what the stabilisers keep back (see [`stabiliser_share`]) over a walk of
/// `composite` from `seed` on `model`'s pass on `x`; affine rules stabilise with
/// `eps_affine`.
pub(crate) fn kept_back(
    model: &dyn Module,
    x: &Tensor,
    composite: &Composite,
    seed: &Tensor,
    eps_affine: f64,
) -> Vec<f64> {
    let rec = recorded(model, x, composite);
    let rules = composite.resolve(&rec.tape);
    let (_, signals) = rec.walk(seed, &rules).unwrap();
    (0..seed.shape()[0])
        .map(|i| {
            (0..rec.tape.len())
                .filter_map(|id| {
                    let r = signals.get(id)?;
                    Some(stabiliser_share(&rec.tape, id, r, i, eps_affine))
                })
                .sum()
        })
        .collect()
}

/// The Norm rule without its stabiliser (`0/0` taken as 0), for the exact identity
/// between LRP-0 and gradient x input.
pub(crate) struct ExactNorm;

impl Rule for ExactNorm {
    fn backward(
        &self,
        tape: &Tape,
        id: NodeId,
        signal: &Tensor,
    ) -> CoreResult<Vec<Option<Tensor>>> {
        let node = &tape.nodes()[id];
        let s = signal.zip_with(&node.value, "exact norm", |r, z| {
            if z == 0.0 {
                0.0
            } else {
                r / z
            }
        })?;
        Norm::distribute(tape, id, &s)
    }
}

/// Checks ZPlus (beta = 0) or AlphaBeta conservation at every node where it applies.
/// Returns how many (node, sample) pairs were checked at affine layers.
pub(crate) fn check_sign_rule(
    arch: &Arch,
    composite: &Composite,
    alpha: f64,
    beta: f64,
) -> Result<usize, TestCaseError> {
    let model = arch.model(Bias::Zero);
    let rec = recorded(&model, &arch.x(), composite);
    let (seed, live) = seed_at_largest_logit(rec.logits());
    let rules = composite.resolve(&rec.tape);
    let (_, signals) = rec.walk(&seed, &rules).unwrap();
    let n = live.len();
    let mut checked = 0;
    for fl in flows(&rec.tape, &rules, &signals, n) {
        let r_out = signals.get(fl.id).unwrap();
        let per = r_out.numel() / n;
        let parts = fl.affine.then(|| split_z(&rec.tape, fl.id));
        for i in (0..n).filter(|&i| live[i]) {
            let scale = fl.out_abs[i].max(fl.in_abs[i]);
            let mut allowed =
                1e-3 * scale + stabiliser_share(&rec.tape, fl.id, r_out, i, 0.0) + 1e-9;
            if let Some((zp, zn)) = &parts {
                // Applies where every output that receives relevance has the needed parts.
                let range = i * per..(i + 1) * per;
                let mut applies = true;
                let mut stabiliser_share = 0.0;
                for ((&r, &p), &q) in r_out.data()[range.clone()]
                    .iter()
                    .zip(&zp.data()[range.clone()])
                    .zip(&zn.data()[range])
                {
                    if r == 0.0 {
                        continue;
                    }
                    let (r, p, q) = (r.abs() as f64, p as f64, q as f64);
                    if p <= 0.0 || (beta != 0.0 && q >= 0.0) {
                        applies = false;
                        break;
                    }
                    stabiliser_share += alpha * r * STAB / (p + STAB);
                    if beta != 0.0 {
                        stabiliser_share += beta * r * STAB / (q.abs() + STAB);
                    }
                }
                if !applies {
                    continue;
                }
                checked += 1;
                allowed =
                    1e-3 * (alpha + beta) * fl.out_abs[i] + 1e-3 * scale + stabiliser_share + 1e-9;
            }
            let err = (fl.in_sum[i] - fl.out_sum[i]).abs();
            prop_assert!(
                err <= allowed,
                "{}: sample {i} at {} ({}): relevance in {:+.6e}, out {:+.6e}, |diff| {:.3e} > allowed {:.3e}{:?}",
                composite.name,
                fl.label,
                fl.op,
                fl.in_sum[i],
                fl.out_sum[i],
                err,
                allowed,
                arch
            );
        }
    }
    Ok(checked)
}

/// How an affine rule accounts for relevance, as a formula for the sum it hands on.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Accounting {
    /// Epsilon(eps) (LRP-0 for 0): `sum_k R_k (z_k - b_k) / s_eps(z_k)`.
    Epsilon(f64),
    /// AlphaBeta (ZPlus for beta 0): `sum_k R_k (alpha P_k - beta N_k)` with
    /// `P = (z+ - b+) / (z+ + eps)`, `N = (z- - b-) / s(z-)`, where `z+` and `z-` hold the
    /// positive and negative parts of the bias.
    AlphaBeta(f64, f64),
}

/// The layer's bias broadcast over its output, or zeros.
pub(crate) fn bias_like(tape: &Tape, id: NodeId, z: &Tensor) -> Tensor {
    let b = match tape.nodes()[id].op {
        Op::Linear { b: Some(b), .. } | Op::Conv2d { b: Some(b), .. } => tape.value(b).unwrap(),
        _ => return Tensor::zeros(z.shape()),
    };
    let mut shape = vec![1; z.rank()];
    shape[1] = b.numel();
    b.reshape(&shape).unwrap().broadcast_to(z.shape()).unwrap()
}

/// With random biases, every affine node hands on exactly what its rule's accounting
/// says: all of its relevance but the bias's (and the stabiliser's) share.
pub(crate) fn check_accounting(
    arch: &Arch,
    composite: &Composite,
    accounting: Accounting,
) -> Result<(), TestCaseError> {
    let model = arch.model(Bias::Random);
    let rec = recorded(&model, &arch.x(), composite);
    let (seed, _) = seed_at_largest_logit(rec.logits());
    let rules = composite.resolve(&rec.tape);
    let (_, signals) = rec.walk(&seed, &rules).unwrap();
    let n = seed.shape()[0];
    let stab = |z: f64, eps: f64| if z >= 0.0 { z + eps } else { z - eps };
    for fl in flows(&rec.tape, &rules, &signals, n)
        .into_iter()
        .filter(|f| f.affine)
    {
        let r = signals.get(fl.id).unwrap();
        let z = &rec.tape.nodes()[fl.id].value;
        let b = bias_like(&rec.tape, fl.id, z);
        let per_unit: Vec<f64> = match accounting {
            Accounting::Epsilon(eps) => z
                .data()
                .iter()
                .zip(b.data())
                .map(|(&z, &b)| {
                    let (z, b) = (z as f64, b as f64);
                    // LRP-0 takes 0/0 as 0.
                    if eps == 0.0 && z == 0.0 {
                        0.0
                    } else {
                        (z - b) / stab(z, eps)
                    }
                })
                .collect(),
            Accounting::AlphaBeta(alpha, beta) => {
                // Known deviation (see `zplus_relevance_does_not_depend_on_the_batch`): when
                // the layer input has no positive value in the whole batch, the rules skip
                // their x+ branches and with them the bias parts those branches carry.
                let x = Affine::of(&rec.tape, fl.id).unwrap().input().clone();
                if x.data().iter().all(|&v| v <= 0.0) && b.data().iter().any(|&v| v != 0.0) {
                    continue;
                }
                let (zp, zn) = split_z(&rec.tape, fl.id);
                zp.data()
                    .iter()
                    .zip(zn.data())
                    .zip(b.data())
                    .map(|((&p, &q), &b)| {
                        let (p, q, b) = (p as f64, q as f64, b as f64);
                        let (bp, bn) = (b.max(0.0), b.min(0.0));
                        let pos = p / stab(p + bp, STAB);
                        let neg = if beta == 0.0 {
                            0.0
                        } else {
                            q / stab(q + bn, STAB)
                        };
                        alpha * pos - beta * neg
                    })
                    .collect()
            }
        };
        let spread = match accounting {
            Accounting::Epsilon(_) => 1.0,
            Accounting::AlphaBeta(a, b) => a + b,
        };
        let per = r.numel() / n;
        for i in 0..n {
            let range = i * per..(i + 1) * per;
            let expected: f64 = r.data()[range.clone()]
                .iter()
                .zip(&per_unit[range])
                .map(|(&r, &u)| r as f64 * u)
                .sum();
            let allowed = 1e-3 * (spread * fl.out_abs[i] + fl.in_abs[i]) + 1e-9;
            let err = (fl.in_sum[i] - expected).abs();
            prop_assert!(
                err <= allowed,
                "{}: sample {i} at {}: hands on {:+.6e}, its accounting says {:+.6e} (of {:+.6e} received; |diff| {:.3e} > {:.3e}){:?}",
                composite.name, fl.label, fl.in_sum[i], expected, fl.out_sum[i], err, allowed, arch
            );
        }
    }
    Ok(())
}
