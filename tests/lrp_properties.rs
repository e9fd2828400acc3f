//! Properties every LRP implementation should have, checked on zoo architectures with
//! random weights: conservation-based identities, and rules never touching forward values.

use relprop::core::Tensor;
use relprop::explain::{explain, record, Composite, Method, Seed, Targets};
use relprop::nn::Module;
use relprop::zoo::{Architecture, Model};

/// A model with random weights; with `bias_free`, every bias set to 0.
fn model(arch: Architecture, seed: u64, bias_free: bool) -> Model {
    let mut m = arch.build(seed);
    if bias_free {
        for p in m.params_mut() {
            if p.name.ends_with(".bias") {
                p.value = Tensor::zeros(p.value.shape());
            }
        }
    }
    m
}

fn input(n: usize, seed: u64) -> Tensor {
    Tensor::rand_uniform(&[n, 1, 28, 28], 0.0, 1.0, seed)
}

fn bdt() -> Composite {
    Composite::bounded_deep_taylor(Tensor::scalar(0.0), Tensor::scalar(1.0))
}

fn per_sample(t: &Tensor) -> Vec<f64> {
    let per = t.numel() / t.shape()[0];
    t.data()
        .chunks(per)
        .map(|c| c.iter().map(|&v| v as f64).sum())
        .collect()
}

#[test]
fn sglrp_sums_to_zero_on_bias_free_nets() {
    for arch in [
        Architecture::Lenet5,
        Architecture::VggSmall,
        Architecture::Mlp,
    ] {
        let m = model(arch, 3, true);
        let a = explain(
            &m,
            &input(4, 9),
            &Targets::Argmax,
            &Method::Sglrp { composite: bdt() },
        )
        .unwrap();
        // The seed sums to 0; conserving rules keep that sum, up to the stabiliser's share.
        let input_row = a.audit.rows.iter().find(|r| r.label == "input").unwrap();
        println!("{}", a.audit);
        assert!(
            input_row.max_error() < 1e-2,
            "{arch}: input relevance sum off by {:.2e} of the seed",
            input_row.max_error()
        );
    }
}

#[test]
fn two_pass_sglrp_sums_to_zero_and_matches_single_pass_without_bias() {
    for arch in [Architecture::Lenet5, Architecture::Mlp] {
        let m = model(arch, 4, true);
        let x = input(3, 2);
        let single = explain(
            &m,
            &x,
            &Targets::Class(3),
            &Method::Sglrp { composite: bdt() },
        )
        .unwrap()
        .relevance;
        let two = explain(
            &m,
            &x,
            &Targets::Class(3),
            &Method::SglrpTwoPass {
                composite: bdt(),
                positive_only: false,
            },
        )
        .unwrap()
        .relevance;
        for s in per_sample(&two) {
            assert!(
                s.abs() < 1e-6 * two.abs_sum() as f64,
                "{arch}: two-pass sum {s:e}"
            );
        }
        let e = two.max_rel_diff(&single).unwrap();
        assert!(
            e < 1e-3,
            "{arch}: two-pass and single pass differ by {e:.2e}"
        );
    }
}

#[test]
fn lrp_zero_equals_gradient_times_input_on_relu_nets() {
    // With the target score as seed, LRP-0 is exactly input x gradient (biases included).
    for arch in [
        Architecture::Mlp,
        Architecture::Lenet5,
        Architecture::VggSmall,
    ] {
        let m = model(arch, 5, false);
        let x = input(2, 6);
        let lrp0 = Method::Lrp {
            composite: Composite::zero(),
            seed: Seed::TargetScore,
        };
        let r = explain(&m, &x, &Targets::Argmax, &lrp0).unwrap().relevance;
        let gxi = explain(&m, &x, &Targets::Argmax, &Method::GradientXInput)
            .unwrap()
            .relevance;
        let e = r.max_rel_diff(&gxi).unwrap();
        assert!(
            e < 1e-4,
            "{arch}: LRP-0 vs gradient x input differ by {e:.2e}"
        );
    }
}

#[test]
fn no_rule_changes_forward_values() {
    let m = model(Architecture::Lenet5, 7, false);
    let x = input(2, 8);
    let rec = record(&m, &x).unwrap();
    let before: Vec<Tensor> = rec.tape.nodes().iter().map(|n| n.value.clone()).collect();
    let (l, h) = (Tensor::scalar(0.0), Tensor::scalar(1.0));
    for c in [
        Composite::epsilon_plus(1e-6),
        Composite::epsilon_alpha2_beta1(1e-6),
        Composite::epsilon_gamma_box(l.clone(), h.clone(), 1e-6),
        Composite::epsilon_plus_flat(1e-6),
        Composite::bounded_deep_taylor(l, h),
    ] {
        let seed = Seed::OneHot.build(rec.logits(), &[1, 2]).unwrap().seed;
        rec.walk(&seed, &c.resolve(&rec.tape)).unwrap();
    }
    let after: Vec<Tensor> = rec.tape.nodes().iter().map(|n| n.value.clone()).collect();
    assert_eq!(before, after);
}

#[test]
fn epsilon_plus_conserves_layer_by_layer_without_bias() {
    let m = model(Architecture::Lenet5, 11, true);
    let a = explain(
        &m,
        &input(2, 12),
        &Targets::Argmax,
        &Method::Lrp {
            composite: Composite::epsilon_plus(1e-9),
            seed: Seed::OneHot,
        },
    )
    .unwrap();
    assert!(!a.audit.rows.is_empty());
    for row in &a.audit.rows {
        assert!(
            row.max_error() < 1e-4,
            "{}: conservation error {:.2e}\n{}",
            row.label,
            row.max_error(),
            a.audit
        );
    }
}
