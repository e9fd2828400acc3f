//! Layer-by-layer check of relevance conservation: what `relprop verify` runs.
//!
//! The [audit](crate::audit) compares each layer's relevance sum with the seed's, which
//! mixes up where relevance was lost: a leak at the first layer below the logits shows at
//! every layer under it. This check isolates each node instead. For every node the
//! backward walk reached, it runs the node's rule once more on the signal at the node's
//! output and compares the sum of what the rule hands to the node's inputs with the sum it
//! received:
//!
//! ```text
//! absorbed    = what the rule gives the layer's biases and stabilisers, by its definition
//! local error = |sum R(inputs) + absorbed - sum R(output)| / sum |seed|  (per sample, max over the batch)
//! ```
//!
//! Biases absorb relevance by design: an affine rule hands its inputs only the share of
//! `z = Wx + b` that `Wx` explains, and a stabiliser keeps what a near-zero `z` cannot
//! explain. Rules that know their share (every rule of the recipe, Norm) report it, and it
//! is shown apart, never counted as a failure. What remains, the local error, is what a
//! rule loses or creates beyond its own definition: float rounding for a correct rule, and
//! a violation for a broken one. A rule that does not report its share has all of its
//! difference counted as local error.
//!
//! The cumulative error of a node is the audit's: how far its relevance sum is from the
//! seed's. Inside a residual block each branch holds only part of the relevance, so the
//! cumulative error there is expected to be large while every local error stays small.

use crate::audit::per_sample_sums;
use crate::composite::Composite;
use crate::method::{record, Recorded};
use crate::seed::{Seed, Targets};
use relprop_core::{Derivative, Error, NodeId, Op, Result, RuleSet, Tape, Tensor};
use relprop_nn::Module;
use std::fmt;

/// The tolerance `relprop verify` uses unless told otherwise.
pub const DEFAULT_TOLERANCE: f64 = 1e-3;

/// The check of one node: its relevance sums and errors per sample.
#[derive(Clone, Debug)]
pub struct LayerCheck {
    /// Node id on the (canonized) tape.
    pub node: NodeId,
    /// The node's label, `input` for the input, or `#<id>` for an unlabelled node.
    pub label: String,
    /// Whether the node carries a label of its own.
    pub labelled: bool,
    /// The op name (`conv2d`, `relu`, `leaf` for the input, ...).
    pub op: String,
    /// True for a linear or conv node with a non-zero bias (it absorbs relevance).
    pub has_bias: bool,
    /// Relevance sum at the node's output, per sample.
    pub sums: Vec<f64>,
    /// Local conservation error per sample, beyond what the rule absorbs by design (empty
    /// for the input, which passes nothing on).
    pub local_errors: Vec<f64>,
    /// What the rule gives biases and stabilisers, relative to `sum |seed|`, per sample
    /// (empty where the rule does not say).
    pub absorbed: Vec<f64>,
    /// `|sum R - sum seed| / sum |seed|` per sample, as in the audit.
    pub cumulative_errors: Vec<f64>,
}

/// The largest value, with NaN counted as infinite (a NaN error is never "within tolerance").
fn worst(v: &[f64]) -> f64 {
    v.iter().fold(
        0.0,
        |m: f64, &e| if e.is_nan() { f64::INFINITY } else { m.max(e) },
    )
}

impl LayerCheck {
    /// The largest local error over the batch (0 for the input; NaN counts as infinite).
    pub fn max_local_error(&self) -> f64 {
        worst(&self.local_errors)
    }

    /// The largest cumulative error over the batch (NaN counts as infinite).
    pub fn max_cumulative_error(&self) -> f64 {
        worst(&self.cumulative_errors)
    }

    /// True when the node's local error exceeds `tolerance` for some sample.
    pub fn violates(&self, tolerance: f64) -> bool {
        self.max_local_error() > tolerance
    }
}

/// The result of a check: one row per reached node, from the logits down to the input.
#[derive(Clone, Debug)]
pub struct Verification {
    /// Name of the rules and seed.
    pub method: String,
    /// Local errors above this are violations.
    pub tolerance: f64,
    /// The explained class per sample.
    pub targets: Vec<usize>,
    /// Seed sum per sample.
    pub seed_sums: Vec<f64>,
    /// Sum of absolute seed values per sample (the scale of every error).
    pub seed_abs: Vec<f64>,
    /// One row per node the walk reached, output first, the input last.
    pub layers: Vec<LayerCheck>,
    /// Remarks (zero seeds, saturated softmax, ...).
    pub notes: Vec<String>,
}

