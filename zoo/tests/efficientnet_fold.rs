//! EfficientNet-Lite0 with its BatchNorms folded into the convolutions: the same logits
//! and input gradients as the network with separate BatchNorms, on a freshly initialised
//! model with random BatchNorm statistics (no published weights needed); either
//! state-dict layout loads, and one that fits neither is refused by name.

use relprop_core::{Exact, Op, Tape, Tensor};
use relprop_nn::io::{parse_safetensors, safetensors_bytes};
use relprop_nn::state::state_dict;
use relprop_nn::{Mode, Module, Sequential};
use relprop_zoo::efficientnet::fold::{fold, from_state};
use relprop_zoo::efficientnet::{build, BatchNorms, Built};
use relprop_zoo::Architecture;

/// The network with separate BatchNorms, every BatchNorm given random scale, shift and
/// running statistics (the defaults, ones and zeros, would make folding trivial).
fn unfolded_with_random_statistics() -> Sequential {
    let Built { mut net, pairs } = build(BatchNorms::Separate, &mut relprop_core::Rng::new(5));
    for (k, pair) in pairs.iter().enumerate() {
        for p in net.params_mut() {
            let Some(suffix) = p.name.strip_prefix(&format!("{}.", pair.bn)) else {
                continue;
            };
            let (lo, hi) = match suffix {
                "weight" => (0.5, 1.5),
                "bias" => (-0.1, 0.3),
                "running_mean" => (-0.2, 0.2),
                _ => (0.05, 0.5),
            };
            let c = p.value.numel();
            p.value = Tensor::rand_uniform(&[c], lo, hi, 100 + k as u64 * 4 + suffix.len() as u64);
        }
    }
    net
}

/// The logits and the gradient of `seed . logits` with respect to the input.
fn logits_and_input_gradient(
    model: &dyn Module,
    x: &Tensor,
    seed: &Tensor,
) -> (Tensor, Tensor, usize) {
    let mut tape = Tape::new();
    let input = tape.leaf(x.clone());
    let y = model.forward(&mut tape, input, Mode::Eval).unwrap();
    let signals = tape.backward(y, seed, &Exact).unwrap();
    let batch_norms = tape
        .nodes()
        .iter()
        .filter(|n| matches!(n.op, Op::BatchNorm2d { .. }))
        .count();
    (
        tape.value(y).unwrap().clone(),
        signals.get(input).unwrap().clone(),
        batch_norms,
    )
}

/// `max |a - b| / max |b|`.
fn rel_diff(a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(a.shape(), b.shape());
    let diff = a
        .data()
        .iter()
        .zip(b.data())
        .fold(0.0f32, |m, (x, y)| m.max((x - y).abs()));
    diff / b.max_abs()
}

fn logits(model: &dyn Module, x: &Tensor) -> Tensor {
    let mut tape = Tape::for_inference();
    let input = tape.leaf(x.clone());
    let y = model.forward(&mut tape, input, Mode::Eval).unwrap();
    tape.value(y).unwrap().clone()
}

#[test]
fn folding_keeps_the_logits_and_the_input_gradient() {
    let unfolded = unfolded_with_random_statistics();
    let folded = fold(&unfolded).unwrap();
    let x = Tensor::rand_uniform(&[1, 3, 67, 71], 0.0, 1.0, 11);
    let seed = Tensor::rand_uniform(&[1, 1000], -1.0, 1.0, 12);
    let (y0, g0, bn0) = logits_and_input_gradient(&unfolded, &x, &seed);
    let (y1, g1, bn1) = logits_and_input_gradient(&folded, &x, &seed);
    assert_eq!(
        (bn0, bn1),
        (49, 0),
        "BatchNorm nodes before and after folding"
    );
    // Not a degenerate network: the logits differ from class to class.
    let spread = y0.data().iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v))
        - y0.data().iter().fold(f32::INFINITY, |m, &v| m.min(v));
    assert!(spread > 1e-2 * y0.max_abs(), "spread {spread}");
    assert!(g0.max_abs() > 0.0);
    let (dy, dg) = (rel_diff(&y1, &y0), rel_diff(&g1, &g0));
    println!(
        "logits {dy:.2e}, input gradient {dg:.2e} (max |logit| {})",
        y0.max_abs()
    );
    assert!(dy <= 1e-5, "logits: {dy:.2e}");
    assert!(dg <= 1e-5, "input gradient: {dg:.2e}");
}

