//! `Tape::check_finite` names the first layer whose output is not finite, whether the
//! cause is a non-finite weight or an overflow, and passes finite passes.

use relprop_core::{Tape, Tensor};

/// `relu(x W^T)` with `fc` and `act` labels; returns the error text of the check, if any.
fn check(x: Vec<f32>, w: Vec<f32>) -> Option<String> {
    let mut tape = Tape::for_inference();
    let x = tape.constant(Tensor::from_vec(x, &[1, 2]).unwrap());
    let w = tape.param(Tensor::from_vec(w, &[2, 2]).unwrap(), "fc.weight");
    let y = tape.linear(x, w, None).unwrap();
    tape.set_label(y, "fc").unwrap();
    let out = tape.relu(y).unwrap();
    tape.set_label(out, "act").unwrap();
    tape.check_finite("predict", out)
        .err()
        .map(|e| e.to_string())
}

#[test]
fn finite_passes_pass() {
    assert_eq!(check(vec![1.0, -2.0], vec![0.5, 1.0, -1.0, 2.0]), None);
}

#[test]
fn a_nan_weight_is_reported_at_its_layer() {
    let e = check(vec![1.0, 0.0], vec![f32::NAN, 1.0, 1.0, 1.0]).expect("an error");
    assert!(
        e.contains("predict") && e.contains("activations of fc"),
        "{e}"
    );
}

#[test]
fn an_overflow_is_reported_at_the_first_layer_it_reaches() {
    // 3e38 + 3e38 overflows to infinity in `fc`; the ReLU would keep it, but `fc` comes first.
    let e = check(vec![3e38, 3e38], vec![1.0, 1.0, -1.0, -1.0]).expect("an error");
    assert!(e.contains("activations of fc"), "{e}");
}
