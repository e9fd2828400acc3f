//! The fast path of the affine recipe equals the reference path
//! ([`BasicRule::reference_relevance`], the recipe as written): on every rule and every
//! affine layer of random architectures (with random biases, signed inputs and a random
//! relevance), and end to end for every built-in composite and the LRP-type methods.

use crate::arch::*;
use crate::config;
use crate::flows::*;
use proptest::prelude::*;
use relprop::core::{NodeId, Op, Tape, Tensor};
use relprop::explain::rules::{Affine, BasicRule, Group, Stabilizer};
use relprop::explain::{
    explain, BatchNormFold, Canonizer, Composite, Method, RecipePath, Seed, Targets,
};

/// Every affine rule configuration the crate builds, and one with a norm-scaled stabiliser.
fn every_rule() -> Vec<BasicRule> {
    let (l, h) = (Tensor::scalar(-1.0), Tensor::scalar(1.0));
    let mut norm_scaled = BasicRule::epsilon(0.1);
    norm_scaled.groups = vec![Group::new(norm_scaled.groups[0].branches.clone())
        .with_stabilizer(Stabilizer::NormScale(0.1))];
    vec![
        BasicRule::zero(),
        BasicRule::epsilon(1e-6),
        BasicRule::epsilon(0.25),
        BasicRule::zplus(),
        BasicRule::alpha_beta(2.0, 1.0),
        BasicRule::alpha_beta(1.0, 0.0),
        BasicRule::gamma(0.25),
        BasicRule::zbox(l, h),
        BasicRule::zbox(Tensor::scalar(0.0), Tensor::scalar(1.0)),
        BasicRule::wsquare(),
        BasicRule::flat(),
        norm_scaled,
    ]
}

/// `max |a - b|` against `tol` times the larger of the two maps' largest magnitude.
fn close(a: &Tensor, b: &Tensor, tol: f64) -> Result<(), String> {
    let scale = a
        .data()
        .iter()
        .chain(b.data())
        .fold(0.0f64, |m, &v| m.max((v as f64).abs()));
    let worst = a
        .data()
        .iter()
        .zip(b.data())
        .map(|(&x, &y)| (x as f64 - y as f64).abs())
        .fold(0.0f64, f64::max);
    if a.shape() != b.shape() || worst.is_nan() || worst > tol * scale + 1e-30 {
        return Err(format!(
            "shapes {:?} / {:?}, max |fast - reference| {worst:.3e} against scale {scale:.3e}",
            a.shape(),
            b.shape()
        ));
    }
    Ok(())
}

fn affine_nodes(tape: &Tape) -> Vec<NodeId> {
    (0..tape.nodes().len())
        .filter(|&id| matches!(tape.nodes()[id].op, Op::Linear { .. } | Op::Conv2d { .. }))
        .collect()
}

proptest! {
    #![proptest_config(config())]

    /// Each rule, on each conv and linear layer, with a random relevance at its output.
    #[test]
    fn every_rule_on_every_layer_equals_the_reference(arch in arch(), r_seed in 0u64..1000) {
        let model = arch.model(Bias::Random);
        let rec = relprop::explain::record(&model, &arch.x()).unwrap();
        let tape = BatchNormFold.apply(&rec.tape).unwrap();
        for id in affine_nodes(&tape) {
            let layer = Affine::of(&tape, id).unwrap();
            let r = Tensor::rand_uniform(layer.output().shape(), -1.0, 1.0, r_seed + id as u64);
            for rule in every_rule() {
                let fast = rule.relevance(&tape, id, &r).unwrap();
                let reference = rule.reference_relevance(&layer, &r).unwrap();
                let label = tape.nodes()[id].label.clone().unwrap_or_default();
                if let Err(e) = close(&fast, &reference, 1e-4) {
                    prop_assert!(false, "{} at {label}: {e}{:?}", rule.name, arch);
                }
            }
        }
    }

    /// Every built-in composite, and SGLRP, CLRP1 and CLRP2, on both paths.
    #[test]
    fn every_composite_equals_the_reference(arch in arch()) {
        let model = arch.model(Bias::Random);
        let x = arch.x();
        for composite in builtin_composites() {
            let methods = |c: Composite| {
                vec![
                    Method::Lrp { composite: c.clone(), seed: Seed::OneHot },
                    Method::Sglrp { composite: c.clone() },
                    Method::Clrp1 { composite: c.clone() },
                    Method::Clrp2 { composite: c },
                ]
            };
            let fast = methods(composite.clone());
            let reference = methods(composite.clone().path(RecipePath::Reference));
            for (f, r) in fast.iter().zip(&reference) {
                let a = explain(&model, &x, &Targets::Argmax, f).unwrap();
                let b = explain(&model, &x, &Targets::Argmax, r).unwrap();
                if let Err(e) = close(&a.relevance, &b.relevance, 1e-3) {
                    prop_assert!(false, "{}: {e}{:?}", composite.name, arch);
                }
            }
        }
    }
}
