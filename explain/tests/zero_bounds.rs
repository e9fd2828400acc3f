//! Shortcuts of the affine rule recipe must give exactly what the full computation gives:
//! ZBox with a zero lower bound (the bound's branch has an all-zero input, so its z is the
//! bias alone and it passes nothing on), bounds shared by the batch (convolved once), and
//! the per-sample pass for convs whose every z is the recorded output or a per-sample
//! constant (LRP-0, Epsilon, ZBox).

use relprop_core::{Op, Tensor};
use relprop_explain::record;
use relprop_explain::rules::{
    BasicRule, Branch, Gate, Group, InputMod, ParamMod, Stabilizer, STABILIZER,
};
use relprop_zoo::{pretrained, Architecture};
use std::sync::Arc;

/// ZBox with its bound inputs given as input modifications.
fn zbox_with(low: InputMod, high: InputMod) -> BasicRule {
    BasicRule {
        name: "zbox".into(),
        groups: vec![Group {
            branches: vec![
                Branch::new(InputMod::Identity, ParamMod::Identity, ParamMod::Identity),
                Branch::new(low, ParamMod::Positive, ParamMod::Positive).negated(),
                Branch::new(high, ParamMod::Negative, ParamMod::Negative).negated(),
            ],
            coefficient: 1.0,
            gate: Gate::All,
            stabilizer: Stabilizer::Epsilon(STABILIZER),
        }],
    }
}

/// A bound as an opaque per-sample input, which the rule computes in full.
fn opaque_fill(v: f32) -> InputMod {
    InputMod::Custom(Arc::new(move |x: &Tensor| Tensor::full(x.shape(), v)))
}

#[test]
fn a_zero_bound_branch_is_its_bias_alone() {
    for arch in [Architecture::Mlp, Architecture::VggSmall] {
        let model = pretrained::load(arch).unwrap();
        let [c, h, w] = arch.input_shape();
        let x = Tensor::rand_uniform(&[3, c, h, w], 0.0, 1.0, 4);
        let rec = record(&model, &x).unwrap();
        let first = rec
            .tape
            .nodes()
            .iter()
            .position(|n| matches!(n.op, Op::Linear { .. } | Op::Conv2d { .. }))
            .unwrap();
        let out_shape = rec.tape.value(first).unwrap().shape().to_vec();
        let r = Tensor::rand_uniform(&out_shape, -1.0, 1.0, 5);
        let fast = BasicRule::zbox(Tensor::scalar(0.0), Tensor::scalar(1.0))
            .relevance(&rec.tape, first, &r)
            .unwrap();
        let full = zbox_with(opaque_fill(0.0), InputMod::Fill(Tensor::scalar(1.0)))
            .relevance(&rec.tape, first, &r)
            .unwrap();
        assert!(full.max_abs() > 0.0);
        assert_eq!(fast.data(), full.data(), "{arch:?}");
    }
}

#[test]
fn bounds_shared_by_the_batch_are_convolved_once_with_the_same_result() {
    let model = pretrained::load(Architecture::VggSmall).unwrap();
    let x = Tensor::rand_uniform(&[5, 1, 28, 28], -1.0, 1.0, 6);
    let rec = record(&model, &x).unwrap();
    let first = rec
        .tape
        .nodes()
        .iter()
        .position(|n| matches!(n.op, Op::Conv2d { .. }))
        .unwrap();
    let out_shape = rec.tape.value(first).unwrap().shape().to_vec();
    let r = Tensor::rand_uniform(&out_shape, -1.0, 1.0, 7);
    let shared = BasicRule::zbox(Tensor::scalar(-1.0), Tensor::scalar(2.0))
        .relevance(&rec.tape, first, &r)
        .unwrap();
    let per_sample = zbox_with(opaque_fill(-1.0), opaque_fill(2.0))
        .relevance(&rec.tape, first, &r)
        .unwrap();
    assert!(per_sample.max_abs() > 0.0);
    assert_eq!(shared.data(), per_sample.data());
}

#[test]
fn epsilon_on_a_conv_matches_recomputing_z() {
    let model = pretrained::load(Architecture::VggSmall).unwrap();
    let x = Tensor::rand_uniform(&[4, 1, 28, 28], 0.0, 1.0, 8);
    let rec = record(&model, &x).unwrap();
    let convs: Vec<usize> = (0..rec.tape.nodes().len())
        .filter(|&i| matches!(rec.tape.nodes()[i].op, Op::Conv2d { .. }))
        .collect();
    // An identity written as a custom weight modification: the rule then recomputes z with
    // the convolution instead of reading the recorded output.
    let same = ParamMod::Custom(Arc::new(|w: &Tensor| w.clone()));
    let epsilon = |weight: ParamMod| BasicRule {
        name: "epsilon".into(),
        groups: vec![Group {
            branches: vec![Branch::new(InputMod::Identity, weight, ParamMod::Identity)],
            coefficient: 1.0,
            gate: Gate::All,
            stabilizer: Stabilizer::Epsilon(1e-3),
        }],
    };
    for &id in &convs[..2] {
        let out_shape = rec.tape.value(id).unwrap().shape().to_vec();
        let r = Tensor::rand_uniform(&out_shape, -1.0, 1.0, 9);
        let per_sample = epsilon(ParamMod::Identity)
            .relevance(&rec.tape, id, &r)
            .unwrap();
        let generic = epsilon(same.clone()).relevance(&rec.tape, id, &r).unwrap();
        assert!(generic.max_abs() > 0.0);
        assert_eq!(per_sample.data(), generic.data(), "conv node {id}");
    }
}
