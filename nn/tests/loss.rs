//! Cross-entropy: hand values, stability, errors, gradients and gradcheck of a small net.

use proptest::prelude::*;
use relprop_core::{gradcheck, GradcheckOptions, NodeId, Result, Rng, Tape, Tensor};
use relprop_nn::{
    accuracy, cross_entropy, soft_cross_entropy, Gradients, Linear, Mode, Module, Relu, Sequential,
};

fn t(data: &[f32], shape: &[usize]) -> Tensor {
    Tensor::from_vec(data.to_vec(), shape).unwrap()
}

fn ce(logits: &Tensor, targets: &[usize]) -> (f32, Tensor) {
    let mut tape = Tape::new();
    let z = tape.leaf(logits.clone());
    let l = cross_entropy(&mut tape, z, targets).unwrap();
    let g = tape.grad(l).unwrap();
    (
        tape.value(l).unwrap().item().unwrap(),
        g.get(z).unwrap().clone(),
    )
}

#[test]
fn cross_entropy_matches_hand_value_and_gradient() {
    let z = t(&[1.0, 2.0, 3.0, 1.0, 2.0, 3.0], &[2, 3]);
    let (loss, grad) = ce(&z, &[2, 0]);
    // lse = ln(e + e^2 + e^3) = 3.40760596; losses 0.40760596 and 2.40760596.
    assert!((loss - 1.407_606).abs() < 1e-5, "{loss}");
    // (softmax - onehot) / n
    let sm = z.softmax(1).unwrap();
    let onehot = [0.0, 0.0, 1.0, 1.0, 0.0, 0.0];
    for ((g, s), o) in grad.data().iter().zip(sm.data()).zip(onehot) {
        assert!((g - (s - o) / 2.0).abs() < 1e-6);
    }
    // The loss is a scalar node.
    let mut tape = Tape::new();
    let zi = tape.constant(z);
    let l = cross_entropy(&mut tape, zi, &[2, 0]).unwrap();
    assert_eq!(tape.value(l).unwrap().shape(), &[] as &[usize]);
}

#[test]
fn cross_entropy_is_finite_for_huge_logits() {
    let z = t(&[1e4, -1e4, 0.0, -1e4, 1e4, 1e4], &[2, 3]);
    let (loss, grad) = ce(&z, &[1, 0]);
    assert!(loss.is_finite());
    // sample 0: -(-1e4 - 1e4) = 2e4; sample 1: 2e4 + ln 2.
    assert!((loss - (2e4 + 0.5 * 2f32.ln())).abs() < 2.0, "{loss}");
    assert!(grad.all_finite());
    let (small, _) = ce(&z, &[0, 1]);
    assert!((small - 0.5 * 2f32.ln()).abs() < 1e-3, "{small}");
}

#[test]
fn bad_targets_are_errors_not_panics() {
    let mut tape = Tape::new();
    let z = tape.constant(Tensor::zeros(&[2, 3]));
    assert!(cross_entropy(&mut tape, z, &[0, 3]).is_err());
    assert!(cross_entropy(&mut tape, z, &[0]).is_err());
    assert!(soft_cross_entropy(&mut tape, z, &Tensor::zeros(&[2, 4])).is_err());
    let v = tape.constant(Tensor::zeros(&[3]));
    assert!(cross_entropy(&mut tape, v, &[0, 0, 0]).is_err());
}

#[test]
fn soft_cross_entropy_hand_value() {
    let z = t(&[1.0, 2.0, 3.0, 0.0, 0.0, 0.0], &[2, 3]);
    let p = t(&[0.0, 0.0, 1.0, 0.5, 0.5, 0.0], &[2, 3]);
    let mut tape = Tape::new();
    let zi = tape.leaf(z.clone());
    let l = soft_cross_entropy(&mut tape, zi, &p).unwrap();
    // 0.40760596 and ln 3 (uniform logits), averaged.
    let want = (0.407_606 + 3f32.ln()) / 2.0;
    assert!((tape.value(l).unwrap().item().unwrap() - want).abs() < 1e-5);
    // One-hot soft targets equal hard targets.
    let (hard, _) = ce(&z, &[2, 1]);
    let mut tape = Tape::new();
    let zi = tape.leaf(z);
    let onehot = t(&[0.0, 0.0, 1.0, 0.0, 1.0, 0.0], &[2, 3]);
    let l = soft_cross_entropy(&mut tape, zi, &onehot).unwrap();
    assert!((tape.value(l).unwrap().item().unwrap() - hard).abs() < 1e-6);
}

