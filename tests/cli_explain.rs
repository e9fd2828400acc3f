//! `relprop explain` end to end: the binary reproduces the Zennit fixtures, and bad input
//! gives exit code 2, one clear message and no output file.

mod common;

use common::{fixture_path, relprop, scratch};
use relprop::core::Tensor;
use relprop::nn::io::{read_npy, read_safetensors, write_npy_f32, write_npy_i64, Array};
use std::path::{Path, PathBuf};

fn array(arrays: &[(String, Array)], name: &str) -> Array {
    arrays
        .iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no {name}"))
        .1
        .clone()
}

/// Writes the fixture's inputs and targets as .npy files; returns their paths.
fn fixture_inputs(model: &str, dir: &Path) -> (PathBuf, PathBuf, Vec<(String, Array)>) {
    let arrays = read_safetensors(fixture_path(model)).unwrap();
    let x = array(&arrays, "x").into_tensor().unwrap();
    let t: Vec<i64> = array(&arrays, "targets").as_i64().unwrap().to_vec();
    let (xp, tp) = (dir.join("x.npy"), dir.join("t.npy"));
    write_npy_f32(&xp, &x).unwrap();
    write_npy_i64(&tp, &[t.len()], &t).unwrap();
    (xp, tp, arrays)
}

fn max_rel_error(ours: &[f32], reference: &[f64]) -> f64 {
    let scale = reference.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    ours.iter()
        .zip(reference)
        .fold(0.0f64, |m, (&a, &b)| m.max((a as f64 - b).abs()))
        / scale
}

#[test]
fn explain_reproduces_every_fixture_method() {
    let cases: [(&str, &[&str], f64); 10] = [
        ("gradient", &["--method", "gradient"], 1e-4),
        ("grad_x_input", &["--method", "gradient-x-input"], 1e-4),
        (
            "lrp_eps_1e-6",
            &["--method", "lrp", "--rules", "epsilon", "--epsilon", "1e-6"],
            1e-3,
        ),
        (
            "lrp_eps_0.25",
            &["--method", "lrp", "--rules", "epsilon", "--epsilon", "0.25"],
            1e-4,
        ),
        ("epsilon_plus", &["--method", "lrp"], 1e-3),
        (
            "epsilon_alpha2_beta1",
            &["--method", "lrp", "--rules", "epsilon-alpha2-beta1"],
            1e-3,
        ),
        (
            "epsilon_gamma_box",
            &["--method", "lrp", "--rules", "epsilon-gamma-box"],
            1e-3,
        ),
        ("sglrp", &["--method", "sglrp"], 1e-4),
        ("clrp1", &["--method", "clrp1"], 1e-4),
        ("clrp2", &["--method", "clrp2"], 1e-4),
    ];
    for model in ["mlp", "lenet5", "vgg_small"] {
        let dir = scratch(model);
        let (x, t, arrays) = fixture_inputs(model, &dir);
        let weights = fixture_path(model);
        for (name, extra, tol) in cases {
            let out = dir.join(format!("{name}.npy"));
            let mut args = vec![
                "explain",
                "--model",
                model,
                "--weights",
                weights.to_str().unwrap(),
            ];
            args.extend([
                "--input",
                x.to_str().unwrap(),
                "--targets",
                t.to_str().unwrap(),
            ]);
            args.extend(["--out", out.to_str().unwrap()]);
            args.extend_from_slice(extra);
            let run = relprop(&args);
            assert!(
                run.status.success(),
                "{model} {name}: {}",
                String::from_utf8_lossy(&run.stderr)
            );
            let ours = match read_npy(&out).unwrap() {
                Array::F32 { shape, data } => {
                    assert_eq!(shape, vec![10, 1, 28, 28]);
                    data
                }
                other => panic!("{model} {name}: wrote {}", other.dtype()),
            };
            let reference = array(&arrays, &format!("rel.{name}"));
            let e = max_rel_error(&ours, reference.as_f64().unwrap());
            assert!(e < tol, "{model} {name}: max rel error {e:.2e} > {tol:.0e}");
        }
        std::fs::remove_dir_all(&dir).ok();
    }
}

/// Runs a failing command: exit code 2, one line on stderr, and `out` not created.
fn assert_bad_input(args: &[&str], out: &Path, mention: &str) {
    let run = relprop(args);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(2), "{args:?}: {stderr}");
    assert!(
        stderr.contains(mention),
        "{args:?}: message '{stderr}' should mention '{mention}'"
    );
    assert!(!out.exists(), "{args:?} left {} behind", out.display());
}