#[test]
fn the_folded_variant_keeps_every_other_layer_and_name() {
    let unfolded = build(BatchNorms::Separate, &mut relprop_core::Rng::new(0));
    let folded = build(BatchNorms::Folded, &mut relprop_core::Rng::new(0));
    assert_eq!(unfolded.pairs, folded.pairs);
    assert_eq!(folded.pairs.len(), 49);
    let names =
        |net: &Sequential| -> Vec<String> { net.params().iter().map(|p| p.name.clone()).collect() };
    let (before, after) = (names(&unfolded.net), names(&folded.net));
    for pair in &folded.pairs {
        assert!(
            after.contains(&format!("{}.bias", pair.conv)),
            "{}",
            pair.conv
        );
        assert!(
            before.contains(&format!("{}.running_var", pair.bn)),
            "{}",
            pair.bn
        );
        assert!(
            !after
                .iter()
                .any(|n| n.starts_with(&format!("{}.", pair.bn))),
            "{}",
            pair.bn
        );
    }
    // Every other parameter is the same, in the same order.
    let bn_names: Vec<String> = before
        .iter()
        .filter(|n| {
            folded
                .pairs
                .iter()
                .any(|p| n.starts_with(&format!("{}.", p.bn)))
        })
        .cloned()
        .collect();
    let kept: Vec<&String> = before.iter().filter(|n| !bn_names.contains(n)).collect();
    let without_biases: Vec<&String> = after
        .iter()
        .filter(|n| {
            !folded
                .pairs
                .iter()
                .any(|p| **n == format!("{}.bias", p.conv))
        })
        .collect();
    assert_eq!(kept, without_biases);
    // The labels on the tape: the same sequence once the BatchNorms (and their
    // parameters) and the new biases are left out; convs keep their names.
    let x = Tensor::rand_uniform(&[1, 3, 33, 35], 0.0, 1.0, 1);
    let labels = |net: &Sequential, skip: &dyn Fn(&str) -> bool| -> Vec<String> {
        let mut tape = Tape::for_inference();
        let input = tape.leaf(x.clone());
        net.forward(&mut tape, input, Mode::Eval).unwrap();
        tape.nodes()
            .iter()
            .filter_map(|n| n.label.clone())
            .filter(|l| !skip(l))
            .collect()
    };
    let is_bn = |l: &str| {
        folded
            .pairs
            .iter()
            .any(|p| l == p.bn || l.starts_with(&format!("{}.", p.bn)))
    };
    let is_new_bias = |l: &str| folded.pairs.iter().any(|p| l == format!("{}.bias", p.conv));
    let (l0, l1) = (
        labels(&unfolded.net, &is_bn),
        labels(&folded.net, &is_new_bias),
    );
    assert_eq!(l0, l1);
    for conv in [
        "_conv_stem",
        "_blocks.3._depthwise_conv",
        "_conv_head",
        "_fc",
        "_blocks.4",
    ] {
        assert!(l1.iter().any(|l| l == conv), "{conv}");
    }
}

#[test]
fn a_folded_state_dict_round_trips_through_safetensors() {
    let folded = fold(&unfolded_with_random_statistics()).unwrap();
    let bytes = safetensors_bytes(&state_dict(&folded)).unwrap();
    let state: Vec<(String, Tensor)> = parse_safetensors(&bytes)
        .unwrap()
        .into_iter()
        .map(|(n, a)| (n, a.into_tensor().unwrap()))
        .collect();
    assert!(!state.iter().any(|(n, _)| n.ends_with(".running_var")));
    let loaded = Architecture::EfficientnetLite0
        .with_state(&state, false)
        .unwrap();
    assert_eq!(loaded.arch, Architecture::EfficientnetLite0);
    let x = Tensor::rand_uniform(&[2, 3, 40, 36], 0.0, 1.0, 4);
    assert_eq!(logits(&loaded, &x).data(), logits(&folded, &x).data());
    // The published layout loads through the same call and is folded on the way.
    let unfolded = unfolded_with_random_statistics();
    let via_state = from_state(&state_dict(&unfolded), false).unwrap();
    assert_eq!(logits(&via_state, &x).data(), logits(&folded, &x).data());
}

#[test]
fn a_state_dict_that_fits_neither_layout_is_refused_by_name() {
    let unfolded = state_dict(&unfolded_with_random_statistics());
    let folded = state_dict(&fold(&unfolded_with_random_statistics()).unwrap());
    let without = |state: &[(String, Tensor)], name: &str| -> Vec<(String, Tensor)> {
        let kept: Vec<_> = state.iter().filter(|(n, _)| n != name).cloned().collect();
        assert_eq!(kept.len() + 1, state.len(), "{name}");
        kept
    };
    for (state, name) in [
        (
            without(&folded, "_blocks.3._depthwise_conv.bias"),
            "_blocks.3._depthwise_conv.bias",
        ),
        (
            without(&unfolded, "_blocks.5._bn1.running_mean"),
            "_blocks.5._bn1.running_mean",
        ),
        (without(&folded, "_fc.weight"), "_fc.weight"),
    ] {
        let err = from_state(&state, true).err().expect("refused").to_string();
        assert!(err.contains("neither") && err.contains(name), "{err}");
    }
    // A bias and a BatchNorm on the same convolution: not this network.
    let mut mixed = folded.clone();
    mixed.extend(
        unfolded
            .iter()
            .filter(|(n, _)| n.starts_with("_bn0."))
            .cloned(),
    );
    let err = from_state(&mixed, true).err().expect("refused").to_string();
    assert!(
        err.contains("mix") && err.contains("_bn0.running_var"),
        "{err}"
    );
    // A misshapen BatchNorm statistic is named with its shape.
    let mut bad = unfolded.clone();
    let var = bad
        .iter_mut()
        .find(|(n, _)| n == "_blocks.2._bn2.running_var")
        .unwrap();
    var.1 = Tensor::ones(&[7]);
    let err = from_state(&bad, true).err().expect("refused").to_string();
    assert!(err.contains("_blocks.2._bn2.running_var"), "{err}");
}
