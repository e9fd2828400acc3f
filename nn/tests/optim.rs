//! Optimizers: hand-checked updates, shared parameters, and the schedule.

use relprop_core::{Tape, Tensor};
use relprop_nn::{cosine_lr, Adam, Gradients, Linear, Mode, Module, Optimizer, Param, Sgd};

fn grads(pairs: &[(&str, &[f32])]) -> Gradients {
    let mut g = Gradients::default();
    for (name, v) in pairs {
        g.insert(*name, Tensor::from_vec(v.to_vec(), &[v.len()]).unwrap());
    }
    g
}

fn param(name: &str, v: &[f32]) -> Param {
    Param::new(name, Tensor::from_vec(v.to_vec(), &[v.len()]).unwrap())
}

fn close(a: &[f32], b: &[f32], tol: f32) {
    for (x, y) in a.iter().zip(b) {
        assert!((x - y).abs() <= tol, "{a:?} vs {b:?}");
    }
}

#[test]
fn sgd_momentum_and_weight_decay_match_pytorch() {
    let mut p = param("w", &[1.0, -2.0]);
    let g = grads(&[("w", &[0.5, 1.0])]);
    let mut opt = Sgd::new(0.1, 0.9, 0.0);
    opt.step(vec![&mut p], &g).unwrap(); // buf = g
    close(p.value.data(), &[0.95, -2.1], 1e-6);
    opt.step(vec![&mut p], &g).unwrap(); // buf = 0.9 g + g
    close(p.value.data(), &[0.95 - 0.095, -2.1 - 0.19], 1e-6);

    let mut p = param("w", &[2.0]);
    let mut opt = Sgd::new(0.1, 0.0, 0.5);
    opt.step(vec![&mut p], &grads(&[("w", &[1.0])])).unwrap(); // g + 0.5 * 2
    close(p.value.data(), &[1.8], 1e-6);

    // Nesterov: step = g + mu * buf.
    let mut p = param("w", &[0.0]);
    let mut opt = Sgd::new(1.0, 0.5, 0.0).with_nesterov(true);
    let g = grads(&[("w", &[1.0])]);
    opt.step(vec![&mut p], &g).unwrap(); // buf 1, step 1.5
    close(p.value.data(), &[-1.5], 1e-6);
    opt.step(vec![&mut p], &g).unwrap(); // buf 1.5, step 1.75
    close(p.value.data(), &[-3.25], 1e-6);
}

#[test]
fn adam_matches_pytorch_formula() {
    let mut p = param("w", &[1.0, 1.0]);
    let mut opt = Adam::new(0.01);
    let g = grads(&[("w", &[0.5, -3.0])]);
    // First step moves each weight by about lr against the gradient's sign.
    opt.step(vec![&mut p], &g).unwrap();
    close(p.value.data(), &[0.99, 1.01], 1e-6);
    assert_eq!(opt.steps_of("w"), 1);

    // Second step with another gradient, against the formula in f64.
    let g2 = [0.25f64, 1.0];
    opt.step(vec![&mut p], &grads(&[("w", &[0.25, 1.0])]))
        .unwrap();
    let g1 = [0.5f64, -3.0];
    for i in 0..2 {
        let m = 0.9 * (0.1 * g1[i]) + 0.1 * g2[i];
        let v = 0.999 * (0.001 * g1[i] * g1[i]) + 0.001 * g2[i] * g2[i];
        let (bc1, bc2) = (1.0 - 0.9f64.powi(2), 1.0 - 0.999f64.powi(2));
        let first = if i == 0 { 0.99 } else { 1.01 };
        let want = first - 0.01 / bc1 * m / (v.sqrt() / bc2.sqrt() + 1e-8);
        assert!((p.value.data()[i] as f64 - want).abs() < 1e-6);
    }

    // L2 weight decay enters the gradient: a zero gradient still shrinks the weight.
    let mut p = param("w", &[2.0]);
    let mut opt = Adam::new(0.1).with_weight_decay(0.1);
    opt.step(vec![&mut p], &grads(&[("w", &[0.0])])).unwrap();
    close(p.value.data(), &[1.9], 1e-6);
}

#[test]
fn optimizers_skip_buffers_and_missing_grads_and_check_shapes() {
    let mut buf = Param::buffer("bn.running_mean", Tensor::ones(&[2]));
    let mut other = param("other", &[3.0]);
    let g = grads(&[("bn.running_mean", &[1.0, 1.0])]);
    let mut opt = Adam::new(0.1);
    opt.step(vec![&mut buf, &mut other], &g).unwrap();
    assert_eq!(buf.value.data(), &[1.0, 1.0]);
    assert_eq!(other.value.data(), &[3.0]);

    let mut p = param("w", &[1.0, 2.0]);
    let bad = grads(&[("w", &[1.0])]);
    assert!(Sgd::new(0.1, 0.0, 0.0).step(vec![&mut p], &bad).is_err());
    assert!(Adam::new(0.1).step(vec![&mut p], &bad).is_err());
}

#[test]
fn shared_parameter_gradients_sum() {
    // y = W (W x): the weight is recorded twice under one name.
    let lin = Linear::from_params(
        "shared",
        Tensor::from_vec(vec![2.0], &[1, 1]).unwrap(),
        None,
    )
    .unwrap();
    let mut tape = Tape::new();
    let x = tape.constant(Tensor::from_vec(vec![3.0], &[1, 1]).unwrap());
    let h = lin.forward(&mut tape, x, Mode::Train).unwrap();
    let y = lin.forward(&mut tape, h, Mode::Train).unwrap();
    let g = Gradients::from_tape(&tape, &tape.grad(y).unwrap()).unwrap();
    // d(w^2 x)/dw = 2 w x = 12
    assert_eq!(g.get("shared.weight").unwrap().data(), &[12.0]);
    assert_eq!(g.len(), 1);
    assert!((g.global_norm() - 12.0).abs() < 1e-6);
    let mut g = g;
    assert_eq!(g.clip_global_norm(6.0), 12.0);
    assert!((g.global_norm() - 6.0).abs() < 1e-3);

    // An inference tape records parameters that want no gradient.
    let mut tape = Tape::for_inference();
    let x = tape.constant(Tensor::from_vec(vec![3.0], &[1, 1]).unwrap());
    let y = lin.forward(&mut tape, x, Mode::Eval).unwrap();
    let s = tape.grad(y).unwrap();
    assert!(Gradients::from_tape(&tape, &s).unwrap().is_empty());
}

#[test]
fn cosine_schedule() {
    assert_eq!(cosine_lr(0.1, 0, 10), 0.1);
    assert!((cosine_lr(0.1, 5, 10) - 0.05).abs() < 1e-7);
    assert!(cosine_lr(0.1, 10, 10).abs() < 1e-7);
    assert!(cosine_lr(0.1, 20, 10).abs() < 1e-7);
    assert_eq!(cosine_lr(0.1, 3, 0), 0.1);
    let mut last = f32::INFINITY;
    for s in 0..=10 {
        let lr = cosine_lr(1.0, s, 10);
        assert!(lr <= last);
        last = lr;
    }
    let mut opt = Sgd::new(0.1, 0.0, 0.0);
    opt.set_lr(0.5);
    assert_eq!(opt.lr(), 0.5);
}
