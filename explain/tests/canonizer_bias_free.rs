//! BatchNorm folding onto layers without a bias: the canonized model explains exactly like
//! a twin built by hand with the folded weights and a bias, including a grouped conv with
//! asymmetric padding and dilation; BatchNorms that cannot be folded are still errors.

use relprop_core::{Conv2dSpec, Op, Rng, Tape, Tensor};
use relprop_explain::{
    explain, record, BatchNormFold, Canonizer, Composite, Method, Seed, Targets,
};
use relprop_nn::{BatchNorm2d, Conv2d, Flatten, Linear, Mode, Module, Relu, Sequential};

/// The grouped layer's spec: depthwise-like (2 input channels per group), dilated and
/// padded more at the end.
fn grouped_spec() -> Conv2dSpec {
    Conv2dSpec::new(1, 0)
        .with_pads([1, 1], [2, 1])
        .with_dilation([2, 1])
        .with_groups(2)
}

/// A BatchNorm with random scale, shift and running statistics.
fn random_bn(name: &str, c: usize, rng: &mut Rng) -> BatchNorm2d {
    let mut bn = BatchNorm2d::new(name, c);
    let mut v = |lo: f32, hi: f32| {
        Tensor::from_vec((0..c).map(|_| rng.uniform(lo, hi)).collect(), &[c]).unwrap()
    };
    bn.weight.value = v(-0.5, 1.5);
    bn.bias.value = v(-0.5, 0.5);
    bn.running_mean.value = v(-0.5, 0.5);
    bn.running_var.value = v(0.5, 2.0);
    bn
}

/// `w * g / sqrt(var + eps)` and `beta - mean * g / sqrt(var + eps)` by hand.
fn fold_by_hand(w: &Tensor, bn: &BatchNorm2d) -> (Tensor, Tensor) {
    let c = w.shape()[0];
    let per = w.numel() / c;
    let scale: Vec<f32> = (0..c)
        .map(|o| bn.weight.value.data()[o] / (bn.running_var.value.data()[o] + bn.eps).sqrt())
        .collect();
    let wf = w
        .data()
        .iter()
        .enumerate()
        .map(|(i, v)| v * scale[i / per])
        .collect();
    let bf = (0..c)
        .map(|o| bn.bias.value.data()[o] - bn.running_mean.value.data()[o] * scale[o])
        .collect();
    (
        Tensor::from_vec(wf, w.shape()).unwrap(),
        Tensor::from_vec(bf, &[c]).unwrap(),
    )
}

/// A bias-free conv -> BN -> ReLU -> bias-free grouped conv -> BN -> ReLU -> linear
/// model, and its twin without BatchNorm whose convs carry the folded weights and biases.
fn model_and_twin() -> (Sequential, Sequential) {
    let mut rng = Rng::new(11);
    let conv1 = Conv2d::new(
        "conv1",
        1,
        4,
        [3, 3],
        Conv2dSpec::new(1, 1),
        false,
        &mut rng,
    );
    let conv2 = Conv2d::grouped("conv2", 4, 6, [3, 2], grouped_spec(), false, &mut rng).unwrap();
    let (bn1, bn2) = (random_bn("bn1", 4, &mut rng), random_bn("bn2", 6, &mut rng));
    let (h, w) = (10 + 1 + 2 - 2 * 2, 9 + 1 + 1 - 1);
    let fc = Linear::new("fc", 6 * h * w, 5, true, &mut rng);
    let (w1, b1) = fold_by_hand(&conv1.weight.value, &bn1);
    let (w2, b2) = fold_by_hand(&conv2.weight.value, &bn2);
    let twin = Sequential::new("twin")
        .with(Conv2d::from_params("conv1", w1, Some(b1), conv1.spec).unwrap())
        .with(Relu::new())
        .with(Conv2d::from_params("conv2", w2, Some(b2), conv2.spec).unwrap())
        .with(Relu::new())
        .with(Flatten::new())
        .with(fc.clone());
    let model = Sequential::new("model")
        .with(conv1)
        .with(bn1)
        .with(Relu::new())
        .with(conv2)
        .with(bn2)
        .with(Relu::new())
        .with(Flatten::new())
        .with(fc);
    (model, twin)
}

fn input() -> Tensor {
    Tensor::rand_uniform(&[3, 1, 10, 9], 0.0, 1.0, 3)
}

