//! Overflowing forward passes and damaged BatchNorm statistics are errors that name the
//! layer or parameter, never finite-looking but meaningless outputs.

use relprop_core::Tensor;
use relprop_explain::record;
use relprop_nn::state::{load_state, state_dict};
use relprop_nn::train::predict;
use relprop_nn::Module;
use relprop_zoo::Architecture;

/// lenet5 with `features.conv1`'s weights all 1: an input of 1e38 overflows right there.
fn overflowing_lenet() -> relprop_zoo::Model {
    let mut model = Architecture::Lenet5.build(0);
    for p in model.params_mut() {
        if p.name == "features.conv1.weight" {
            p.value = Tensor::ones(p.value.shape());
        }
    }
    model
}

#[test]
fn overflow_names_the_first_layer_that_is_not_finite() {
    let model = overflowing_lenet();
    let x = Tensor::full(&[2, 1, 28, 28], 1e38);
    for message in [
        record(&model, &x).err().expect("record").to_string(),
        predict(&model, &x, 2).unwrap_err().to_string(),
    ] {
        assert!(
            message.contains("the activations of features.conv1 are not finite"),
            "{message}"
        );
    }
    // An ordinary input passes both.
    let ok = Tensor::full(&[2, 1, 28, 28], 0.5);
    assert!(record(&model, &ok).is_ok());
    assert_eq!(predict(&model, &ok, 2).unwrap().shape(), &[2, 10]);
}

#[test]
fn damaged_batchnorm_statistics_are_refused_by_name() {
    let source = Architecture::VggSmallBn.build(0);
    let state = state_dict(&source);
    let bn = state
        .iter()
        .find(|(n, _)| n.ends_with(".running_var"))
        .map(|(n, _)| n.trim_end_matches(".running_var").to_string())
        .expect("a BatchNorm layer");
    for (param, value) in [
        ("running_var", -1.0),
        ("running_var", f32::NAN),
        ("running_mean", f32::INFINITY),
        ("weight", f32::NAN),
        ("bias", f32::NEG_INFINITY),
    ] {
        let name = format!("{bn}.{param}");
        let damaged: Vec<(String, Tensor)> = state
            .iter()
            .map(|(n, t)| {
                let t = if *n == name {
                    Tensor::full(t.shape(), value)
                } else {
                    t.clone()
                };
                (n.clone(), t)
            })
            .collect();
        let mut target = Architecture::VggSmallBn.build(1);
        let before = state_dict(&target);
        let message = load_state(&mut target, &damaged, false)
            .unwrap_err()
            .to_string();
        assert!(message.contains(&name), "{param}={value}: {message}");
        // Nothing was loaded.
        assert_eq!(state_dict(&target)[0].1, before[0].1);
    }
}
