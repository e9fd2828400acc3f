//! BatchNorm2d: hand-computed train and eval outputs, PyTorch's running-stat update.

use relprop_core::{Op, Tape, Tensor};
use relprop_nn::{BatchNorm2d, Gradients, Mode, Module};

fn run(bn: &BatchNorm2d, x: &Tensor, mode: Mode) -> (Tape, Vec<f32>) {
    let mut tape = Tape::new();
    let xi = tape.leaf(x.clone());
    let y = bn.forward(&mut tape, xi, mode).unwrap();
    let v = tape.value(y).unwrap().data().to_vec();
    (tape, v)
}

fn close(a: &[f32], b: &[f32], tol: f32) {
    for (x, y) in a.iter().zip(b) {
        assert!((x - y).abs() <= tol, "{a:?} vs {b:?}");
    }
}

/// One channel, N=2, H=1, W=2: values 1, 2, 3, 4; mean 2.5, biased variance 1.25.
fn example() -> (BatchNorm2d, Tensor) {
    let mut bn = BatchNorm2d::new("bn", 1);
    bn.weight.value = Tensor::full(&[1], 2.0);
    bn.bias.value = Tensor::full(&[1], 1.0);
    let x = Tensor::from_vec(vec![1.0, 2.0, 3.0, 4.0], &[2, 1, 1, 2]).unwrap();
    (bn, x)
}

#[test]
fn hand_computed_train_and_eval_outputs() {
    let (bn, x) = example();
    let (tape, train) = run(&bn, &x, Mode::Train);
    let s = (1.25f32 + 1e-5).sqrt();
    let want: Vec<f32> = x.data().iter().map(|v| (v - 2.5) / s * 2.0 + 1.0).collect();
    close(&train, &want, 1e-5);
    let id = tape.find("bn").unwrap();
    assert!(
        matches!(&tape.node(id).unwrap().op, Op::BatchNorm2d { stats, .. } if stats.from_batch)
    );

    // Eval with the initial running stats (mean 0, var 1).
    let (_, eval) = run(&bn, &x, Mode::Eval);
    let s = (1.0f32 + 1e-5).sqrt();
    let want: Vec<f32> = x.data().iter().map(|v| v / s * 2.0 + 1.0).collect();
    close(&eval, &want, 1e-5);
    assert_ne!(train, eval, "train and eval must differ");
}

#[test]
fn running_stats_update_like_pytorch() {
    let (mut bn, x) = example();
    let (tape, _) = run(&bn, &x, Mode::Train);
    bn.update_running_stats(&tape).unwrap();
    // mean: 0.9*0 + 0.1*2.5; var: 0.9*1 + 0.1 * 1.25 * 4/3 (unbiased).
    let rv = 0.9 + 0.1 * 1.25 * 4.0 / 3.0;
    close(bn.running_mean.value.data(), &[0.25], 1e-6);
    close(bn.running_var.value.data(), &[rv], 1e-6);

    // A second step compounds.
    let (tape, _) = run(&bn, &x, Mode::Train);
    bn.update_running_stats(&tape).unwrap();
    close(bn.running_mean.value.data(), &[0.9 * 0.25 + 0.25], 1e-6);
    close(
        bn.running_var.value.data(),
        &[0.9 * rv + 0.1 * 1.25 * 4.0 / 3.0],
        1e-6,
    );

    // Eval now uses the updated statistics.
    let (_, eval) = run(&bn, &x, Mode::Eval);
    let (m, v) = (
        bn.running_mean.value.data()[0],
        bn.running_var.value.data()[0],
    );
    let want: Vec<f32> = x
        .data()
        .iter()
        .map(|a| (a - m) / (v + 1e-5).sqrt() * 2.0 + 1.0)
        .collect();
    close(&eval, &want, 1e-5);

    // An eval-mode tape leaves the running statistics alone.
    let before = bn.running_var.value.clone();
    let (tape, _) = run(&bn, &x, Mode::Eval);
    bn.update_running_stats(&tape).unwrap();
    assert_eq!(bn.running_var.value, before);
}

#[test]
fn several_channels_and_momentum() {
    let mut bn = BatchNorm2d::new("bn", 2);
    bn.momentum = 0.5;
    // [2, 2, 1, 1]: channel 0 sees 0 and 2, channel 1 sees 10 and 30.
    let x = Tensor::from_vec(vec![0.0, 10.0, 2.0, 30.0], &[2, 2, 1, 1]).unwrap();
    let (tape, y) = run(&bn, &x, Mode::Train);
    let s0 = (1.0f32 + 1e-5).sqrt();
    let s1 = (100.0f32 + 1e-5).sqrt();
    close(&y, &[-1.0 / s0, -10.0 / s1, 1.0 / s0, 10.0 / s1], 1e-5);
    bn.update_running_stats(&tape).unwrap();
    close(bn.running_mean.value.data(), &[0.5, 10.0], 1e-5);
    // unbiased: var * 2 / 1
    close(bn.running_var.value.data(), &[1.5, 100.5], 1e-4);
}

#[test]
fn buffers_get_no_gradient_and_params_do() {
    let (bn, x) = example();
    let (tape, _) = run(&bn, &x, Mode::Train);
    let y = tape.find("bn").unwrap();
    let seed = Tensor::from_vec(vec![1.0, -1.0, 0.5, 2.0], &[2, 1, 1, 2]).unwrap();
    let signals = tape.backward(y, &seed, &relprop_core::Exact).unwrap();
    let grads = Gradients::from_tape(&tape, &signals).unwrap();
    assert_eq!(grads.names(), ["bn.bias", "bn.weight"]);
    assert!((grads.get("bn.bias").unwrap().data()[0] - 2.5).abs() < 1e-6);
    assert!(bn.params().iter().filter(|p| !p.trainable).count() == 2);
}

#[test]
fn single_value_per_channel_cannot_train() {
    let bn = BatchNorm2d::new("bn", 3);
    let mut tape = Tape::new();
    let x = tape.constant(Tensor::ones(&[1, 3, 1, 1]));
    assert!(bn.forward(&mut tape, x, Mode::Train).is_err());
    assert!(bn.forward(&mut tape, x, Mode::Eval).is_ok());
}
