//! Property-based checks of the LRP rules over random architectures.
//!
//! A strategy draws small networks (an optional leading input normalisation `(x - mean) /
//! std`; convs, also grouped, depthwise, dilated, asymmetrically padded and bias-free ones;
//! ReLU, leaky ReLU, ReLU6, sigmoid, tanh; max and average pooling, flatten, linear;
//! residual blocks whose sum is an `add` node; two branches joined along channels by a
//! `concat` node; eval-mode BatchNorm after a conv, with or without a bias, folded by the
//! composites' canonizer), ending in flatten + linear to a few classes, with seeded random
//! weights and inputs. Every layer is labelled (`l3.conv`, `l5.res.conv1`, `l2.cat.a.conv`,
//! ...) so audits and failures name it, and a failing case prints its (shrunk)
//! architecture and input through `Arch`'s `Debug`.
//!
//! Properties:
//! - conservation with zero biases: LRP-0 and Epsilon(1e-9) at every node and across every
//!   cut of the main path (activations and the normalisation hand on exactly what they
//!   receive, a concat splits it exactly between its branches, so the input's relevance
//!   sums to the seed's); ZPlus where every output that receives relevance has positive
//!   contributions (z+ > 0); AlphaBeta (2,1) and (3,2) where it also has negative ones
//!   (z- < 0). The stabiliser's share `R eps / (|z| + eps)` is allowed for on top of the
//!   rounding tolerance `1e-3 * sum |R|`;
//! - with random biases, every affine rule hands on exactly its accounting: all of its
//!   relevance but the bias's share (Epsilon, LRP-0, ZPlus, AlphaBeta `alpha P - beta N`);
//! - every built-in composite is linear in the seed, and (with zero biases) explains each
//!   sample of a batch as it explains it alone;
//! - SGLRP maps sum to about 0 with zero biases; the two-pass variant sums to 0 exactly and
//!   equals the single pass;
//! - walks never change forward values, BatchNorm folding keeps the logits, and LRP-0 with
//!   the target score as seed equals gradient x input;
//! - the fast path of every affine rule equals the reference recipe, layer by layer and
//!   for every composite end to end (`reference.rs`);
//! - no composite and method gives NaN or infinity on all-zero, huge (1e4), tiny (1e-20)
//!   inputs or on a saturated softmax.
//!
//! Cases per property: 64, or `PROPTEST_CASES` when set.

mod arch;
mod fixed;
mod flows;
mod model;
mod reference;

use arch::*;
use fixed::batch_independence;
use flows::*;
use proptest::prelude::*;
use proptest::test_runner::Config;
use relprop::core::{Tape, Tensor};
use relprop::explain::audit::per_sample_sums;
use relprop::explain::{explain, record, Composite, Method, Recorded, Seed, Targets};
use relprop::nn::Module;

/// Cases per property: `PROPTEST_CASES` if set, else a modest default.
pub(crate) fn config() -> Config {
    let mut c = Config {
        failure_persistence: None,
        ..Config::default()
    };
    if std::env::var_os("PROPTEST_CASES").is_none() {
        c.cases = 64;
    }
    c
}