#[test]
fn bias_free_layers_fold_like_a_twin_with_biases() {
    let (model, twin) = model_and_twin();
    let x = input();
    let rec = record(&model, &x).unwrap();
    // Once an error ("does not follow a conv or linear layer with a bias").
    let folded = BatchNormFold.apply(&rec.tape).unwrap();
    let e = folded
        .value(rec.output)
        .unwrap()
        .max_rel_diff(rec.logits())
        .unwrap();
    assert!(e < 1e-5, "folding changed the logits by {e:.2e}");
    let twin_logits = record(&twin, &x).unwrap();
    let e = folded
        .value(rec.output)
        .unwrap()
        .max_rel_diff(twin_logits.logits())
        .unwrap();
    assert!(e < 1e-5, "the folded model and the twin differ by {e:.2e}");

    // Each layer is still one conv node under its own label, now with a bias, and the
    // tape has as many layers as the twin's, in the same order.
    let layers = |t: &Tape| -> Vec<(String, bool)> {
        t.nodes()
            .iter()
            .filter_map(|n| match &n.op {
                Op::Conv2d { b, .. } | Op::Linear { b, .. } => {
                    Some((n.label.clone().unwrap_or_default(), b.is_some()))
                }
                _ => None,
            })
            .collect()
    };
    let want: Vec<(String, bool)> = ["conv1", "conv2", "fc"]
        .iter()
        .map(|l| (l.to_string(), true))
        .collect();
    assert_eq!(layers(&folded), want);
    assert_eq!(layers(&record(&twin, &x).unwrap().tape), want);
    let conv2 = folded.find("conv2").unwrap();
    assert!(
        matches!(folded.node(conv2).unwrap().op, Op::Conv2d { spec, .. } if spec == grouped_spec())
    );
    assert!(folded.find("bn1").is_none() && folded.find("bn2").is_none());
    assert_eq!(folded.len(), rec.tape.len());

    // Explanations agree, including a composite with a rule for the first layer only.
    let bounds = || (Tensor::scalar(0.0), Tensor::scalar(1.0));
    let composites = [
        ("epsilon-plus", Composite::epsilon_plus(1e-6)),
        (
            "epsilon-alpha2-beta1",
            Composite::epsilon_alpha2_beta1(1e-6),
        ),
        (
            "epsilon-gamma-box",
            Composite::epsilon_gamma_box(bounds().0, bounds().1, 1e-6),
        ),
        ("epsilon", Composite::epsilon(1e-3)),
    ];
    for (name, composite) in composites {
        let method = Method::Lrp {
            composite,
            seed: Seed::OneHot,
        };
        let a = explain(&model, &x, &Targets::Class(1), &method).unwrap();
        let b = explain(&twin, &x, &Targets::Class(1), &method).unwrap();
        assert!(a.relevance.max_abs() > 0.0, "{name}: no relevance");
        let e = a.relevance.max_rel_diff(&b.relevance).unwrap();
        assert!(
            e < 1e-5,
            "{name}: canonized model and twin differ by {e:.2e}"
        );
    }
}

#[test]
fn training_mode_batchnorm_still_cannot_be_folded() {
    let (model, _) = model_and_twin();
    let mut tape = Tape::for_inference();
    let x = tape.leaf(input());
    model.forward(&mut tape, x, Mode::Train).unwrap();
    let err = BatchNormFold
        .apply(&tape)
        .expect_err("must fail")
        .to_string();
    assert!(
        err.contains("batchnorm-fold") && err.contains("bn1") && err.contains("training"),
        "{err}"
    );
}

#[test]
fn a_layer_recorded_in_between_is_refused_not_reordered() {
    // x -> conv a (no bias) ... conv b on another branch ... BN(a): folding would move
    // `a` after `b` and could change which layer is the first.
    let mut tape = Tape::for_inference();
    let x = tape.leaf(Tensor::rand_uniform(&[1, 2, 5, 5], 0.0, 1.0, 1));
    let wa = tape.param(
        Tensor::rand_uniform(&[2, 2, 3, 3], -1.0, 1.0, 2),
        "a.weight",
    );
    let a = tape.conv2d(x, wa, None, Conv2dSpec::new(1, 1)).unwrap();
    tape.set_label(a, "a").unwrap();
    let wb = tape.param(
        Tensor::rand_uniform(&[2, 2, 3, 3], -1.0, 1.0, 3),
        "b.weight",
    );
    let b = tape.conv2d(x, wb, None, Conv2dSpec::new(1, 1)).unwrap();
    tape.set_label(b, "b").unwrap();
    let bn = random_bn("bn", 2, &mut Rng::new(4));
    let y = bn.forward(&mut tape, a, Mode::Eval).unwrap();
    tape.add(y, b).unwrap();
    let err = BatchNormFold
        .apply(&tape)
        .expect_err("must fail")
        .to_string();
    assert!(err.contains("bn") && err.contains("conv2d (b)"), "{err}");
}

#[test]
fn shared_layer_output_is_refused() {
    // The conv's output is read by the BatchNorm and by a residual sum: folding would
    // change what the sum reads.
    let mut tape = Tape::for_inference();
    let x = tape.leaf(Tensor::rand_uniform(&[1, 2, 5, 5], 0.0, 1.0, 1));
    let w = tape.param(
        Tensor::rand_uniform(&[2, 2, 3, 3], -1.0, 1.0, 2),
        "c.weight",
    );
    let c = tape.conv2d(x, w, None, Conv2dSpec::new(1, 1)).unwrap();
    let bn = random_bn("bn", 2, &mut Rng::new(4));
    let y = bn.forward(&mut tape, c, Mode::Eval).unwrap();
    tape.add(y, c).unwrap();
    let err = BatchNormFold
        .apply(&tape)
        .expect_err("must fail")
        .to_string();
    assert!(err.contains("shared"), "{err}");
}
