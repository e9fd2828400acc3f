//! EfficientNet-Lite0 through ONNX: the published model exported and imported back
//! explains a photo exactly as the native model does, and relevance is conserved node by
//! node through the whole network (the `verify` audit).
//!
//! Needs the published weights in the cache (`relprop fetch efficientnet_lite0`): under CI
//! (`CI=true`) their absence is a failure, elsewhere the tests are skipped with a message.

use relprop::core::Tensor;
use relprop::explain::verify::verify;
use relprop::explain::{explain, record, Composite, Method, Seed, Targets};
use relprop::onnx::{decode_model, export_module, OnnxNet};
use relprop::zoo::photos::{prepare, CROP, PHOTOS};
use relprop::zoo::{imagenet, Architecture, Model};

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

fn coffee() -> Tensor {
    Tensor::from_vec(prepare(PHOTOS[0].jpeg).unwrap(), &[1, 3, CROP, CROP]).unwrap()
}

/// `max |a - b| / max |b|`.
fn rel_diff(a: &[f32], b: &[f32]) -> f32 {
    let scale = b.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let diff = a
        .iter()
        .zip(b)
        .fold(0.0f32, |m, (x, y)| m.max((x - y).abs()));
    diff / scale
}

#[test]
fn explanations_through_onnx_equal_the_native_models() {
    let Some(native) = published() else { return };
    let arch = Architecture::EfficientnetLite0;
    let bytes = export_module(&native, &arch.input_shape(), arch.name()).unwrap();
    let net = OnnxNet::from_model(&decode_model(&bytes, None).unwrap(), arch.name()).unwrap();
    let x = coffee();
    let logits = |m: &dyn relprop::nn::Module| record(m, &x).unwrap().logits().clone();
    let e = rel_diff(logits(&net).data(), logits(&native).data());
    println!("logits: max relative difference {e:.2e}");
    assert!(e <= 1e-5, "logits: {e:.2e}");
    let bdt = || Composite::bounded_deep_taylor(Tensor::scalar(0.0), Tensor::scalar(1.0));
    // The imported graph rounds a few operations differently (logits agree to ~1e-6); the
    // plain gradient passes that on through 49 ReLU6 gates and a value next to a gate's
    // edge can flip, so it gets a looser bound than the LRP maps.
    let methods = [
        ("gradient", Method::Gradient),
        (
            "epsilon-plus",
            Method::Lrp {
                composite: Composite::epsilon_plus(1e-6),
                seed: Seed::OneHot,
            },
        ),
        ("clrp1", Method::Clrp1 { composite: bdt() }),
        ("sglrp", Method::Sglrp { composite: bdt() }),
    ];
    for (name, m) in methods {
        let a = explain(&native, &x, &Targets::Argmax, &m).unwrap();
        let b = explain(&net, &x, &Targets::Argmax, &m).unwrap();
        assert_eq!(a.targets, vec![967], "{name}: espresso");
        assert_eq!(a.targets, b.targets, "{name}");
        let e = rel_diff(b.relevance.data(), a.relevance.data());
        println!("{name}: max relative difference {e:.2e}");
        assert!(
            a.relevance.data().iter().any(|&v| v != 0.0),
            "{name}: empty map"
        );
        let bound = if name == "gradient" { 1e-3 } else { 1e-5 };
        assert!(e <= bound, "{name}: {e:.2e}");
    }
}

#[test]
fn relevance_is_conserved_node_by_node() {
    let Some(model) = published() else { return };
    let x = coffee();
    let low_high = (Tensor::scalar(0.0), Tensor::scalar(1.0));
    for (name, composite) in [
        ("epsilon-plus", Composite::epsilon_plus(1e-6)),
        (
            "bounded-deep-taylor",
            Composite::bounded_deep_taylor(low_high.0.clone(), low_high.1.clone()),
        ),
    ] {
        let v = verify(
            &model,
            &x,
            &Targets::Argmax,
            &composite,
            &Seed::OneHot,
            1e-3,
        )
        .unwrap();
        let worst = v.worst_layer().unwrap();
        println!(
            "{name}: largest local error {:.2e} at {} over {} nodes",
            worst.max_local_error(),
            worst.label,
            v.layers.len()
        );
        assert!(
            v.passed(),
            "{name}: {:?}",
            v.violations().iter().map(|l| &l.label).collect::<Vec<_>>()
        );
        // The audit covers the network: every conv of the 16 blocks, stem and head.
        assert!(v.layers.iter().filter(|l| l.op == "conv2d").count() >= 2 + 16 * 2);
    }
}
