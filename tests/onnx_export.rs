//! Exporting the zoo to ONNX and importing it back: the re-imported models give the
//! native models' logits and explanations on real digits, under the same layer labels,
//! through the library and through `relprop export` / `relprop predict`.

mod common;

use common::{relprop, scratch};
use relprop::core::{Op, Tensor};
use relprop::explain::{explain, record, Composite, Method, Seed, Targets};
use relprop::nn::io::{read_npy, read_safetensors, write_npy_f32, Array};
use relprop::nn::Module;
use relprop::onnx::{decode_model, export_module, read_model, OnnxNet};
use relprop::zoo::digits::{self, Split};
use relprop::zoo::pairs::DigitPairGenerator;
use relprop::zoo::{pretrained, Architecture, ALL};

/// `max |ours - reference| / max |reference|`.
fn rel_diff(ours: &[f32], reference: &[f32]) -> f32 {
    assert_eq!(ours.len(), reference.len());
    let scale = reference.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let diff = ours
        .iter()
        .zip(reference)
        .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
    diff / scale.max(1e-30)
}

/// Test digits of all classes (28x28), or two-digit test composites (56x56) for
/// `multidigit`, explained for their first or second digit in turn; with the targets.
fn inputs(arch: Architecture) -> (Tensor, Vec<usize>) {
    let d = digits::load().unwrap();
    if arch == Architecture::Multidigit {
        let batch = DigitPairGenerator::new(d, Split::Test, 5).batch(6);
        let data: Vec<f32> = batch.iter().flat_map(|c| c.image.clone()).collect();
        let targets = batch
            .iter()
            .enumerate()
            .map(|(i, c)| c.labels[i % 2])
            .collect();
        return (Tensor::from_vec(data, &[6, 1, 56, 56]).unwrap(), targets);
    }
    let test = d.test_indices();
    let idx: Vec<usize> = test
        .iter()
        .step_by(test.len() / 10)
        .take(10)
        .copied()
        .collect();
    let (data, targets) = d.batch_f32(&idx);
    (
        Tensor::from_vec(data, &[idx.len(), 1, 28, 28]).unwrap(),
        targets,
    )
}

/// The labels of the conv and linear layers of a recorded pass, in order.
fn layer_labels(model: &dyn Module, x: &Tensor) -> Vec<String> {
    let rec = record(model, x).unwrap();
    rec.tape
        .nodes()
        .iter()
        .filter(|n| matches!(n.op, Op::Conv2d { .. } | Op::Linear { .. }))
        .map(|n| n.label.clone().unwrap_or_default())
        .collect()
}

fn methods() -> Vec<(&'static str, Method)> {
    let (l, h) = (Tensor::scalar(0.0), Tensor::scalar(1.0));
    let lrp = |composite| Method::Lrp {
        composite,
        seed: Seed::OneHot,
    };
    let bdt = || Composite::bounded_deep_taylor(Tensor::scalar(0.0), Tensor::scalar(1.0));
    vec![
        ("gradient", Method::Gradient),
        ("epsilon-plus", lrp(Composite::epsilon_plus(1e-6))),
        (
            "epsilon-gamma-box",
            lrp(Composite::epsilon_gamma_box(l, h, 1e-6)),
        ),
        ("sglrp", Method::Sglrp { composite: bdt() }),
        ("clrp2", Method::Clrp2 { composite: bdt() }),
    ]
}

/// Exports `arch`, imports the bytes back, and compares with the native model.
fn round_trip(arch: Architecture) {
    let name = arch.name();
    let native = pretrained::load(arch).unwrap();
    let bytes = export_module(&native, &arch.input_shape(), name).unwrap();
    let decoded = decode_model(&bytes, None).unwrap();
    let net = OnnxNet::from_model(&decoded, name).unwrap();
    let (x, targets) = inputs(arch);

    let theirs = record(&native, &x).unwrap().logits().clone();
    let ours = record(&net, &x).unwrap().logits().clone();
    let e = rel_diff(ours.data(), theirs.data());
    assert!(e <= 1e-5, "{name}: logits differ by {e:.2e}");
    assert_eq!(
        layer_labels(&net, &x),
        layer_labels(&native, &x),
        "{name}: layer labels"
    );

    let mut failures = vec![];
    for (m, method) in methods() {
        let t = Targets::PerSample(targets.clone());
        let a = explain(&native, &x, &t, &method).unwrap();
        let b = explain(&net, &x, &t, &method).unwrap();
        assert_eq!(a.targets, b.targets);
        let e = rel_diff(b.relevance.data(), a.relevance.data());
        println!("{name:>13} {m:<18} max rel diff {e:.2e}");
        if e.is_nan() || e > 1e-5 || a.relevance.data().iter().all(|&v| v == 0.0) {
            failures.push(format!("{m}: {e:.2e}"));
        }
    }
    assert!(failures.is_empty(), "{name}: {}", failures.join("; "));
}