#[test]
fn bad_input_exits_2_without_output() {
    let dir = scratch("bad");
    let (x, t, _) = fixture_inputs("lenet5", &dir);
    let (x, t) = (x.to_str().unwrap(), t.to_str().unwrap());
    let out = dir.join("out.npy");
    let o = out.to_str().unwrap();
    let base = |extra: &[&'static str]| -> Vec<String> {
        let mut v: Vec<String> = ["explain", "--out", o]
            .iter()
            .map(|s| s.to_string())
            .collect();
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let run = |extra: &[&'static str], mention: &str| {
        let args = base(extra);
        let args: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
        assert_bad_input(&args, &out, mention);
    };
    let x: &'static str = Box::leak(x.to_string().into_boxed_str());
    let t: &'static str = Box::leak(t.to_string().into_boxed_str());
    run(
        &["--model", "resnet99", "--input", x, "--method", "lrp"],
        "resnet99",
    );
    run(
        &["--model", "lenet5", "--input", x, "--method", "magic"],
        "magic",
    );
    run(
        &[
            "--model", "lenet5", "--input", x, "--method", "lrp", "--rules", "nope",
        ],
        "nope",
    );
    run(
        &[
            "--model", "lenet5", "--input", x, "--method", "lrp", "--target", "10",
        ],
        "out of range",
    );
    run(
        &[
            "--model",
            "lenet5",
            "--input",
            "/nonexistent/x.npy",
            "--method",
            "lrp",
        ],
        "x.npy",
    );
    run(
        &["--model", "multidigit", "--input", x, "--method", "lrp"],
        "56",
    );
    run(
        &["--model", "lenet5", "--input", t, "--method", "lrp"],
        "float32",
    );
    run(
        &[
            "--model",
            "lenet5",
            "--input",
            x,
            "--targets",
            x,
            "--method",
            "lrp",
        ],
        "int64",
    );

    // A truncated array, and a PNG of the wrong size.
    let bytes = std::fs::read(x).unwrap();
    let cut = dir.join("cut.npy");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let cut: &'static str = Box::leak(cut.to_str().unwrap().to_string().into_boxed_str());
    run(
        &["--model", "lenet5", "--input", cut, "--method", "gradient"],
        "cut.npy",
    );
    let png = dir.join("small.png");
    relprop::explain::heatmap::write_png_rgb(&png, &[0u8; 3 * 20 * 20], 20, 20).unwrap();
    let png: &'static str = Box::leak(png.to_str().unwrap().to_string().into_boxed_str());
    run(
        &["--model", "lenet5", "--input", png, "--method", "gradient"],
        "28x28",
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn png_input_and_heatmap_output() {
    let dir = scratch("png");
    let png = dir.join("digit.png");
    let grey: Vec<u8> = (0..28 * 28).flat_map(|i| [(i % 255) as u8; 3]).collect();
    relprop::explain::heatmap::write_png_rgb(&png, &grey, 28, 28).unwrap();
    let (out, heat) = (dir.join("r.npy"), dir.join("h.png"));
    let weights = fixture_path("lenet5");
    let run = relprop(&[
        "explain",
        "--model",
        "lenet5",
        "--weights",
        weights.to_str().unwrap(),
        "--input",
        png.to_str().unwrap(),
        "--method",
        "sglrp",
        "--out",
        out.to_str().unwrap(),
        "--heatmap",
        heat.to_str().unwrap(),
        "--audit",
    ]);
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(
        stdout.contains("relevance audit") && stdout.contains("features.conv1"),
        "{stdout}"
    );
    let r = read_npy(&out).unwrap().into_tensor().unwrap();
    assert_eq!(r.shape(), &[1, 1, 28, 28]);
    // A real map: finite, and not all zeros (the sum-to-zero property is tested on
    // bias-free nets in tests/lrp_properties.rs; biases here absorb some relevance).
    assert!(r.all_finite() && Tensor::abs_sum(&r) > 0.0);
    let (_, h, w) =
        relprop::explain::heatmap::read_png_grey(&std::fs::read(&heat).unwrap()).unwrap();
    assert!(h > 28 && w > 2 * 28);
    std::fs::remove_dir_all(&dir).ok();
}
