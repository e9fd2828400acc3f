//! The command line with PyTorch `.pth` weights and the ImageNet model: `--weights FILE.pth`
//! for a digit model, the message when EfficientNet-Lite0's weights are not fetched, and
//! (with the weights in the cache) `predict` on photos and on arrays against timm's logits.

mod common;

use common::{relprop, scratch};
use relprop::nn::io::{parse_safetensors, read_npy, write_npy_f32, Array};
use relprop::zoo::imagenet;

fn fixture(path: &str) -> String {
    format!("{}/tests/fixtures/{path}", env!("CARGO_MANIFEST_DIR"))
}

fn logits(path: &std::path::Path) -> Vec<f32> {
    match read_npy(path).unwrap() {
        Array::F32 { data, .. } => data,
        other => panic!("{other:?}"),
    }
}

/// Whether the published weights are in the cache; under CI they must be.
fn have_weights() -> bool {
    match imagenet::cached_pth() {
        Ok(_) => true,
        Err(e) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("CI needs the efficientnet_lite0 weights: {e}")
        }
        Err(e) => {
            eprintln!("skipped: {e}");
            false
        }
    }
}

#[test]
fn a_digit_model_predicts_the_same_from_pth_and_safetensors_weights() {
    let dir = scratch("pth-lenet5");
    let x = relprop::core::Tensor::rand_uniform(&[3, 1, 28, 28], 0.0, 1.0, 7);
    let input = dir.join("x.npy");
    write_npy_f32(&input, &x).unwrap();
    let mut outs = Vec::new();
    for (weights, out) in [
        (fixture("pth/lenet5_legacy.pth"), "pth.npy"),
        (fixture("zennit/lenet5.safetensors"), "st.npy"),
    ] {
        let out = dir.join(out);
        let o = relprop(&[
            "predict",
            "--model",
            "lenet5",
            "--weights",
            &weights,
            "--input",
            input.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        outs.push(logits(&out));
    }
    assert_eq!(outs[0], outs[1]);
    // Not the embedded weights: the fixture's random ones give other logits.
    let out = dir.join("embedded.npy");
    let o = relprop(&[
        "predict",
        "--model",
        "lenet5",
        "--input",
        input.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success());
    assert_ne!(logits(&out), outs[0]);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_pth_for_another_model_is_refused_with_exit_code_2() {
    let o = relprop(&[
        "predict",
        "--model",
        "vgg_small",
        "--weights",
        &fixture("pth/lenet5_legacy.pth"),
        "--input",
        &fixture("pth/mixed_zip.pth"),
    ]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("pth: parameter"), "{err}");
}

#[test]
fn without_fetched_weights_efficientnet_says_how_to_get_them_and_writes_nothing() {
    let dir = scratch("no-cache");
    let out = dir.join("l.npy");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_relprop"))
        .args(["predict", "--model", "efficientnet_lite0", "--input"])
        .arg(fixture("../../zoo/data/photos/coffee.jpg"))
        .arg("--out")
        .arg(&out)
        .env("RELPROP_CACHE", dir.join("empty"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("relprop fetch efficientnet_lite0"), "{err}");
    assert!(!out.exists());
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn predict_names_the_photo_and_writes_timms_logits() {
    if !have_weights() {
        return;
    }
    let o = relprop(&[
        "predict",
        "--model",
        "efficientnet_lite0",
        "--input",
        &fixture("../../zoo/data/photos/coffee.jpg"),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stdout = String::from_utf8_lossy(&o.stdout);
    let first = stdout.lines().next().unwrap();
    assert!(
        first.starts_with("0\t1\t967\t") && first.ends_with("espresso"),
        "{stdout}"
    );
    assert_eq!(stdout.lines().count(), 5);

    // The acceptance path: float32 [N, 3, 224, 224] in, raw logits [N, 1000] out.
    let f =
        parse_safetensors(&std::fs::read(fixture("timm/efficientnet_lite0.safetensors")).unwrap())
            .unwrap();
    let get = |n: &str| f.iter().find(|(k, _)| k == n).unwrap().1.clone();
    let x = get("x224");
    let data: Vec<f32> = x
        .as_u8()
        .unwrap()
        .iter()
        .map(|&v| f32::from(v) / 255.0)
        .collect();
    let dir = scratch("timm-logits");
    let (input, out) = (dir.join("x.npy"), dir.join("l.npy"));
    write_npy_f32(
        &input,
        &relprop::core::Tensor::from_vec(data, x.shape()).unwrap(),
    )
    .unwrap();
    let o = relprop(&[
        "predict",
        "--model",
        "efficientnet_lite0",
        "--input",
        input.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let ours = logits(&out);
    let reference = get("logits224");
    let reference = reference.as_f32().unwrap();
    assert_eq!(ours.len(), 3 * 1000);
    let scale = reference.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let worst = ours
        .iter()
        .zip(reference)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(
        worst <= 1e-4 * scale,
        "max error {worst} against max logit {scale}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}