impl Verification {
    /// The nodes whose local error exceeds the tolerance, output first.
    pub fn violations(&self) -> Vec<&LayerCheck> {
        self.layers
            .iter()
            .filter(|l| l.violates(self.tolerance))
            .collect()
    }

    /// True when no node leaks more than the tolerance.
    pub fn passed(&self) -> bool {
        self.violations().is_empty()
    }

    /// The node with the largest local error, if any node passes relevance on.
    pub fn worst_layer(&self) -> Option<&LayerCheck> {
        self.layers
            .iter()
            .filter(|l| !l.local_errors.is_empty())
            .max_by(|a, b| a.max_local_error().total_cmp(&b.max_local_error()))
    }
}

/// Records `model` on `x`, canonizes the pass with `composite`, builds `seed` for `targets`
/// and checks every node's local conservation (see the module docs). `tolerance` must be a
/// finite number `>= 0`.
pub fn verify(
    model: &dyn Module,
    x: &Tensor,
    targets: &Targets,
    composite: &Composite,
    seed: &Seed,
    tolerance: f64,
) -> Result<Verification> {
    let mut rec = record(model, x)?;
    rec.tape = composite.canonize(&rec.tape)?;
    let t = targets.resolve(rec.logits())?;
    let built = seed.build(rec.logits(), &t)?;
    let mut v = verify_recorded(&rec, composite, &built.seed, tolerance)?;
    v.targets = t;
    v.notes.splice(0..0, built.notes);
    Ok(v)
}

/// The check on an already recorded (and canonized) pass with a ready seed `[n, classes]`.
/// `targets` of the result is left empty.
pub fn verify_recorded(
    rec: &Recorded,
    composite: &Composite,
    seed: &Tensor,
    tolerance: f64,
) -> Result<Verification> {
    if !tolerance.is_finite() || tolerance < 0.0 {
        return Err(Error::invalid(
            "verify",
            format!("the tolerance must be a finite number >= 0, got {tolerance}"),
        ));
    }
    let tape = &rec.tape;
    let rules = composite.resolve(tape);
    let (_, signals) = rec.walk(seed, &rules)?;
    let n = seed.shape().first().copied().unwrap_or(1).max(1);
    let seed_sums = per_sample_sums(seed);
    let seed_abs = per_sample_sums(&seed.abs());
    let relative = |diff: &[f64]| -> Vec<f64> {
        diff.iter()
            .zip(&seed_abs)
            .map(|(d, a)| if *a > 0.0 { d.abs() / a } else { d.abs() })
            .collect()
    };

    let mut layers = Vec::new();
    for id in (0..=rec.output).rev() {
        let node = tape.node(id)?;
        let Some(signal) = signals.get(id) else {
            continue;
        };
        let inputs = node.op.inputs();
        let is_input = id == rec.input;
        if inputs.is_empty() && !is_input {
            continue; // a parameter or constant
        }
        let sums = sample_sums(signal, n);
        let mut absorbed = Vec::new();
        let local_errors = if is_input || !node.tracks() {
            Vec::new()
        } else {
            let rule = rules.rule_for(tape, id).unwrap_or(&Derivative);
            let passed = rule.backward(tape, id, signal)?;
            let mut in_sums = vec![0.0; n];
            for (input, s) in inputs.iter().zip(passed) {
                let Some(s) = s else { continue };
                if !tape.node(*input)?.tracks() {
                    continue; // weights and biases never receive relevance
                }
                for (acc, v) in in_sums.iter_mut().zip(sample_sums(&s, n)) {
                    *acc += v;
                }
            }
            if let Some(kept) = rule.absorbed(tape, id, signal)? {
                for (acc, k) in in_sums.iter_mut().zip(&kept) {
                    *acc += k;
                }
                absorbed = kept
                    .iter()
                    .zip(&seed_abs)
                    .map(|(k, a)| if *a > 0.0 { k / a } else { *k })
                    .collect();
            }
            let diff: Vec<f64> = in_sums.iter().zip(&sums).map(|(a, b)| a - b).collect();
            relative(&diff)
        };
        let cumulative: Vec<f64> = sums.iter().zip(&seed_sums).map(|(s, t)| s - t).collect();
        layers.push(LayerCheck {
            node: id,
            label: if is_input {
                "input".to_string()
            } else {
                node.label.clone().unwrap_or_else(|| format!("#{id}"))
            },
            labelled: node.label.is_some() || is_input,
            op: node.op.name().to_string(),
            has_bias: has_bias(tape, &node.op),
            sums,
            local_errors,
            absorbed,
            cumulative_errors: relative(&cumulative),
        });
    }
    let mut notes = Vec::new();
    if seed_abs.contains(&0.0) {
        notes.push("a sample's seed is all zeros: its errors are absolute, not relative".into());
    }
    Ok(Verification {
        method: composite.name.clone(),
        tolerance,
        targets: Vec::new(),
        seed_sums,
        seed_abs,
        layers,
        notes,
    })
}