// ---------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config())]

    /// LRP-0 and Epsilon(1e-9) with zero biases: every node hands on what it receives, and
    /// every cut through the main path holds the seed's relevance.
    #[test]
    fn lrp0_and_epsilon_conserve_layer_by_layer(arch in arch()) {
        let model = arch.model(Bias::Zero);
        let x = arch.x();
        for (composite, eps) in [(Composite::zero(), 0.0), (Composite::epsilon(1e-9), 1e-9)] {
            let rec = recorded(&model, &x, &composite);
            let (seed, live) = seed_at_largest_logit(rec.logits());
            let rules = composite.resolve(&rec.tape);
            let (_, signals) = rec.walk(&seed, &rules).unwrap();
            let n = live.len();
            // Local: at every node. Stabilisers keep back their share; the sum over all
            // nodes bounds what they keep back between two cuts.
            let mut kept_back = vec![0.0; n];
            for fl in flows(&rec.tape, &rules, &signals, n) {
                let r_out = signals.get(fl.id).unwrap();
                for i in (0..n).filter(|&i| live[i]) {
                    let share = stabiliser_share(&rec.tape, fl.id, r_out, i, eps);
                    kept_back[i] += share;
                    let allowed = 1e-3 * fl.out_abs[i].max(fl.in_abs[i]) + share + 1e-9;
                    let err = (fl.in_sum[i] - fl.out_sum[i]).abs();
                    prop_assert!(
                        err <= allowed,
                        "{}: sample {i} at {}: relevance in {:+.6e}, out {:+.6e}, |diff| {:.3e} > {:.3e}{:?}",
                        composite.name, fl.label, fl.in_sum[i], fl.out_sum[i], err, allowed, arch
                    );
                }
            }
            // Cuts: the labelled nodes of the main path, from the logits to the input.
            let mut cuts: Vec<(String, Vec<f64>, Vec<f64>)> = vec![(
                "seed".into(),
                per_sample_sums(&seed),
                abs_sums(&seed),
            )];
            for (id, node) in rec.tape.nodes().iter().enumerate().rev() {
                let label = match &node.label {
                    _ if id == rec.input => "input".to_string(),
                    Some(l) if !node.op.inputs().is_empty() && on_main_path(l) => l.clone(),
                    _ => continue,
                };
                let s = signals.get_or_zeros(&rec.tape, id).unwrap();
                cuts.push((label, per_sample_sums(&s), abs_sums(&s)));
            }
            for pair in cuts.windows(2) {
                let ((la, sa, aa), (lb, sb, ab)) = (&pair[0], &pair[1]);
                for i in (0..n).filter(|&i| live[i]) {
                    let allowed = 1e-3 * aa[i].max(ab[i]) + kept_back[i] + 1e-9;
                    let err = (sa[i] - sb[i]).abs();
                    prop_assert!(
                        err <= allowed,
                        "{}: sample {i}: cut {la} sums to {:+.6e} but cut {lb} to {:+.6e} (|diff| {:.3e} > {:.3e}){:?}",
                        composite.name, sa[i], sb[i], err, allowed, arch
                    );
                }
            }
        }
    }

    /// ZPlus conserves wherever every output that receives relevance has z+ > 0.
    #[test]
    fn zplus_conserves_where_positive_contributions_exist(arch in arch()) {
        check_sign_rule(&arch, &zplus(), 1.0, 0.0)?;
    }

    /// AlphaBeta with alpha - beta = 1 conserves where both z+ > 0 and z- < 0.
    #[test]
    fn alpha_beta_conserves_where_both_signs_exist(arch in arch()) {
        check_sign_rule(&arch, &alpha_beta(2.0, 1.0), 2.0, 1.0)?;
        check_sign_rule(&arch, &alpha_beta(3.0, 2.0), 3.0, 2.0)?;
    }

    /// With biases, each affine rule hands on all but the bias's share: Epsilon and LRP-0
    /// `z - b` of `z`, ZPlus the share of `z+` without `b+`, AlphaBeta alpha P - beta N.
    #[test]
    fn affine_rules_lose_exactly_the_bias_share(arch in arch()) {
        check_accounting(&arch, &Composite::zero(), Accounting::Epsilon(0.0))?;
        check_accounting(&arch, &Composite::epsilon(1e-9), Accounting::Epsilon(1e-9))?;
        check_accounting(&arch, &Composite::epsilon(0.25), Accounting::Epsilon(0.25))?;
        check_accounting(&arch, &zplus(), Accounting::AlphaBeta(1.0, 0.0))?;
        check_accounting(&arch, &alpha_beta(2.0, 1.0), Accounting::AlphaBeta(2.0, 1.0))?;
        check_accounting(&arch, &alpha_beta(3.0, 2.0), Accounting::AlphaBeta(3.0, 2.0))?;
    }

    /// With zero biases, explaining a batch gives every sample the map it gets alone.
    #[test]
    fn relevance_does_not_depend_on_the_batch_without_bias(arch in arch()) {
        if let Err(e) = batch_independence(&arch, Bias::Zero) {
            prop_assert!(false, "{}", e);
        }
    }

    /// R(a s1 + b s2) = a R(s1) + b R(s2) for every built-in composite.
    #[test]
    fn every_composite_is_linear_in_the_seed(
        arch in arch(),
        a in -2.0f32..2.0,
        b in -2.0f32..2.0,
        seed_seed in any::<u64>(),
    ) {
        let model = arch.model(Bias::Random);
        let x = arch.x();
        let n = arch.input[0];
        let c = match arch.layers.last() {
            Some(Layer::Linear { fout, .. }) => *fout,
            _ => unreachable!("every architecture ends in a linear layer"),
        };
        let s1 = Tensor::rand_normal(&[n, c], 0.0, 1.0, seed_seed);
        let s2 = Tensor::rand_normal(&[n, c], 0.0, 1.0, seed_seed ^ 0x9E37_79B9);
        let mix = s1.mul_scalar(a).add(&s2.mul_scalar(b)).unwrap();
        for composite in builtin_composites() {
            let r = |s: &Tensor| {
                let m = Method::Lrp { composite: composite.clone(), seed: Seed::Tensor(s.clone()) };
                explain(&model, &x, &Targets::Argmax, &m).map(|a| a.relevance)
            };
            let (r1, r2, rm) = (r(&s1), r(&s2), r(&mix));
            prop_assert!(r1.is_ok() && r2.is_ok() && rm.is_ok(), "{}: explain failed{:?}", composite.name, arch);
            let (r1, r2, rm) = (r1.unwrap(), r2.unwrap(), rm.unwrap());
            let combined = r1.mul_scalar(a).add(&r2.mul_scalar(b)).unwrap();
            let diff = rm.data().iter().zip(combined.data())
                .fold(0.0f32, |m, (p, q)| m.max((p - q).abs()));
            let scale = a.abs() * r1.max_abs() + b.abs() * r2.max_abs();
            prop_assert!(
                diff <= 1e-3 * scale + 1e-30,
                "{}: R(a s1 + b s2) differs from a R(s1) + b R(s2) by {diff:.3e} (scale {scale:.3e}, a {a}, b {b}){:?}",
                composite.name, arch
            );
        }
    }

    /// With zero biases the SGLRP map sums to about 0; the two-pass map sums to 0 up to the
    /// rounding of its final subtraction and equals the single pass.
    #[test]
    fn sglrp_maps_sum_to_zero_without_bias(arch in arch()) {
        let model = arch.model(Bias::Zero);
        let x = arch.x();
        let logits = record(&model, &x).unwrap().logits().clone();
        let c = logits.shape()[1];
        // Every logit carries seed: one at (numerically) 0 passes nothing on.
        let live: Vec<bool> = logits.data().chunks(c)
            .map(|row| row.iter().all(|z| z.abs() >= 1e-4))
            .collect();
        // The two maps agree as far as the passes conserve; the Norm rule's stabiliser
        // leaks at sums and pools near 0, so equality is checked with an unstabilised Norm
        // (or on nets without such nodes).
        let has_norm = arch.has_norm();
        // A sigmoid gives outputs with z = 0 relevance that every rule drops or absorbs
        // (see `stabiliser_share`): the single-pass map then need not sum to 0, nor equal
        // the two-pass one, which sums to 0 by construction and is still checked.
        let conserves = !arch.has_sigmoid();
        let unstabilised = Composite::epsilon(1e-9)
            .op("add", ExactNorm)
            .op("avg_pool2d", ExactNorm);
        for (composite, compare, stabilised) in [
            (Composite::epsilon(1e-9), !has_norm && conserves, Some(1e-9)),
            (Composite::zero(), !has_norm && conserves, Some(0.0)),
            (unstabilised, conserves, None),
        ] {
            let single = explain(&model, &x, &Targets::Argmax, &Method::Sglrp { composite: composite.clone() }).unwrap();
            let seed = Seed::SoftmaxGradient.build(&logits, &single.targets).unwrap().seed;
            let seed_l1 = abs_sums(&seed);
            let sums = per_sample_sums(&single.relevance);
            let abs = abs_sums(&single.relevance);
            let input_row = single.audit.rows.iter().find(|r| r.label == "input").unwrap();
            // What the stabilisers keep back on the walk (the Norm rule's at sums and pools
            // with z near 0), exactly as the layer-by-layer check allows for it.
            let kept_back = match stabilised {
                Some(eps) => kept_back(&model, &x, &composite, &seed, eps),
                None => vec![0.0; live.len()],
            };
            for i in (0..live.len()).filter(|&i| live[i] && conserves) {
                let allowed = 1e-3 * seed_l1[i] + 1e-4 * abs[i] + kept_back[i] + 1e-12;
                prop_assert!(
                    sums[i].abs() <= allowed,
                    "{}: SGLRP map of sample {i} sums to {:+.3e} (seed L1 {:.3e}, map L1 {:.3e}, audit error {:.2e}){:?}",
                    composite.name, sums[i], seed_l1[i], abs[i], input_row.errors[i], arch
                );
            }
            let two = explain(
                &model, &x, &Targets::Argmax,
                &Method::SglrpTwoPass { composite: composite.clone(), positive_only: false },
            ).unwrap();
            // Both maps are differences of a target map T (seed: the positive part of the
            // SGLRP seed) and a dual map; they may cancel to almost nothing (one hidden
            // unit, say), so rounding is measured on the scale of T.
            let target_part = Method::Lrp { composite: composite.clone(), seed: Seed::Tensor(seed.relu()) };
            let t_map = explain(&model, &x, &Targets::Argmax, &target_part).unwrap().relevance;
            let t_abs = abs_sums(&t_map);
            let sums2 = per_sample_sums(&two.relevance);
            let abs2 = abs_sums(&two.relevance);
            for i in 0..live.len() {
                prop_assert!(
                    sums2[i].abs() <= 1e-5 * abs2[i].max(t_abs[i]) + 1e-30,
                    "{}: two-pass SGLRP map of sample {i} sums to {:+.3e} (L1 {:.3e}, target map L1 {:.3e}){:?}",
                    composite.name, sums2[i], abs2[i], t_abs[i], arch
                );
            }
            if compare && live.iter().all(|&l| l) {
                let diff = two.relevance.sub(&single.relevance).unwrap().max_abs();
                let scale = t_map.max_abs().max(single.relevance.max_abs());
                prop_assert!(
                    diff <= 1e-3 * scale + 1e-30,
                    "{}: two-pass and single-pass SGLRP differ by {diff:.3e} (target map scale {scale:.3e}){:?}",
                    composite.name, arch
                );
            }
        }
    }

    /// Walks never touch forward values; BatchNorm folding keeps the logits; LRP-0 seeded
    /// with the target score is gradient x input.
    #[test]
    fn forward_values_folding_and_lrp0_equal_gradient_x_input(arch in arch()) {
        let model = arch.model(Bias::Random);
        let x = arch.x();
        let rec = record(&model, &x).unwrap();
        let bits = |t: &Tape| -> Vec<Vec<u32>> {
            t.nodes().iter().map(|n| n.value.data().iter().map(|v| v.to_bits()).collect()).collect()
        };
        let before = bits(&rec.tape);
        let mut composites = builtin_composites();
        composites.extend([zplus(), alpha_beta(2.0, 1.0), alpha_beta(3.0, 2.0)]);
        for composite in &composites {
            let canon = composite.canonize(&rec.tape).unwrap();
            let canon_before = bits(&canon);
            let logits = canon.value(rec.output).unwrap();
            let e = logits.max_rel_diff(rec.logits()).unwrap();
            prop_assert!(e <= 1e-5, "{}: canonizing changed the logits by {e:.3e}{:?}", composite.name, arch);
            let seed = Seed::OneHot.build(logits, &vec![0; arch.input[0]]).unwrap().seed;
            let walked = Recorded { tape: canon, input: rec.input, output: rec.output };
            walked.walk(&seed, &composite.resolve(&walked.tape)).unwrap();
            prop_assert!(bits(&walked.tape) == canon_before, "{}: a walk changed forward values{:?}", composite.name, arch);
        }
        prop_assert!(bits(&rec.tape) == before, "canonizing or walking changed the recorded pass{:?}", arch);

        // LRP-0 seeded with the target score is gradient x input, exactly when sums and
        // average pools are split without a stabiliser; the built-in Norm rule's 1e-6
        // moves a sum that nearly cancels, so it is compared only on nets without one.
        // Saturating activations and a normalised input make the two differ by design.
        if !arch.lrp0_is_gradient_x_input() {
            return Ok(());
        }
        let gxi = explain(&model, &x, &Targets::Argmax, &Method::GradientXInput).unwrap().relevance;
        let exact = Composite::zero().op("add", ExactNorm).op("avg_pool2d", ExactNorm);
        let has_norm = arch.has_norm();
        let mut cases = vec![("zero with an unstabilised Norm", exact)];
        if !has_norm {
            cases.push(("zero", Composite::zero()));
        }
        for (name, composite) in cases {
            let lrp0 = Method::Lrp { composite, seed: Seed::TargetScore };
            let r = explain(&model, &x, &Targets::Argmax, &lrp0).unwrap().relevance;
            let e = r.max_rel_diff(&gxi).unwrap();
            prop_assert!(
                e <= 1e-4,
                "LRP-0 ({name}, target score seed) and gradient x input differ by {e:.3e} (batchnorm: {}){:?}",
                arch.has_batchnorm(), arch
            );
        }
    }

    /// No composite and method gives NaN or infinity on degenerate inputs or logits.
    #[test]
    fn no_nan_or_infinity_on_extreme_inputs(arch in arch()) {
        let model = arch.model(Bias::Random);
        let x = arch.x();
        let inputs = [
            ("all-zero", Tensor::zeros(x.shape())),
            ("1e4", x.mul_scalar(1e4)),
            ("1e-20", x.mul_scalar(1e-20)),
        ];
        let methods = |c: &Composite| vec![
            Method::Lrp { composite: c.clone(), seed: Seed::OneHot },
            Method::Sglrp { composite: c.clone() },
            Method::SglrpTwoPass { composite: c.clone(), positive_only: false },
            Method::Clrp1 { composite: c.clone() },
            Method::Clrp2 { composite: c.clone() },
        ];
        for composite in builtin_composites() {
            for (what, input) in &inputs {
                for (k, m) in methods(&composite).iter().enumerate() {
                    let a = explain(&model, input, &Targets::Argmax, m);
                    prop_assert!(
                        matches!(&a, Ok(a) if a.relevance.all_finite() && a.audit.rows.iter().all(|r| r.sums.iter().all(|s| s.is_finite()))),
                        "{} (method #{k}) on {what} inputs: {:?}{:?}",
                        composite.name, a.err().map(|e| e.to_string()), arch
                    );
                }
            }
        }
        // Saturate the softmax: scale the output layer up until y_t = 1 in f32.
        let mut saturated = model;
        let head = arch.head();
        for p in saturated.params_mut() {
            if p.name.starts_with(&head) {
                p.value = p.value.mul_scalar(1e4);
            }
        }
        for composite in builtin_composites() {
            for m in [
                Method::Sglrp { composite: composite.clone() },
                Method::SglrpTwoPass { composite: composite.clone(), positive_only: false },
            ] {
                let a = explain(&saturated, &x, &Targets::Argmax, &m);
                prop_assert!(
                    matches!(&a, Ok(a) if a.relevance.all_finite()),
                    "{} on a saturated softmax: {:?}{:?}",
                    composite.name, a.err().map(|e| e.to_string()), arch
                );
            }
        }
    }
}
