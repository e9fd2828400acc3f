//! The command line on `.onnx` files: `info` shows the graph and each composite's rules,
//! every method and rule set runs, RGB PNG input, and every failure is exit 2 with no file.

mod common;

use common::{relprop, scratch};
use relprop::core::Tensor;
use relprop::explain::heatmap::write_png_rgb;
use relprop::explain::COMPOSITE_NAMES;
use relprop::nn::io::{read_tensor, write_npy_f32};
use std::path::PathBuf;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(format!(
        "{}/tests/fixtures/onnx/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
}

fn text(o: &std::process::Output) -> String {
    format!(
        "exit {:?}\n{}{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn info_prints_nodes_shapes_and_rules() {
    let model = fixture("mobile_net.onnx");
    let o = relprop(&["info", model.to_str().unwrap()]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    // One table row per node: label, op, shape, then one rule per composite.
    let row = |label: &str| -> Vec<String> {
        let line = out
            .lines()
            .find(|l| l.starts_with(&format!("| {label} |")))
            .unwrap_or_else(|| panic!("no row {label}: {out}"));
        line.trim_matches('|')
            .split('|')
            .map(|c| c.trim().to_string())
            .collect()
    };
    let rule = |label: &str, composite: &str| {
        let k = COMPOSITE_NAMES
            .iter()
            .position(|c| *c == composite)
            .unwrap();
        row(label)[3 + k].clone()
    };
    // The first conv: stride 2 on 32x32 gives 16 channels of 16x16.
    assert_eq!(row("node_Conv_58")[1..3], ["conv2d", "[16, 16, 16]"]);
    assert_eq!(row("node_cat")[1..3], ["concat", "[24, 16, 16]"]);
    assert!(
        out.contains("input        [N, 3, 32, 32]") && out.contains("10 classes"),
        "{out}"
    );
    // Under bounded deep Taylor the first conv gets ZBox and the others ZPlus.
    assert_eq!(rule("node_Conv_58", "bounded-deep-taylor"), "zbox");
    assert_eq!(rule("node_Conv_60", "bounded-deep-taylor"), "zplus");
    assert_eq!(rule("node_Conv_60", "epsilon-gamma-box"), "gamma(0.25)");
    assert_eq!(rule("node_add", "epsilon-plus"), "elementwise");
    assert_eq!(rule("node_sub", "epsilon-plus"), "elementwise");
    assert_eq!(rule("n4", "epsilon-plus"), "pass");
    let resnet = relprop(&["info", fixture("small_resnet.onnx").to_str().unwrap()]);
    assert!(
        text(&resnet).contains("Softmax `node_softmax` at the output dropped"),
        "{}",
        text(&resnet)
    );
}

#[test]
fn every_method_and_rule_set_runs_and_keeps_the_input_shape() {
    let dir = scratch("onnx-methods");
    let model = fixture("mobile_net.onnx");
    let x = dir.join("x.npy");
    write_npy_f32(&x, &Tensor::rand_uniform(&[2, 3, 32, 32], 0.0, 1.0, 4)).unwrap();
    let mut runs: Vec<Vec<String>> = [
        "gradient",
        "gradient-x-input",
        "smoothgrad",
        "integrated-gradients",
        "grad-cam",
        "occlusion",
        "sglrp-two-pass",
        "clrp1",
        "clrp2",
    ]
    .iter()
    .map(|m| vec!["--method".to_string(), m.to_string()])
    .collect();
    for rules in COMPOSITE_NAMES {
        for m in ["lrp", "sglrp"] {
            runs.push(vec![
                "--method".into(),
                m.into(),
                "--rules".into(),
                rules.into(),
            ]);
        }
    }
    for extra in runs {
        let out = dir.join("r.npy");
        let mut args = vec![
            "explain",
            "--model",
            model.to_str().unwrap(),
            "--input",
            x.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--steps",
            "4",
        ];
        args.extend(extra.iter().map(String::as_str));
        let o = relprop(&args);
        assert_eq!(o.status.code(), Some(0), "{extra:?}: {}", text(&o));
        let r = read_tensor(&out).unwrap();
        assert_eq!(r.shape(), &[2, 3, 32, 32], "{extra:?}");
        assert!(r.all_finite(), "{extra:?}");
        std::fs::remove_file(&out).unwrap();
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_rgb_png_is_read_as_the_three_planes() {
    let dir = scratch("onnx-png");
    let model = fixture("mobile_net.onnx");
    let rgb: Vec<u8> = (0..32 * 32 * 3).map(|i| ((i * 37) % 256) as u8).collect();
    let png = dir.join("img.png");
    write_png_rgb(&png, &rgb, 32, 32).unwrap();
    // The same values as planes [1, 3, 32, 32].
    let mut planes = vec![0.0f32; 3 * 32 * 32];
    for (k, &v) in rgb.iter().enumerate() {
        planes[(k % 3) * 1024 + k / 3] = v as f32 / 255.0;
    }
    let npy = dir.join("img.npy");
    write_npy_f32(&npy, &Tensor::from_vec(planes, &[1, 3, 32, 32]).unwrap()).unwrap();
    let (a, b) = (dir.join("a.npy"), dir.join("b.npy"));
    for (input, out) in [(&png, &a), (&npy, &b)] {
        let o = relprop(&[
            "predict",
            "--model",
            model.to_str().unwrap(),
            "--input",
            input.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    }
    assert_eq!(read_tensor(&a).unwrap(), read_tensor(&b).unwrap());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn failures_exit_2_without_output() {
    let dir = scratch("onnx-bad");
    let model = fixture("mobile_net.onnx");
    let good = dir.join("x.npy");
    write_npy_f32(&good, &Tensor::rand_uniform(&[1, 3, 32, 32], 0.0, 1.0, 1)).unwrap();
    let wrong = dir.join("wrong.npy");
    write_npy_f32(&wrong, &Tensor::rand_uniform(&[1, 1, 28, 28], 0.0, 1.0, 1)).unwrap();
    let small_png = dir.join("small.png");
    write_png_rgb(&small_png, &[0u8; 3 * 8 * 8], 8, 8).unwrap();
    let truncated = dir.join("cut.onnx");
    let bytes = std::fs::read(fixture("bn_cnn.onnx")).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let garbage = dir.join("garbage.onnx");
    std::fs::write(&garbage, b"definitely not protobuf \xff\xff\xff").unwrap();
    let m = model.to_str().unwrap().to_string();
    let s = |p: &PathBuf| p.to_str().unwrap().to_string();
    let cases: Vec<(&str, Vec<String>)> = vec![
        (
            "weights with onnx",
            vec![
                "--model".into(),
                m.clone(),
                "--weights".into(),
                s(&good),
                "--input".into(),
                s(&good),
            ],
        ),
        (
            "wrong shape",
            vec!["--model".into(), m.clone(), "--input".into(), s(&wrong)],
        ),
        (
            "small png",
            vec!["--model".into(), m.clone(), "--input".into(), s(&small_png)],
        ),
        (
            "truncated model",
            vec!["--model".into(), s(&truncated), "--input".into(), s(&good)],
        ),
        (
            "garbage model",
            vec!["--model".into(), s(&garbage), "--input".into(), s(&good)],
        ),
        (
            "missing model",
            vec![
                "--model".into(),
                s(&dir.join("nope.onnx")),
                "--input".into(),
                s(&good),
            ],
        ),
        (
            "unknown layer",
            vec![
                "--model".into(),
                m.clone(),
                "--input".into(),
                s(&good),
                "--layer".into(),
                "nosuch".into(),
            ],
        ),
    ];
    for cmd in ["predict", "explain"] {
        for (what, args) in &cases {
            let out = dir.join("out.npy");
            let mut full = vec![cmd.to_string()];
            full.extend(args.iter().cloned());
            if cmd == "explain" {
                full.extend(["--method".into(), "lrp".into()]);
            } else if what == &"unknown layer" {
                continue;
            }
            full.extend(["--out".into(), s(&out)]);
            let refs: Vec<&str> = full.iter().map(String::as_str).collect();
            let o = relprop(&refs);
            assert_eq!(o.status.code(), Some(2), "{cmd} {what}: {}", text(&o));
            assert!(!o.stderr.is_empty(), "{cmd} {what}: no message");
            assert!(!out.exists(), "{cmd} {what}: output left behind");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