#[test]
fn every_zoo_model_has_an_export() {
    assert_eq!(ALL.len(), 6, "a new architecture needs a round trip below");
}

#[test]
fn mlp_round_trips() {
    round_trip(Architecture::Mlp);
}

#[test]
fn lenet5_round_trips() {
    round_trip(Architecture::Lenet5);
}

#[test]
fn vgg_small_round_trips() {
    round_trip(Architecture::VggSmall);
}

#[test]
fn vgg_small_bn_round_trips_and_folds_like_the_canonizer() {
    // The file keeps BatchNorm as a node; the importer folds it into the conv before it,
    // as the BatchNorm canonizer does for the native model.
    let native = pretrained::load(Architecture::VggSmallBn).unwrap();
    let bytes = export_module(&native, &[1, 28, 28], "vgg_small_bn").unwrap();
    let decoded = decode_model(&bytes, None).unwrap();
    let norms = decoded
        .graph
        .nodes
        .iter()
        .filter(|n| n.op_type == "BatchNormalization")
        .count();
    assert_eq!(norms, 4);
    round_trip(Architecture::VggSmallBn);
}

#[test]
fn resnet_small_round_trips() {
    round_trip(Architecture::ResnetSmall);
}

#[test]
fn multidigit_round_trips() {
    round_trip(Architecture::Multidigit);
}

fn f32s(a: Array) -> Vec<f32> {
    match a {
        Array::F32 { data, .. } => data,
        other => panic!("expected f32, got {}", other.dtype()),
    }
}

#[test]
fn the_binary_exports_onnx_that_predicts_like_the_zoo_model() {
    let dir = scratch("onnx-export");
    let onnx = dir.join("lenet5.onnx");
    let run = relprop(&[
        "export",
        "--model",
        "lenet5",
        "--out",
        onnx.to_str().unwrap(),
    ]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let model = read_model(&onnx).unwrap();
    assert_eq!(model.opset, 17);
    assert!(model.graph.nodes.iter().any(|n| n.name == "features.conv1"));

    let (x, _) = inputs(Architecture::Lenet5);
    let xp = dir.join("x.npy");
    write_npy_f32(&xp, &x).unwrap();
    let predict = |m: &str, out: &std::path::Path| {
        let run = relprop(&[
            "predict",
            "--model",
            m,
            "--input",
            xp.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(
            run.status.success(),
            "{m}: {}",
            String::from_utf8_lossy(&run.stderr)
        );
        f32s(read_npy(out).unwrap())
    };
    let ours = predict(onnx.to_str().unwrap(), &dir.join("a.npy"));
    let theirs = predict("lenet5", &dir.join("b.npy"));
    let e = rel_diff(&ours, &theirs);
    assert!(e <= 1e-5, "logits differ by {e:.2e}");

    // --format overrides the extension, both ways.
    let as_onnx = dir.join("lenet5.bin");
    let run = relprop(&[
        "export",
        "--model",
        "lenet5",
        "--format",
        "onnx",
        "--out",
        as_onnx.to_str().unwrap(),
    ]);
    assert!(run.status.success());
    assert!(read_model(&as_onnx).is_ok());
    let as_st = dir.join("weights.onnx");
    let run = relprop(&[
        "export",
        "--model",
        "lenet5",
        "--format",
        "safetensors",
        "--out",
        as_st.to_str().unwrap(),
    ]);
    assert!(run.status.success());
    assert!(read_safetensors(&as_st).is_ok());
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn failed_exports_exit_2_and_leave_no_file() {
    let dir = scratch("onnx-export-bad");
    let out = dir.join("x.onnx");
    let o = out.to_str().unwrap();
    let missing = dir.join("no-such-folder").join("x.onnx");
    let a_folder = dir.join("taken.onnx");
    std::fs::create_dir_all(&a_folder).unwrap();
    let cases: Vec<Vec<&str>> = vec![
        vec![
            "export", "--model", "lenet5", "--format", "tflite", "--out", o,
        ],
        vec!["export", "--model", "nope", "--out", o],
        vec![
            "export",
            "--model",
            "lenet5",
            "--out",
            missing.to_str().unwrap(),
        ],
        vec![
            "export",
            "--model",
            "lenet5",
            "--out",
            a_folder.to_str().unwrap(),
        ],
    ];
    for args in cases {
        let run = relprop(&args);
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert_eq!(run.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.starts_with("error: "), "{args:?}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
        assert!(!out.exists() && !missing.exists(), "{args:?} wrote output");
    }
    // Nothing is left behind: the folder holds only the folder made above, still empty.
    let left: Vec<_> = std::fs::read_dir(&dir).unwrap().flatten().collect();
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(std::fs::read_dir(&a_folder).unwrap().count(), 0);
    std::fs::remove_dir_all(&dir).ok();
}