#[test]
fn accuracy_counts_argmax_hits() {
    let z = t(&[0.1, 0.9, 0.8, 0.2, 0.3, 0.7, 0.5, 0.4], &[4, 2]);
    assert_eq!(accuracy(&z, &[1, 0, 0, 0]), 0.75);
    assert!(accuracy(&z, &[1, 0]).is_nan());
}

fn mlp() -> Sequential {
    let mut rng = Rng::new(11);
    Sequential::new("")
        .with(Linear::new("fc1", 4, 6, true, &mut rng))
        .with(Relu::named("relu1"))
        .with(Linear::new("fc2", 6, 3, true, &mut rng))
}

/// Linear -> ReLU -> Linear -> cross-entropy, with every tensor a leaf given by the check.
fn manual_net(tape: &mut Tape, ids: &[NodeId], targets: &[usize]) -> Result<NodeId> {
    let h = tape.linear(ids[0], ids[1], Some(ids[2]))?;
    let h = tape.relu(h)?;
    let z = tape.linear(h, ids[3], Some(ids[4]))?;
    cross_entropy(tape, z, targets)
}

#[test]
fn small_net_loss_passes_gradcheck_for_input_and_weights() {
    let model = mlp();
    // Finite differences straddling a ReLU kink disagree with any derivative, so pick an
    // input whose hidden pre-activations all keep clear of zero.
    let margin = |x: &Tensor| {
        let p = model.params();
        let h = x.linear(&p[0].value, Some(&p[1].value)).unwrap();
        h.data().iter().fold(f32::INFINITY, |m, v| m.min(v.abs()))
    };
    let x = (0..)
        .map(|seed| Tensor::rand_normal(&[5, 4], 0.0, 1.0, seed))
        .find(|x| margin(x) > 0.1)
        .unwrap();
    let targets = [0, 2, 1, 1, 0];

    // With respect to the input, through the layers themselves.
    gradcheck(
        |tape, ids| {
            let z = model.forward(tape, ids[0], Mode::Train)?;
            cross_entropy(tape, z, &targets)
        },
        std::slice::from_ref(&x),
        GradcheckOptions::default(),
    )
    .unwrap();

    // With respect to the input and every weight: the same ops, weights as checked leaves.
    let mut inputs = vec![x.clone()];
    inputs.extend(model.params().iter().map(|p| p.value.clone()));
    for seed in 0..4 {
        let opts = GradcheckOptions {
            seed,
            ..Default::default()
        };
        gradcheck(|tape, ids| manual_net(tape, ids, &targets), &inputs, opts).unwrap();
    }

    // The layers' named gradients equal the checked leaves' gradients exactly.
    let mut tape = Tape::new();
    let ids: Vec<NodeId> = inputs.iter().map(|v| tape.leaf(v.clone())).collect();
    let l = manual_net(&mut tape, &ids, &targets).unwrap();
    let want = tape.grad(l).unwrap();

    let mut tape = Tape::new();
    let xi = tape.constant(x);
    let z = model.forward(&mut tape, xi, Mode::Train).unwrap();
    let l = cross_entropy(&mut tape, z, &targets).unwrap();
    let grads = Gradients::from_tape(&tape, &tape.grad(l).unwrap()).unwrap();
    assert_eq!(grads.len(), 4);
    for (p, &id) in model.params().iter().zip(&ids[1..]) {
        assert_eq!(
            grads.get(&p.name).unwrap(),
            want.get(id).unwrap(),
            "{}",
            p.name
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn cross_entropy_is_finite_nonnegative_and_grad_rows_sum_to_zero(
        logits in proptest::collection::vec(-1e4f32..1e4, 12),
        targets in proptest::collection::vec(0usize..4, 3),
    ) {
        let z = Tensor::from_vec(logits, &[3, 4]).unwrap();
        let (loss, grad) = ce(&z, &targets);
        prop_assert!(loss.is_finite() && loss >= 0.0);
        prop_assert!(grad.all_finite());
        for row in grad.data().chunks(4) {
            prop_assert!(row.iter().sum::<f32>().abs() < 1e-5);
        }
    }
}