/// Per-sample sums of a signal; a signal without the batch dimension counts as a whole
/// (its total is given to every sample).
fn sample_sums(t: &Tensor, n: usize) -> Vec<f64> {
    if t.shape().first() == Some(&n) {
        per_sample_sums(t)
    } else {
        vec![t.data().iter().map(|&v| v as f64).sum(); n]
    }
}

/// A linear or conv node whose bias holds a non-zero value.
fn has_bias(tape: &Tape, op: &Op) -> bool {
    match op {
        Op::Linear { b: Some(b), .. } | Op::Conv2d { b: Some(b), .. } => tape
            .value(*b)
            .map(|v| v.data().iter().any(|&x| x != 0.0))
            .unwrap_or(false),
        _ => false,
    }
}

impl fmt::Display for Verification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.seed_sums.len().max(1) as f64;
        writeln!(
            f,
            "relevance conservation: {} on {} sample(s){}",
            self.method,
            self.seed_sums.len(),
            if self.targets.is_empty() {
                String::new()
            } else {
                format!(", explained classes {:?}", self.targets)
            }
        )?;
        writeln!(
            f,
            "absorbed = what the rule gives biases and stabilisers by definition; local error = |sum R(inputs) + absorbed - sum R(output)| / sum |seed|, max over samples; tolerance {:.1e}",
            self.tolerance
        )?;
        writeln!(
            f,
            "| node | op | relevance sum (mean) | absorbed (mean) | local error | cumulative error | |"
        )?;
        writeln!(f, "|---|---|---:|---:|---:|---:|---|")?;
        writeln!(
            f,
            "| seed | logits | {:+.6} | | | | |",
            self.seed_sums.iter().sum::<f64>() / n
        )?;
        for l in &self.layers {
            let local = if l.local_errors.is_empty() {
                String::new()
            } else {
                format!("{:.2e}", l.max_local_error())
            };
            let flag = match (l.violates(self.tolerance), l.has_bias) {
                (true, _) => "LEAK",
                (false, true) => "bias",
                (false, false) => "",
            };
            let absorbed = if l.absorbed.is_empty() {
                String::new()
            } else {
                format!(
                    "{:+.2e}",
                    l.absorbed.iter().sum::<f64>() / l.absorbed.len() as f64
                )
            };
            writeln!(
                f,
                "| {} | {} | {:+.6} | {absorbed} | {local} | {:.2e} | {flag} |",
                l.label,
                l.op,
                l.sums.iter().sum::<f64>() / n,
                l.max_cumulative_error()
            )?;
        }
        writeln!(
            f,
            "note: biases absorb relevance by design (the absorbed column, relative to sum |seed|); it is reported, not counted as a leak"
        )?;
        writeln!(
            f,
            "note: inside a residual block each branch holds part of the relevance, so cumulative errors there are expected; local errors are not"
        )?;
        for note in &self.notes {
            writeln!(f, "note: {note}")?;
        }
        let bad = self.violations();
        if bad.is_empty() {
            match self.worst_layer() {
                Some(w) => writeln!(
                    f,
                    "PASS: every local error is within {:.1e} (largest {:.2e} at {})",
                    self.tolerance,
                    w.max_local_error(),
                    w.label
                ),
                None => writeln!(f, "PASS: no node passes relevance on"),
            }
        } else {
            let names: Vec<String> = bad
                .iter()
                .map(|l| format!("{} ({:.2e})", l.label, l.max_local_error()))
                .collect();
            writeln!(
                f,
                "FAIL: {} node(s) leak more than {:.1e}: {}",
                bad.len(),
                self.tolerance,
                names.join(", ")
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use relprop_core::Rng;
    use relprop_nn::{Conv2d, Flatten, Linear, Relu, Sequential};

    fn net(bias: f32) -> Sequential {
        let mut rng = Rng::new(3);
        let mut conv = Conv2d::new(
            "conv",
            1,
            3,
            [3, 3],
            relprop_core::Conv2dSpec::new(1, 1),
            true,
            &mut rng,
        );
        let mut fc = Linear::new("fc", 3 * 5 * 5, 4, true, &mut rng);
        for b in [&mut conv.bias, &mut fc.bias].into_iter().flatten() {
            b.value = Tensor::full(b.value.shape(), bias);
        }
        Sequential::new("")
            .with(conv)
            .with(Relu::named("relu"))
            .with(Flatten::named("flat"))
            .with(fc)
    }

    fn check(bias: f32) -> Verification {
        let x = Tensor::rand_uniform(&[2, 1, 5, 5], 0.0, 1.0, 1);
        verify(
            &net(bias),
            &x,
            &Targets::Class(1),
            &Composite::epsilon_plus(1e-9),
            &Seed::OneHot,
            DEFAULT_TOLERANCE,
        )
        .unwrap()
    }

    #[test]
    fn bias_free_layers_conserve_locally() {
        let v = check(0.0);
        assert!(v.passed(), "{v}");
        let labels: Vec<&str> = v.layers.iter().map(|l| l.label.as_str()).collect();
        assert_eq!(labels, ["fc", "flat", "relu", "conv", "input"]);
        assert!(v.layers.iter().all(|l| !l.has_bias));
        assert!(v.to_string().contains("PASS"), "{v}");
    }

    #[test]
    fn large_biases_are_absorbed_not_leaked() {
        let v = check(5.0);
        assert!(v.passed(), "{v}");
        let fc = v.layers.iter().find(|l| l.label == "fc").unwrap();
        assert!(fc.has_bias);
        // The bias takes a visible share, reported apart from the (rounding-level) leak.
        assert!(fc.absorbed.iter().any(|a| a.abs() > 1e-2), "{v}");
        assert!(fc.max_local_error() < 1e-5, "{v}");
        let text = v.to_string();
        assert!(text.contains("PASS") && text.contains("bias"), "{v}");
    }

    #[test]
    fn a_rule_that_creates_relevance_is_named_as_a_leak() {
        let x = Tensor::rand_uniform(&[2, 1, 5, 5], 0.0, 1.0, 1);
        let mut broken = crate::rules::BasicRule::epsilon(1e-6);
        broken.groups[0].coefficient = 1.5;
        broken.name = "broken".into();
        let rules = Composite::new("broken").kind(crate::composite::LayerKind::Any, broken);
        let v = verify(
            &net(0.5),
            &x,
            &Targets::Class(1),
            &rules,
            &Seed::OneHot,
            DEFAULT_TOLERANCE,
        )
        .unwrap();
        let bad: Vec<&str> = v.violations().iter().map(|l| l.label.as_str()).collect();
        assert_eq!(bad, ["fc", "conv"], "{v}");
        // Pass-through nodes never leak.
        for l in &v.layers {
            if l.op == "relu" || l.op == "reshape" {
                assert!(l.max_local_error() < 1e-6, "{v}");
            }
        }
        assert!(v.to_string().contains("FAIL"), "{v}");
    }

    #[test]
    fn bad_tolerances_are_errors() {
        let x = Tensor::rand_uniform(&[1, 1, 5, 5], 0.0, 1.0, 1);
        for t in [f64::NAN, -1.0, f64::INFINITY] {
            let r = verify(
                &net(0.0),
                &x,
                &Targets::Argmax,
                &Composite::zero(),
                &Seed::OneHot,
                t,
            );
            assert!(r.is_err());
        }
    }
}
