//! EfficientNet-Lite0: the architecture's shape, and its logits against timm's
//! `tf_efficientnet_lite0` with the same weights (tests/fixtures/timm, written by
//! scripts/make_timm_fixture.py).
//!
//! The logit test needs the published weights from the cache (`relprop fetch
//! efficientnet_lite0`). Without them it fails under CI (`CI=true`), where `.ci/run`
//! fetches them first, and is skipped with a message on a developer's machine.

use relprop_core::Rng;
use relprop_core::{Tape, Tensor};
use relprop_nn::io::{parse_safetensors, Array};
use relprop_nn::state::expected_shapes;
use relprop_nn::{Mode, Module};
use relprop_zoo::efficientnet::{self, BatchNorms};
use relprop_zoo::{imagenet, Architecture, Model};

/// The published model, or `None` (after saying why) when a developer has not fetched it.
fn published() -> Option<Model> {
    match imagenet::efficientnet_lite0() {
        Ok(m) => Some(m),
        Err(e) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("CI needs the efficientnet_lite0 weights: {e}")
        }
        Err(e) => {
            eprintln!("skipped: {e}");
            None
        }
    }
}

fn fixture() -> Vec<(String, Array)> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/fixtures/timm/efficientnet_lite0.safetensors"
    );
    parse_safetensors(&std::fs::read(path).unwrap()).unwrap()
}

fn get<'a>(f: &'a [(String, Array)], name: &str) -> &'a Array {
    &f.iter().find(|(n, _)| n == name).unwrap().1
}

fn logits(model: &Model, x: Tensor) -> Tensor {
    let mut tape = Tape::for_inference();
    let x = tape.leaf(x);
    let y = model.forward(&mut tape, x, Mode::Eval).unwrap();
    tape.value(y).unwrap().clone()
}

#[test]
fn the_architecture_has_lite0s_parameters() {
    let published = efficientnet::build(BatchNorms::Separate, &mut Rng::new(0)).net;
    let trainable = |net: &dyn Module| -> usize {
        net.params()
            .iter()
            .filter(|p| p.trainable)
            .map(|p| p.value.numel())
            .sum()
    };
    // timm's tf_efficientnet_lite0: 4,652,008 trainable parameters.
    assert_eq!(trainable(&published), 4_652_008);
    // Folded, each BatchNorm's scale and shift (2 per channel) become one conv bias.
    let folded = Architecture::EfficientnetLite0.build(0);
    let bn_channels: usize = expected_shapes(&published)
        .iter()
        .filter(|(n, _)| n.ends_with(".running_var"))
        .map(|(_, s)| s[0])
        .sum();
    assert_eq!(folded.parameter_count(), 4_652_008 - bn_channels);
    assert_eq!(expected_shapes(&folded).len(), 296 - 49 - 4 * 49 + 49);
    let shapes = expected_shapes(&published);
    // Weights, BN scale/shift and running statistics; no num_batches_tracked counters.
    assert_eq!(shapes.len(), 296 - 49);
    let get = |n: &str| shapes.iter().find(|(k, _)| k == n).map(|(_, s)| s.clone());
    assert_eq!(get("_conv_stem.weight"), Some(vec![32, 3, 3, 3]));
    assert_eq!(
        get("_blocks.0._depthwise_conv.weight"),
        Some(vec![32, 1, 3, 3])
    );
    assert_eq!(
        get("_blocks.11._depthwise_conv.weight"),
        Some(vec![672, 1, 5, 5])
    );
    assert_eq!(
        get("_blocks.15._project_conv.weight"),
        Some(vec![320, 1152, 1, 1])
    );
    assert_eq!(get("_fc.weight"), Some(vec![1000, 1280]));
    assert_eq!(get("_blocks.0._expand_conv.weight"), None);
}

#[test]
fn any_input_size_gives_a_thousand_logits() {
    let model = Architecture::EfficientnetLite0.build(1);
    for (h, w) in [(33, 47), (64, 64)] {
        let y = logits(&model, Tensor::rand_uniform(&[1, 3, h, w], 0.0, 1.0, 3));
        assert_eq!(y.shape(), &[1, 1000], "{h}x{w}");
        assert!(y.data().iter().all(|v| v.is_finite()));
    }
}

/// Largest |ours - reference| over the largest |reference| of each row, and the largest
/// elementwise error beyond `1e-4 * |reference|`.
fn compare(ours: &Tensor, reference: &[f64]) -> (f64, f64) {
    let (mut rel, mut excess) = (0.0f64, 0.0f64);
    let classes = 1000;
    for (row, r) in ours.data().chunks(classes).zip(reference.chunks(classes)) {
        let scale = r.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        for (&a, &b) in row.iter().zip(r) {
            let err = (f64::from(a) - b).abs();
            rel = rel.max(err / scale);
            excess = excess.max(err - 1e-4 * b.abs());
        }
    }
    (rel, excess)
}

#[test]
fn logits_equal_timms_on_photos_and_noise() {
    let Some(model) = published() else { return };
    let f = fixture();
    for key in ["224", "200x256"] {
        let x = get(&f, &format!("x{key}"));
        let data: Vec<f32> = x
            .as_u8()
            .unwrap()
            .iter()
            .map(|&v| f32::from(v) / 255.0)
            .collect();
        let ours = logits(&model, Tensor::from_vec(data, x.shape()).unwrap());
        let exact = get(&f, &format!("logits{key}_f64")).as_f64().unwrap();
        let timm32 = get(&f, &format!("logits{key}")).as_f32().unwrap();
        assert_eq!(ours.shape(), &[x.shape()[0], 1000]);
        let (rel, excess) = compare(&ours, exact);
        let timm: Vec<f64> = timm32.iter().map(|&v| f64::from(v)).collect();
        let (rel32, _) = compare(&ours, &timm);
        println!("{key}: max error / max |logit| {rel:.2e} vs float64, {rel32:.2e} vs timm's float32; worst excess over 1e-4 relative {excess:.2e}");
        assert!(rel < 1e-5, "{key}: {rel}");
        assert!(rel32 < 1e-5, "{key}: {rel32}");
        // Same top-1 class as timm on every input.
        let top: Vec<usize> = ours.argmax(1).unwrap();
        let ref_top: Vec<usize> = exact
            .chunks(1000)
            .map(|r| (0..1000).max_by(|&a, &b| r[a].total_cmp(&r[b])).unwrap())
            .collect();
        assert_eq!(top, ref_top, "{key}");
    }
}

#[test]
fn the_published_model_names_the_bundled_photos() {
    let Some(model) = published() else { return };
    // timm's top-1 on the fixture's photo crops: espresso (967) and tiger cat (282).
    let f = fixture();
    let x = get(&f, "x224");
    let data: Vec<f32> = x.as_u8().unwrap()[..2 * 3 * 224 * 224]
        .iter()
        .map(|&v| f32::from(v) / 255.0)
        .collect();
    let y = logits(&model, Tensor::from_vec(data, &[2, 3, 224, 224]).unwrap());
    let top = y.argmax(1).unwrap();
    assert_eq!(
        top.iter()
            .map(|&c| imagenet::class_name(c).unwrap())
            .collect::<Vec<_>>(),
        ["espresso", "tiger cat"]
    );
}
